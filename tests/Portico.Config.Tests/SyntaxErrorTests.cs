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
