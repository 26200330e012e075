namespace Portico.Config.Tests;

/// <summary>Golden tests of ngx_http_rewrite_module's configuration errors: nginx's words, file and line.</summary>
public class RewriteConfigTests
{
    private const string F = ConfigHarness.Main;

    private static Task<string> First(string body) => CompileHarness.FirstErrorAsync(CompileHarness.Http(body));

    // The body starts on line 4 of the file CompileHarness.Http writes.
    [Theory]
    [InlineData("server { location / { rewrite ^ \"\"; } }", "empty replacement")]
    [InlineData("server { location / { rewrite ^ /x foo; } }", "invalid parameter \"foo\"")]
    [InlineData("server { location / { rewrite ^ /x break extra; } }", "invalid number of arguments in \"rewrite\" directive")]
    [InlineData("server { location / { rewrite ^; } }", "invalid number of arguments in \"rewrite\" directive")]
    [InlineData("server { location / { set x 1; } }", "invalid variable name \"x\"")]
    [InlineData("server { location / { set $ 1; } }", "invalid variable name \"$\"")]
    [InlineData("server { location / { set $a; } }", "invalid number of arguments in \"set\" directive")]
    [InlineData("server { location / { set $a $; } }", "invalid variable name")]
    [InlineData("server { location / { set $a ${b; } }", "the closing bracket in \"b\" variable is missing")]
    [InlineData("server { location / { if (foo) { } } }", "invalid condition \"foo\"")]
    [InlineData("server { location / { if ($a == b) { } } }", "unexpected \"==\" in condition")]
    [InlineData("server { location / { if ($a) { if ($b) { } } } }", "\"if\" directive is not allowed here")]
    [InlineData("server { location / { if ($a); } }", "directive \"if\" has no opening \"{\"")]
    [InlineData("http_if_in_http", "")]
    [InlineData("server { location / { break 1; } }", "invalid number of arguments in \"break\" directive")]
    [InlineData("server { rewrite_log on; rewrite_log off; }", "\"rewrite_log\" directive is duplicate")]
    [InlineData("server { rewrite_log maybe; }", "invalid value \"maybe\" in \"rewrite_log\" directive, it must be \"on\" or \"off\"")]
    [InlineData("server { uninitialized_variable_warn 1; }", "invalid value \"1\" in \"uninitialized_variable_warn\" directive, it must be \"on\" or \"off\"")]
    [InlineData("rewrite ^ /x;", "\"rewrite\" directive is not allowed here")]
    [InlineData("server { location / { return abc; } }", "invalid return code \"abc\"")]
    [InlineData("server { location / { return 1000; } }", "invalid return code \"1000\"")]
    public async Task ReportsNginxMessage(string body, string message)
    {
        if (body == "http_if_in_http")
        {
            Assert.Equal("[emerg] \"if\" directive is not allowed here in " + F + ":4", await First("if ($a) { }"));
            return;
        }

        Assert.Equal($"[emerg] {message} in {F}:4", await First(body));
    }

    [Theory]
    [InlineData("server { location / { set $uri 1; } }", "uri")]
    [InlineData("server { location / { set $query_string 1; } }", "query_string")]
    [InlineData("server { set $remote_addr 1; }", "remote_addr")]
    [InlineData("server { location ~ (?<uri>.*) { } }", "uri")]
    [InlineData("server { location / { rewrite (?<host>.*) /x; } }", "host")]
    [InlineData("server { location / { if ($uri ~ (?<request_method>.*)) { } } }", "request_method")]
    [InlineData("server { server_name ~^(?<scheme>.+)$; }", "scheme")]
    [InlineData("server { location / { set $http_x_forwarded_for 1; } }", "http_x_forwarded_for")]
    [InlineData("map $uri $http_user_agent { }", "http_user_agent")]
    public async Task BuiltinsThatCannotChangeAreDuplicates(string body, string name)
    {
        Assert.Equal($"[emerg] the duplicate \"{name}\" variable in {F}:4", await First(body));
    }

    [Theory]
    [InlineData("server { location / { return 200 $nosuch; } }")]
    [InlineData("server { location / { return 302 http://$nosuch/; } }")]
    [InlineData("server { location / { set $a $nosuch; } }")]
    [InlineData("server { set $a \"x${nosuch}\"; }")]
    [InlineData("server { location / { rewrite ^ /$nosuch; } }")]
    [InlineData("server { location / { rewrite ^ /x?a=$nosuch; } }")]
    [InlineData("server { location / { rewrite ^ http://$nosuch; } }")]
    [InlineData("server { location / { if ($nosuch) { } } }")]
    [InlineData("server { if ($nosuch) { } }")]
    [InlineData("server { location / { if ($uri = $nosuch) { } } }")]
    [InlineData("server { location / { if ($uri != x$nosuch) { } } }")]
    [InlineData("server { location / { if (-f /x/$nosuch) { } } }")]
    [InlineData("server { location / { if ($uri) { return 200 $nosuch; } } }")]
    public async Task UnknownVariablesInEveryTemplate(string body)
    {
        Assert.Equal($"[emerg] unknown \"nosuch\" variable in {F}:4", await First(body));
    }

    [Theory]
    [InlineData("server { location / { set $args 1; set $x $args; return 200 $x; } }")]
    [InlineData("server { location ~ (?<a>.*) { set $a 1; return 200 $a; } }")]
    [InlineData("server { location / { return 200 $b; } location /x { set $b 1; } }")]
    [InlineData("server { location / { set $http_x_custom 1; set $arg_a 2; } }")]
    [InlineData("server { location / { if ( $uri ~* \"^/(a|b)\" ) { set $c $1; return 200 $c; } } }")]
    [InlineData("server { location / { if ($a) { set $b 1; rewrite_log on; uninitialized_variable_warn off; return 200; } set $a 1; } }")]
    [InlineData("server { if ($host = x) { set $s 1; rewrite ^ /y break; return 403; } }")]
    [InlineData("server { location / { if (!-e $request_uri) { break; } } }")]
    [InlineData("map $uri $m { default 1; } server { location / { set $m 1; } }")]
    [InlineData("server { location / { rewrite ^/(?<name>x)$ /y/$name redirect; } }")]
    public async Task Accepted(string body)
    {
        Assert.Empty(await CompileHarness.ErrorsAsync(CompileHarness.Http(body)));
    }

    [Fact]
    public async Task ErrorsInIncludedFilesNameThatFile()
    {
        var errors = await CompileHarness.ErrorsAsync(
            CompileHarness.Http("server {\n include rewrites.conf;\n}"),
            ("rewrites.conf", "rewrite ^ /a;\nrewrite ^ /b last;\nrewrite ^ /$nope;\n"));
        Assert.Equal(["[emerg] unknown \"nope\" variable in /etc/portico/rewrites.conf:3"], errors);
    }
}
