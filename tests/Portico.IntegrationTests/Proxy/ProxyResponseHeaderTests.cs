using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>proxy_hide_header, proxy_pass_header, proxy_ignore_headers, proxy_redirect and proxy_cookie_* on real responses.</summary>
public sealed class ProxyResponseHeaderTests
{
    /// <summary>Runs one request against an origin answering with the given headers; returns the client's raw response.</summary>
    private static async Task<string> ResponseAsync(string locations, string[] originHeaders, string path = "/", string host = "client.example")
    {
        var port = 0;
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.RespondAsync(200, "body", [.. originHeaders.Select(h => h.Replace("ORIGINPORT", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))]);
            }
        });
        port = origin.Port;
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server(locations.Replace("ORIGIN", origin.Address, StringComparison.Ordinal)));
        return (await ProxyTest.RawAsync(portico, $"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"))
            .Replace(portico.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "PORT", StringComparison.Ordinal)
            .Replace(origin.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "OPORT", StringComparison.Ordinal);
    }

    private static string? Header(string response, string name)
    {
        foreach (var line in response[..response.IndexOf("\r\n\r\n", StringComparison.Ordinal)].Split("\r\n"))
        {
            if (line.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
            {
                return line[(name.Length + 1)..].Trim();
            }
        }

        return null;
    }

    private static List<string> Headers(string response, string name) =>
        [.. response[..response.IndexOf("\r\n\r\n", StringComparison.Ordinal)].Split("\r\n")
            .Where(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase)).Select(l => l[(name.Length + 1)..].Trim())];

    [Fact]
    public async Task DefaultHiddenHeadersAreReplacedOrDropped()
    {
        var response = await ResponseAsync("location / { proxy_pass http://ORIGIN; }",
            ["Server: origin/1.0", "Date: Tue, 01 Jan 2019 00:00:00 GMT", "X-Pad: avoid browser bug", "X-Accel-Charset: utf-8", "X-Accel-Expires: 10", "X-Powered-By: php", "Connection: close"]);
        Assert.StartsWith("portico", Header(response, "Server"), StringComparison.Ordinal);
        Assert.DoesNotContain("2019", Header(response, "Date"), StringComparison.Ordinal);
        Assert.Null(Header(response, "X-Pad"));
        Assert.Null(Header(response, "X-Accel-Charset"));
        Assert.Null(Header(response, "X-Accel-Expires"));
        Assert.Equal("php", Header(response, "X-Powered-By"));
        Assert.EndsWith("\r\n\r\nbody", response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HideAndPassHeader()
    {
        var response = await ResponseAsync("location / { proxy_pass http://ORIGIN; proxy_hide_header X-Powered-By; proxy_pass_header Server; proxy_pass_header X-Accel-Charset; }",
            ["Server: origin/1.0", "X-Powered-By: php", "X-Accel-Charset: utf-8"]);
        Assert.Equal("origin/1.0", Header(response, "Server"));
        Assert.Null(Header(response, "X-Powered-By"));
        Assert.Equal("utf-8", Header(response, "X-Accel-Charset"));
    }

    [Fact]
    public async Task HideAndPassArrays_AreInheritedSeparately()
    {
        var response = await ResponseAsync("""
            proxy_hide_header X-A;
            location / { proxy_pass http://ORIGIN; proxy_pass_header Server; }
            """, ["Server: origin", "X-A: 1"]);
        Assert.Equal("origin", Header(response, "Server"));
        Assert.Null(Header(response, "X-A"));
    }

    [Fact]
    public async Task RepeatedHeadersStaySeparate()
    {
        var response = await ResponseAsync("location / { proxy_pass http://ORIGIN; }", ["Set-Cookie: a=1", "Set-Cookie: b=2", "Vary: Accept", "Vary: Cookie"]);
        Assert.Equal(["a=1", "b=2"], Headers(response, "Set-Cookie"));
    }

    [Theory]
    // proxy_redirect default with a URI part: the URL is replaced by the location.
    [InlineData("location /one/ { proxy_pass http://ORIGIN/two/; }", "http://127.0.0.1:OPORT/two/some/uri/", "http://client.example:PORT/one/some/uri/")]
    // Without a URI part: the URL with "/" becomes "/" (then made absolute, as nginx does).
    [InlineData("location /one/ { proxy_pass http://ORIGIN; }", "http://127.0.0.1:OPORT/one/x", "http://client.example:PORT/one/x")]
    // An unmatched or relative upstream redirect is passed as it came.
    [InlineData("location /one/ { proxy_pass http://ORIGIN/two/; }", "http://elsewhere/x", "http://elsewhere/x")]
    [InlineData("location /one/ { proxy_pass http://ORIGIN/two/; }", "/relative", "/relative")]
    [InlineData("location /one/ { proxy_pass http://ORIGIN/two/; proxy_redirect off; }", "http://127.0.0.1:OPORT/two/x", "http://127.0.0.1:OPORT/two/x")]
    // Explicit rules, several, the first that matches wins; variables in the replacement.
    [InlineData("location /one/ { proxy_pass http://ORIGIN/two/; proxy_redirect http://a/ /; proxy_redirect http://b/ http://$host/bee/; }", "http://b/x", "http://client.example/bee/x")]
    // Regex with captures; a relative replacement is made absolute.
    [InlineData("location /one/ { proxy_pass http://ORIGIN/two/; proxy_redirect ~^http://[^/]+(/two)?/(.*)$ /one/$2; }", "http://other:81/two/z?q", "http://client.example:PORT/one/z?q")]
    [InlineData("location /one/ { proxy_pass http://ORIGIN/two/; proxy_redirect ~*^HTTP://OTHER/(.*)$ https://$host/$1; }", "http://other/k", "https://client.example/k")]
    public async Task ProxyRedirect(string locations, string upstreamLocation, string expected)
    {
        var response = await ResponseAsync(locations, [$"Location: {upstreamLocation.Replace("OPORT", "ORIGINPORT", StringComparison.Ordinal)}"], "/one/");
        Assert.Equal(expected, Header(response, "Location"));
    }

    [Fact]
    public async Task ProxyRedirect_RewritesRefresh()
    {
        var response = await ResponseAsync("location /one/ { proxy_pass http://ORIGIN/two/; }", ["Refresh: 5; url=http://127.0.0.1:ORIGINPORT/two/next"], "/one/");
        Assert.Equal("5; url=/one/next", Header(response, "Refresh"));
    }

    [Theory]
    [InlineData("proxy_cookie_domain localhost example.org;", "a=1; Domain=localhost; Path=/", "a=1; Domain=example.org; Path=/")]
    [InlineData("proxy_cookie_domain localhost example.org;", "a=1; Domain=.localhost", "a=1; Domain=.example.org")]
    [InlineData("proxy_cookie_domain ~\\.(?P<sl>[-0-9a-z]+)\\.internal$ $sl.example.org;", "a=1; domain=app.web.internal", "a=1; domain=web.example.org")]
    [InlineData("proxy_cookie_path /two/ /one/;", "s=x; Path=/two/deep; HttpOnly", "s=x; Path=/one/deep; HttpOnly")]
    [InlineData("proxy_cookie_path ~*^/USER/([^/]+) /u/$1;", "s=x; path=/user/bob/settings", "s=x; path=/u/bob")]
    [InlineData("proxy_cookie_path /other/ /one/;", "s=x; Path=/two/", "s=x; Path=/two/")]
    [InlineData("proxy_cookie_flags one httponly secure samesite=strict;", "one=1; Path=/", "one=1; Path=/; Secure; HttpOnly; SameSite=Strict")]
    [InlineData("proxy_cookie_flags ~ nosecure samesite=lax;", "two=2; Secure; SameSite=None", "two=2; SameSite=Lax")]
    [InlineData("proxy_cookie_flags one secure;", "other=1", "other=1")]
    [InlineData("proxy_cookie_path /two/ /one/; proxy_cookie_path off;", "unused", "")]
    public async Task CookieRewrites(string directives, string setCookie, string expected)
    {
        if (expected.Length == 0)
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => ResponseAsync($"location / {{ proxy_pass http://ORIGIN; {directives} }}", []));
            Assert.Contains("\"proxy_cookie_path\" directive is duplicate", e.Message, StringComparison.Ordinal);
            return;
        }

        var response = await ResponseAsync($"location / {{ proxy_pass http://ORIGIN; {directives} }}", [$"Set-Cookie: {setCookie}"]);
        Assert.Equal(expected, Header(response, "Set-Cookie"));
    }

    [Fact]
    public async Task XAccelRedirect_RedirectsInternallyUnlessIgnored()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is { } req)
            {
                await c.RespondAsync(200, "origin body", "X-Accel-Redirect: /internal/file?k=v", "Content-Type: application/x-kept", "X-Dropped: 1");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location /app/ { proxy_pass http://{{origin.Address}}; }
            location /ignored/ { proxy_pass http://{{origin.Address}}; proxy_ignore_headers X-Accel-Redirect; }
            location /internal/ { internal; return 200 "internal $uri $args $request_method"; }
            """));
        var response = await ProxyTest.RawAsync(portico, "POST /app/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        Assert.EndsWith("internal /internal/file k=v GET", response, StringComparison.Ordinal);
        Assert.Null(Header(response, "X-Dropped"));

        var ignored = await ProxyTest.RawAsync(portico, "GET /ignored/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.EndsWith("origin body", ignored, StringComparison.Ordinal);
        Assert.Null(Header(ignored, "X-Accel-Redirect"));
    }
}
