using System.Text;
using Portico.Proxy;

namespace Portico.Tests.Proxy;

public class ProxyUrlTests
{
    [Theory]
    [InlineData("http://127.0.0.1", "127.0.0.1", 80, null, "127.0.0.1", "80")]
    [InlineData("http://127.0.0.1:8080", "127.0.0.1", 8080, null, "127.0.0.1:8080", "8080")]
    [InlineData("http://127.0.0.1:80/", "127.0.0.1", 80, "/", "127.0.0.1", "80")]
    [InlineData("https://backend/api/", "backend", 443, "/api/", "backend", "443")]
    [InlineData("https://backend:443", "backend", 443, null, "backend", "443")]
    [InlineData("HTTP://Backend:81/x?y", "Backend", 81, "/x?y", "Backend:81", "81")]
    [InlineData("http://[::1]:8080/v6", "[::1]", 8080, "/v6", "[::1]:8080", "8080")]
    [InlineData("http://host?a=b", "host", 80, "?a=b", "host", "80")]
    public void ParsesLikeNgxParseUrl(string url, string host, int port, string? uri, string hostHeader, string portText)
    {
        var u = ProxyUrl.Parse(url, out var error);
        Assert.Null(error);
        Assert.Equal(host, u!.Host);
        Assert.Equal(port, u.Port);
        Assert.Equal(uri, u.Uri);
        Assert.Equal(hostHeader, u.HostHeader);
        Assert.Equal(portText, u.PortText);
    }

    [Fact]
    public void UnixSockets()
    {
        var u = ProxyUrl.Parse("http://unix:/run/app.sock:/prefix/", out _)!;
        Assert.Equal("/run/app.sock", u.UnixPath);
        Assert.Equal("/prefix/", u.Uri);
        Assert.Equal("localhost", u.HostHeader);
        Assert.Equal(string.Empty, u.PortText);
        Assert.Null(ProxyUrl.Parse("http://unix:/run/app.sock", out _)!.Uri);
    }

    [Theory]
    [InlineData("ftp://x", "invalid URL prefix")]
    [InlineData("http://x:0", "invalid port in upstream \"x:0\"")]
    [InlineData("http://x:70000/", "invalid port in upstream \"x:70000/\"")]
    [InlineData("http://:80", "no host in upstream \":80\"")]
    [InlineData("http://unix:", "no path in the unix domain socket in upstream \"unix:\"")]
    public void Errors(string url, string message)
    {
        Assert.Null(ProxyUrl.Parse(url, out var error));
        Assert.Equal(message, error);
    }

    [Fact]
    public void AtRunTimeAUriOfOnlyArgumentsGetsASlash()
    {
        Assert.Equal("/?a=b", ProxyUrl.Parse("http://host?a=b", out _, runtime: true)!.Uri);
        Assert.Null(ProxyUrl.Parse("gopher://x", out var error, runtime: true));
        Assert.Equal("invalid URL prefix in \"gopher://x\"", error);
    }

    [Theory]
    [InlineData("/plain/path", "/plain/path")]
    [InlineData("/a b", "/a%20b")]
    [InlineData("/q?#%", "/q%3F%23%25")]
    [InlineData("/<>\"\\^`{|}", "/%3C%3E%22%5C%5E%60%7B%7C%7D")]
    [InlineData("/~!$&'()*+,;=:@[]", "/~!$&'()*+,;=:@[]")]
    [InlineData("/é", "/%C3%A9")]
    [InlineData("/\u0001\u007f", "/%01%7F")]
    public void EscapesLikeNgxEscapeUri(string uri, string expected)
    {
        var sb = new StringBuilder();
        ProxyRequestBuilder.EscapeUri(sb, uri);
        Assert.Equal(expected, sb.ToString());
    }

    [Theory]
    [InlineData("/x?y", "/x?y")]
    [InlineData("http://example.com/abs?x", "/abs?x")]
    [InlineData("http://example.com", "/")]
    public void UnparsedUriDropsTheAuthorityOfAbsoluteTargets(string raw, string expected)
    {
        Assert.Equal(expected, ProxyRequestBuilder.UnparsedUri(raw));
    }

    [Fact]
    public void CookieAttributesParseLikeNginx()
    {
        var attrs = ProxyRewrites.Parse("sid = 42 ;Path=/app; HttpOnly;  Domain = .example.org ");
        Assert.Equal([("sid", "42"), ("Path", "/app"), ("HttpOnly", null), ("Domain", ".example.org")], attrs);
    }

    [Theory]
    [InlineData("X-Forwarded-For", false, true)]
    [InlineData("x_under", false, false)]
    [InlineData("x_under", true, true)]
    [InlineData("X.Dot", true, false)]
    [InlineData("", true, false)]
    public void HeaderNamesFollowUnderscoresInHeaders(string name, bool underscores, bool valid)
    {
        Assert.Equal(valid, Portico.ClientSide.ClientModule.IsValidHeaderName(name, underscores));
    }
}
