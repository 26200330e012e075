namespace Portico.Config.Tests;

/// <summary>Golden tests of error_page and recursive_error_pages.</summary>
public class ErrorPageConfigTests
{
    private const string F = ConfigHarness.Main;

    private static Task<string> First(string body) => CompileHarness.FirstErrorAsync(CompileHarness.Http(body));

    [Theory]
    [InlineData("server { location / { error_page =404 /x; } }", "invalid value \"=404\"")]
    [InlineData("server { location / { error_page 404 =abc /x; } }", "invalid value \"=abc\"")]
    [InlineData("server { location / { error_page 404 =-1 /x; } }", "invalid value \"=-1\"")]
    [InlineData("server { location / { error_page 200 /x; } }", "value \"200\" must be between 300 and 599")]
    [InlineData("server { location / { error_page 600 /x; } }", "value \"600\" must be between 300 and 599")]
    [InlineData("server { location / { error_page 499 /x; } }", "invalid value \"499\"")]
    [InlineData("server { location / { error_page abc /x; } }", "invalid value \"abc\"")]
    [InlineData("server { location / { error_page 404; } }", "invalid number of arguments in \"error_page\" directive")]
    [InlineData("server { location / { recursive_error_pages maybe; } }", "invalid value \"maybe\" in \"recursive_error_pages\" directive, it must be \"on\" or \"off\"")]
    [InlineData("server { location / { if ($uri) { recursive_error_pages on; } } }", "\"recursive_error_pages\" directive is not allowed here")]
    [InlineData("server { if ($uri) { error_page 404 /x; } }", "\"error_page\" directive is not allowed here")]
    [InlineData("server { location / { error_page 404 /$nosuch; } }", "unknown \"nosuch\" variable")]
    [InlineData("error_page 404 $nosuch; server { }", "unknown \"nosuch\" variable")]
    [InlineData("server { location / { internal; internal; } }", "\"internal\" directive is duplicate")]
    [InlineData("server { internal; }", "\"internal\" directive is not allowed here")]
    [InlineData("server { location / { internal 1; } }", "invalid number of arguments in \"internal\" directive")]
    public async Task ReportsNginxMessage(string body, string message)
    {
        Assert.Equal($"[emerg] {message} in {F}:4", await First(body));
    }

    [Fact]
    public async Task AnErrorAtHttpLevelIsReportedOnce()
    {
        var errors = await CompileHarness.ErrorsAsync(CompileHarness.Http(
            "error_page 404 /$nosuch;\nserver { location /a { } location /b { } }\nserver { }"));
        Assert.Equal([$"[emerg] unknown \"nosuch\" variable in {F}:4"], errors);
    }

    [Theory]
    [InlineData("error_page 404 /404.html; error_page 500 502 503 504 /50x.html; server { }")]
    [InlineData("server { error_page 404 =200 /empty.gif; error_page 404 = @fallback; location @fallback { return 200; } }")]
    [InlineData("server { location / { error_page 403 http://example.com/forbidden.html; error_page 404 =301 http://example.com/notfound.html; } }")]
    [InlineData("server { location / { if ($uri) { error_page 404 /x; } } }")]
    [InlineData("server { location / { error_page 494 495 496 497 /ssl; recursive_error_pages on; } }")]
    [InlineData("server { location / { error_page 404 /x?$args; error_page 405 @$uri; } }")]
    public async Task Accepted(string body)
    {
        Assert.Empty(await CompileHarness.ErrorsAsync(CompileHarness.Http(body)));
    }
}
