using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using Portico.Proxy;
using Portico.Upstreams.Transport;
using Portico.Upstreams.Transport.Http1;

namespace Portico.IntegrationTests.Transport;

/// <summary>
/// Portico's HTTP/1 transport behind proxy_pass: which transport a location gets, and what a client and the
/// error log see for origins that break HTTP/1.1's framing rules (nginx's status and messages).
/// </summary>
public sealed class Http1TransportTests
{
    private static async Task<(string Response, string Log)> ProxyAsync(string origin, string directives = "", string request = "GET /p HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    {
        await using var o = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync(origin);
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{o.Address}; proxy_read_timeout 5s; {directives} }}"));
        var response = await ProxyTest.RawAsync(portico, request, 20);
        var log = (await portico.ReadErrorLogAsync()).Replace(o.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "OPORT", StringComparison.Ordinal);
        return (response, log);
    }

    private static string Line(string message) => message;

    private static string Suffix(string action) =>
        $" while {action}, client: 127.0.0.1, server: , request: \"GET /p HTTP/1.1\", upstream: \"http://127.0.0.1:OPORT/p\", host: \"h\"";

    [Fact]
    public async Task TheTransportFollowsTheHttpVersion()
    {
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server("""
            location /10 { proxy_pass http://127.0.0.1:9; }
            location /11 { proxy_pass http://127.0.0.1:9; proxy_http_version 1.1; }
            location /2 { proxy_pass http://127.0.0.1:9; proxy_http_version 2; }
            location /s { proxy_pass https://127.0.0.1:9; proxy_http_version 1.1; }
            """));
        IUpstreamTransport Of(string path) =>
            Assert.IsType<ProxyHandler>(portico.Host.Current!.Servers[0].Locations.Find(path, null).Location!.Content).Location.Transport;
        var expected = Http1Transport.UseYarp ? typeof(YarpTransport) : typeof(Http1Transport);
        Assert.IsType(expected, Of("/10"));
        Assert.IsType(expected, Of("/11"));
        Assert.IsType(expected, Of("/s"));
        Assert.IsType<YarpTransport>(Of("/2"));
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "upstream sent duplicate header line: \"Content-Length: 2\", previous value: \"Content-Length: 2\"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "upstream sent unknown \"Transfer-Encoding\": \"gzip\"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", "upstream sent invalid \"Content-Length\" header: \"Content-Length: +2\"")]
    [InlineData("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", "upstream sent no valid HTTP/1.0 header")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok", "upstream sent invalid header: \"X-A: 1\\x0a...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: \u0001\r\nContent-Length: 2\r\n\r\nok", "upstream sent invalid header: \"X-A: \\x01...\"")]
    [InlineData("HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok", "upstream sent no valid HTTP/1.0 header")]
    [InlineData("SSH-2.0-OpenSSH_9.2\r\n", "upstream sent no valid HTTP/1.0 header")]
    public async Task InvalidHeads_Are502WithNginxMessages(string origin, string message)
    {
        var (response, log) = await ProxyAsync(origin);
        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Contains("[error]", log, StringComparison.Ordinal);
        Assert.Contains(Line(message) + Suffix("reading response header from upstream"), log, StringComparison.Ordinal);
    }

    // The attempt loop aborts the client connection of a chunked response that failed (Kestrel may drop what
    // was not sent yet): the client never sees a clean end.
    [Fact]
    public async Task InvalidChunkedBody_IsAnErrorWhileReadingUpstream()
    {
        var (response, log) = await ProxyAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", "proxy_http_version 1.1; proxy_buffering off;");
        Assert.DoesNotContain("\r\n0\r\n\r\n", response, StringComparison.Ordinal);
        Assert.Contains(Line("upstream sent invalid chunked response") + Suffix("reading upstream"), log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChunkedBodyEndingEarly_IsAnErrorWhileReadingUpstream()
    {
        var (response, log) = await ProxyAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "proxy_http_version 1.1; proxy_buffering off;");
        Assert.DoesNotContain("\r\n0\r\n\r\n", response, StringComparison.Ordinal);
        Assert.Contains(Line("upstream prematurely closed connection") + Suffix("reading upstream"), log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MoreDataThanTheLength_IsCutWithNginxWarning()
    {
        var (response, log) = await ProxyAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", "proxy_buffering off;");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nok", response, StringComparison.Ordinal);
        Assert.Contains("[warn]", log, StringComparison.Ordinal);
        Assert.Contains("upstream sent more data than specified in \"Content-Length\" header while reading upstream", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BodyUntilClose_ForAnHttp10Origin()
    {
        var (response, _) = await ProxyAsync("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.EndsWith("\r\nd\r\nuntil the end\r\n0\r\n\r\n", response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TrailersTooBig_AreAnErrorInTheBody()
    {
        var big = "X-Big: " + new string('a', 5000) + "\r\n";
        var (response, log) = await ProxyAsync($"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n{big}\r\n", "proxy_http_version 1.1; proxy_buffering off;");
        Assert.DoesNotContain("\r\n0\r\n\r\n", response, StringComparison.Ordinal);
        Assert.Contains(Line("upstream sent too big trailers") + Suffix("reading upstream"), log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CustomReasonPhrase_IsPassedOn()
    {
        var (response, _) = await ProxyAsync("HTTP/1.1 299 Fine Indeed\r\nContent-Length: 2\r\n\r\nok");
        Assert.StartsWith("HTTP/1.1 299 Fine Indeed\r\n", response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestHead_AsWritten()
    {
        RawRequest? seen = null;
        await using var o = RawOrigin.Start(async c =>
        {
            if ((seen = await c.ReadHeadAsync()) is not null)
            {
                await c.ReadBodyAsync();
                await c.RespondAsync(200, "ok");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location / { proxy_pass http://{{o.Address}}; proxy_http_version 1.1; proxy_set_header X-Uri $uri; proxy_set_header Content-Length 99; }
            """));
        var response = await ProxyTest.RawAsync(portico, "POST /p%20q?a=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Client: c\r\nConnection: close\r\n\r\nhello");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Equal("POST /p%20q?a=1 HTTP/1.1", seen!.RequestLine);
        // The framing header is the body's own, whatever proxy_set_header said.
        Assert.Equal("5", seen.Header("Content-Length"));
        Assert.Equal("/p q", seen.Header("X-Uri"));
        Assert.Equal("c", seen.Header("X-Client"));
        Assert.Equal(o.Address, seen.Header("Host"));
    }

    [Fact]
    public async Task HeaderValueWithNewline_IsNotSent()
    {
        await using var o = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{o.Address}; proxy_set_header X-Uri $uri; }}"));
        var response = await ProxyTest.RawAsync(portico, "GET /a%0d%0aInjected:%20yes HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Empty(o.Requests);
        Assert.Contains("invalid header \"X-Uri\" in the request to upstream while sending request to upstream", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }
}
