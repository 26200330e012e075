using Portico.Config.Syntax;

namespace Portico.Config.Tests;

/// <summary>Golden tests: configuration text in, nginx's exact diagnostic (message, file, line) out.</summary>
public class SyntaxErrorTests
{
    private const string F = ConfigHarness.Main;

    [Theory]
    [InlineData("events {}\nfoo bar;\n", "[emerg] unknown directive \"foo\" in " + F + ":2")]
    [InlineData("events {}\nhttp {\n  listen 80;\n}\n", "[emerg] \"listen\" directive is not allowed here in " + F + ":3")]
    [InlineData("events {}\nhttp { server { listen; } }\n", "[emerg] invalid number of arguments in \"listen\" directive in " + F + ":2")]
    [InlineData("events {}\npid a;\npid b;\n", "[emerg] \"pid\" directive is duplicate in " + F + ":3")]
    [InlineData("events {}\n}\n", "[emerg] unexpected \"}\" in " + F + ":2")]
    [InlineData("events {}\nhttp {\n server {\n", "[emerg] unexpected end of file, expecting \"}\" in " + F + ":4")]
    [InlineData("events {}\npid /x", "[emerg] unexpected end of file, expecting \";\" or \"}\" in " + F + ":2")]
    [InlineData("events {}\ndaemon maybe;\n", "[emerg] invalid value \"maybe\" in \"daemon\" directive, it must be \"on\" or \"off\" in " + F + ":2")]
    [InlineData("events {}\nworker_shutdown_timeout 5x;\n", "[emerg] \"worker_shutdown_timeout\" directive invalid value in " + F + ":2")]
    [InlineData("events { worker_connections many; }\n", "[emerg] \"worker_connections\" directive invalid number in " + F + ":1")]
    [InlineData("events {}\nhttp { server { location { } } }\n", "[emerg] invalid number of arguments in \"location\" directive in " + F + ":2")]
    [InlineData("events {}\nhttp;\n", "[emerg] directive \"http\" has no opening \"{\" in " + F + ":2")]
    [InlineData("events {}\npid x {\n}\n", "[emerg] directive \"pid\" is not terminated by \";\" in " + F + ":2")]
    [InlineData("events {}\n;\n", "[emerg] unexpected \";\" in " + F + ":2")]
    [InlineData("events {}\npid \"a\"b;\n", "[emerg] unexpected \"b\" in " + F + ":2")]
    [InlineData("pid x;\n", "[emerg] no \"events\" section in configuration")]
    public void ReportsNginxMessage(string config, string expected)
    {
        Assert.Equal(expected, ConfigHarness.FirstError(config));
    }

    [Fact]
    public void MissingIncludeFileIsAnError()
    {
        var error = ConfigHarness.FirstError("events {}\ninclude conf.d/missing.conf;\n");
        Assert.Equal("[emerg] open() \"/etc/portico/conf.d/missing.conf\" failed (2: No such file or directory) in " + F + ":2", error);
    }

    [Fact]
    public void GlobIncludeThatMatchesNothingIsAccepted()
    {
        var result = ConfigHarness.Load("events {}\ninclude conf.d/*.conf;\n");
        Assert.True(result.Success, string.Join("\n", result.Errors));
    }

    [Fact]
    public void ErrorsInIncludedFilesNameThatFile()
    {
        var error = ConfigHarness.FirstError("events {}\nhttp {\n include sites/*.conf;\n}\n",
            ("sites/a.conf", "server { listen 80; }\n"),
            ("sites/b.conf", "server {\n  bogus on;\n}\n"));
        Assert.Equal("[emerg] unknown directive \"bogus\" in /etc/portico/sites/b.conf:2", error);
    }

    [Fact]
    public void CollectsEveryBindingError()
    {
        var result = ConfigHarness.Load("events {}\nfoo;\nbar;\nhttp { baz; }\n");
        Assert.Equal(3, result.Errors.Count);
        Assert.Equal(4, result.Errors[2].Line);
    }

    [Fact]
    public void GlobalDirectiveErrorsSayCommandLine()
    {
        var result = ConfigHarness.Load("events {}\n", "pid a; pid b;");
        Assert.Equal("[emerg] \"pid\" directive is duplicate in command line", result.Errors[0].ToString());
    }

    [Fact]
    public void GlobalDirectivesConflictWithTheFile()
    {
        var result = ConfigHarness.Load("events {}\ndaemon off;\n", "daemon off;");
        Assert.Equal("[emerg] \"daemon\" directive is duplicate in " + F + ":2", result.Errors[0].ToString());
    }
}

/// <summary>Errors of the structural directives (listen, server_name, location), in nginx's words.</summary>
public class StructureErrorTests
{
    private const string F = ConfigHarness.Main;

    [Theory]
    [InlineData("server {\n listen 99999;\n}", "invalid port in \"99999\" of the \"listen\" directive", 4)]
    [InlineData("server {\n listen 80 backlog=0;\n}", "invalid backlog \"backlog=0\"", 4)]
    [InlineData("server {\n listen 80 fancy;\n}", "invalid parameter \"fancy\"", 4)]
    [InlineData("server {\n listen 80 ipv6only=oops;\n}", "invalid ipv6only flags \"oops\"", 4)]
    [InlineData("server {\n listen 80;\n listen 80;\n}", "a duplicate listen 0.0.0.0:80", 5)]
    [InlineData("server {\n listen 80 quic ssl;\n}", "\"listen\" directive \"ssl\" parameter is incompatible with \"quic\"", 4)]
    [InlineData("server {\n server_name *bad;\n}", "server name \"*bad\" is invalid", 4)]
    [InlineData("server {\n server_name ~;\n}", "empty regex in server name \"~\"", 4)]
    [InlineData("server {\n location = /x {\n  location /x/y { }\n }\n}", "location \"/x/y\" cannot be inside the exact location \"/x\"", 5)]
    [InlineData("server {\n location @n {\n  location /y { }\n }\n}", "location \"/y\" cannot be inside the named location \"@n\"", 5)]
    [InlineData("server {\n location /a/ {\n  location @n { }\n }\n}", "named location \"@n\" can be on the server level only", 5)]
    [InlineData("server {\n location /a/ {\n  location /b/ { }\n }\n}", "location \"/b/\" is outside location \"/a/\"", 5)]
    [InlineData("server {\n location =~ /x { }\n}", "invalid location modifier \"=~\"", 4)]
    [InlineData("server {\n location /x { }\n location /x { }\n}", "duplicate location \"/x\"", 5)]
    [InlineData("server {\n location = /x { }\n location = /x { }\n}", "duplicate location \"/x\"", 5)]
    [InlineData("server {\n location /x { }\n location ^~ /x { }\n}", "duplicate location \"/x\"", 5)]
    [InlineData("server {\n listen 80 default_server;\n}\nserver {\n listen 80 default_server;\n}", "a duplicate default server for 0.0.0.0:80", 7)]
    [InlineData("server {\n listen 80 backlog=10;\n}\nserver {\n listen 80 backlog=20;\n}", "duplicate listen options for 0.0.0.0:80", 7)]
    [InlineData("server {\n return 999x;\n}", "invalid return code \"999x\"", 4)]
    [InlineData("server {\n return 1000;\n}", "invalid return code \"1000\"", 4)]
    [InlineData("server {\n server_tokens maybe;\n}", "invalid value \"maybe\"", 4)]
    public void Messages(string http, string message, int line)
    {
        var error = ConfigHarness.FirstError(ConfigHarness.Http(http));
        Assert.Equal($"[emerg] {message} in {F}:{line}", error);
    }

    [Theory]
    [InlineData("server { location = /x { } location /x { } }")]
    [InlineData("server { location ~ /x { } location ~ /x { } }")]
    [InlineData("server { location @n { } location @n { } }")]
    [InlineData("server { server_name www.*.example.com; }")]
    public void AcceptedAsNginxDoes(string http)
    {
        var result = ConfigHarness.Load(ConfigHarness.Http(http));
        Assert.True(result.Success, string.Join("\n", result.Errors));
    }

    [Fact]
    public void ConflictingServerNamesAreWarnings()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("server { listen 80; server_name a.test; }\nserver { listen 80; server_name a.test; }"));
        Assert.True(result.Success);
        Assert.Equal("[warn] conflicting server name \"a.test\" on 0.0.0.0:80, ignored", result.Warnings.Single().ToString());
    }
}
