using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>
/// proxy_pass URI rules from nginx's proxy_pass documentation, checked by the request line a real origin
/// receives (nginx 1.28 behaves the same; see ProxyDifferentialTests for the side-by-side runs).
/// </summary>
public sealed class ProxyPassUriTests
{
    private static async Task<RawRequest> TargetAsync(string locations, string rawTarget, string extraHeaders = "")
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server(locations.Replace("ORIGINPORT", origin.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal).Replace("ORIGIN", origin.Address, StringComparison.Ordinal)));
        var response = await ProxyTest.RawAsync(portico, $"GET {rawTarget} HTTP/1.1\r\nHost: test\r\n{extraHeaders}Connection: close\r\n\r\n");
        Assert.True(origin.Requests.TryDequeue(out var seen), "the origin received nothing:\n" + response + "\n" + await portico.ReadErrorLogAsync());
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        return seen!;
    }

    [Theory]
    // proxy_pass without URI: the request URI is passed as the client sent it.
    [InlineData("location /name/ { proxy_pass http://ORIGIN; }", "/name/a%20b/c?x=1&y=%2F", "/name/a%20b/c?x=1&y=%2F")]
    [InlineData("location /name/ { proxy_pass http://ORIGIN; }", "/name//x/./y", "/name//x/./y")]
    // proxy_pass with URI: the part of the URI matching the location is replaced by the URI.
    [InlineData("location /name/ { proxy_pass http://ORIGIN/remote/; }", "/name/a/b?q=1", "/remote/a/b?q=1")]
    [InlineData("location /some/path/ { proxy_pass http://ORIGIN/; }", "/some/path/x", "/x")]
    [InlineData("location /api/ { proxy_pass http://ORIGIN/; }", "/api/users", "/users")]
    [InlineData("location /api { proxy_pass http://ORIGIN/v2; }", "/api/users", "/v2/users")]
    [InlineData("location = /exact { proxy_pass http://ORIGIN/other; }", "/exact?a=b", "/other?a=b")]
    // With a URI part the normalized URI is used: merged slashes, resolved dots, escaped again.
    [InlineData("location /name/ { proxy_pass http://ORIGIN/remote/; }", "/name//x/./y", "/remote/x/y")]
    [InlineData("location /name/ { proxy_pass http://ORIGIN/remote/; }", "/name/a%20b", "/remote/a%20b")]
    [InlineData("location /name/ { proxy_pass http://ORIGIN/remote/; }", "/name/%7Efoo%2Fbar", "/remote/~foo/bar")]
    [InlineData("location /name/ { proxy_pass http://ORIGIN/remote/; }", "/name/a'b", "/remote/a'b")]
    // Regex locations take no URI part: the request URI is passed.
    [InlineData("location ~ ^/re/(.*)$ { proxy_pass http://ORIGIN; }", "/re/x%20y?z", "/re/x%20y?z")]
    // Variables in proxy_pass: the URL is passed as built.
    [InlineData("location /v/ { proxy_pass http://ORIGIN/built$uri$is_args$args; }", "/v/x?y=1", "/built/v/x?y=1")]
    [InlineData("location /v/ { proxy_pass http://ORIGIN$request_uri; }", "/v/a%2Fb?c", "/v/a%2Fb?c")]
    public async Task OriginReceives(string locations, string requested, string expected)
    {
        var seen = await TargetAsync(locations, requested);
        Assert.Equal(expected, seen.Target);
    }

    [Fact]
    public async Task DefaultsAreHttp10WithHostOfTheUrlAndConnectionClose()
    {
        var seen = await TargetAsync("location / { proxy_pass http://ORIGIN; }", "/x", "X-Client: 1\r\n");
        Assert.Equal("HTTP/1.0", seen.Version);
        Assert.StartsWith("127.0.0.1:", seen.Header("Host"), StringComparison.Ordinal);
        Assert.Equal("close", seen.Header("Connection"));
        Assert.Equal("1", seen.Header("X-Client"));
        Assert.Equal("Host", seen.Headers[0].Key);
    }

    [Fact]
    public async Task VariableHostThatIsAnAddress_IsUsedAndANameNeedsAResolver()
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server("location / { proxy_pass http://$http_x_target; }"));
        var ok = await ProxyTest.RawAsync(portico, $"GET /a HTTP/1.1\r\nHost: t\r\nX-Target: {origin.Address}\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", ok, StringComparison.Ordinal);
        Assert.True(origin.Requests.TryDequeue(out var seen));
        Assert.Equal("/a", seen!.Target);
        Assert.Equal(origin.Address, seen.Header("Host"));

        var bad = await ProxyTest.RawAsync(portico, $"GET /a HTTP/1.1\r\nHost: t\r\nX-Target: localhost:{origin.Port}\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502", bad, StringComparison.Ordinal);
        Assert.Contains("[error]", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        Assert.Contains("no resolver defined to resolve localhost, client: 127.0.0.1, server: , request: \"GET /a HTTP/1.1\", host: \"t\"", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AHostnameResolvesAtLoadTime()
    {
        var seen = await TargetAsync("location / { proxy_pass http://localhost:ORIGINPORT; }", "/hello");
        Assert.Equal("/hello", seen.Target);
    }

    [Fact]
    public async Task AutoRedirect_DirectoryWithoutSlashGets301()
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location /dir/ {{ proxy_pass http://{origin.Address}; }}"));
        var response = await ProxyTest.RawAsync(portico, "GET /dir?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 301", response, StringComparison.Ordinal);
        Assert.Contains($"Location: http://example.com:{portico.Port}/dir/?x=1\r\n", response, StringComparison.Ordinal);
        Assert.Equal(0, origin.Accepted);
    }

    [Fact]
    public async Task UnknownHostFailsToLoad()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartHttpAsync(ProxyTest.Server("location / { proxy_pass http://no-such-host.invalid; }")));
        Assert.Contains("[emerg] host not found in upstream \"no-such-host.invalid\" in ", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("location ~ /x { proxy_pass http://127.0.0.1:1/uri; }", "\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block")]
    [InlineData("location / { proxy_pass ftp://127.0.0.1; }", "invalid URL prefix")]
    [InlineData("location / { proxy_pass http://127.0.0.1:99999; }", "invalid port in upstream \"127.0.0.1:99999\"")]
    [InlineData("location / { proxy_pass http://127.0.0.1:1; proxy_pass http://127.0.0.1:2; }", "\"proxy_pass\" directive is duplicate")]
    [InlineData("location / { proxy_redirect default; proxy_pass http://127.0.0.1:1; }", "\"proxy_redirect default\" should be placed after the \"proxy_pass\" directive")]
    [InlineData("location / { proxy_pass http://127.0.0.1:1; proxy_buffers 1 4k; }", "there must be at least 2 \"proxy_buffers\"")]
    [InlineData("location / { proxy_pass http://127.0.0.1:1; proxy_busy_buffers_size 64k; }", "\"proxy_busy_buffers_size\" must be less than the size of all \"proxy_buffers\" minus one buffer")]
    [InlineData("location / { proxy_pass https://127.0.0.1:1; proxy_ssl_verify on; }", "no proxy_ssl_trusted_certificate for proxy_ssl_verify")]
    public async Task LoadErrorsAreNginxs(string locations, string message)
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartHttpAsync(ProxyTest.Server(locations)));
        Assert.Contains("[emerg] " + message, e.Message, StringComparison.Ordinal);
    }
}
