namespace Portico.Config.Tests;

/// <summary>Golden tests of ngx_http_map_module's configuration errors.</summary>
public class MapConfigTests
{
    private const string F = ConfigHarness.Main;

    private static Task<string> First(string body) => CompileHarness.FirstErrorAsync(CompileHarness.Http(body));

    [Theory]
    [InlineData("map $uri x { default 1; }", "invalid variable name \"x\"")]
    [InlineData("map $uri $ { default 1; }", "invalid variable name \"$\"")]
    [InlineData("map $uri $m { a b c; }", "invalid number of the map parameters")]
    [InlineData("map $uri $m { a; }", "invalid number of the map parameters")]
    [InlineData("map $uri $m { default 1; default 2; }", "duplicate default map parameter")]
    [InlineData("map $uri $m { a 1; A 2; }", "conflicting parameter \"a\"")]
    [InlineData("map $uri $m { hostnames; .a.com 1; *.a.com 2; }", "conflicting parameter \"*.a.com\"")]
    [InlineData("map $uri $m { hostnames; *.a.*.b 1; }", "invalid hostname or wildcard \"*.a.*.b\"")]
    [InlineData("map $uri $m { a { } }", "unexpected \"{\"")]
    [InlineData("map $uri $m { a $; }", "invalid variable name")]
    [InlineData("map $uri $m;", "directive \"map\" has no opening \"{\"")]
    [InlineData("map $uri { }", "invalid number of arguments in \"map\" directive")]
    [InlineData("server { map $uri $m { } }", "\"map\" directive is not allowed here")]
    [InlineData("map_hash_max_size abc;", "\"map_hash_max_size\" directive invalid number")]
    [InlineData("map_hash_bucket_size 64; map_hash_bucket_size 64;", "\"map_hash_bucket_size\" directive is duplicate")]
    [InlineData("map $uri $host { default 1; }", "the duplicate \"host\" variable")]
    [InlineData("map $nosuch $m { default 1; }", "unknown \"nosuch\" variable")]
    [InlineData("map $uri $m { default $nosuch; }", "unknown \"nosuch\" variable")]
    [InlineData("map $uri $m { ~^/(?<uri>x) 1; }", "the duplicate \"uri\" variable")]
    public async Task ReportsNginxMessage(string body, string message)
    {
        Assert.Equal($"[emerg] {message} in {F}:4", await First(body));
    }

    [Fact]
    public async Task BadRegexesAreCompileErrors()
    {
        // The reason is .NET's wording; the shape, the pattern and the position are nginx's.
        var error = await First("map $uri $m { ~(x 1; }");
        Assert.StartsWith("[emerg] pcre2_compile() failed: ", error);
        Assert.EndsWith($" in \"(x\" in {F}:4", error);
    }

    [Fact]
    public async Task ErrorsInsideTheBlockNameTheirLine()
    {
        var error = await CompileHarness.FirstErrorAsync(CompileHarness.Http("map $uri $m {\n  a 1;\n  b 2;\n  a 3;\n}"));
        Assert.Equal($"[emerg] conflicting parameter \"a\" in {F}:7", error);
    }

    [Fact]
    public async Task IncludedEntries()
    {
        var errors = await CompileHarness.ErrorsAsync(
            CompileHarness.Http("map $uri $m {\n include map.d/*.conf;\n default 0;\n}"),
            ("map.d/a.conf", "/a 1;\n/b 2;\n"),
            ("map.d/b.conf", "/c 3;\n/a 4;\n"));
        Assert.Equal(["[emerg] conflicting parameter \"/a\" in /etc/portico/map.d/b.conf:2"], errors);
    }

    [Theory]
    [InlineData("map $http_host $name { hostnames; default 0; example.com 1; *.example.com 1; example.org 2; *.example.org 2; .example.net 3; wap.* 4; }")]
    [InlineData("map $http_user_agent $mobile { default 0; \"~Opera Mini\" 1; }")]
    [InlineData("map $uri $a { volatile; \\default x; \\hostnames y; \"\" empty; ~*^/(?<part>[a-z]+) $part-$1; }")]
    [InlineData("map $scheme$host $b { default $a$uri; } map $uri $a { default 1; }")]
    [InlineData("map $uri $m { default 1; } map $args $m { default 2; }")]
    [InlineData("map_hash_max_size 4096; map_hash_bucket_size 128; map $uri $m { }")]
    [InlineData("log_format f '$m $setvar'; map $uri $m { default $setvar; } server { set $setvar 1; }")]
    public async Task Accepted(string body)
    {
        Assert.Empty(await CompileHarness.ErrorsAsync(CompileHarness.Http(body)));
    }
}
