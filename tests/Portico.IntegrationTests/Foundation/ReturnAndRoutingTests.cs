using System.Net;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Foundation;

/// <summary>return, server and location selection end to end over real sockets.</summary>
public class ReturnAndRoutingTests : IAsyncLifetime
{
    private PorticoInstance _portico = null!;

    public async Task InitializeAsync()
    {
        _portico = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port} default_server;
                server_name _;
                location / { return 200 "default $host $uri $args\n"; }
                location = /gone { return 410; }
                location = /moved { return 301 /elsewhere; }
                location = /moved-abs { return 302 https://example.org/x; }
                location = /url-only { return http://example.org/u; }
                location = /close { return 444; }
                location = /empty { return 204; }
                location /internal/ { internal; return 200 "secret\n"; }
                location ~ ^/re/(?<name>[a-z]+)/(\d+)$ { return 200 "name=$name id=$2\n"; }
                location = /utf8 { return 200 "héllo ✓\n"; }
                location = /utf8-var { return 200 "héllo $arg_x ✓\n"; }
            }
            server {
                listen 127.0.0.1:{port};
                server_name www.example.com *.example.org;
                server_tokens off;
                location / { return 200 "named server $server_name\n"; }
                location = /notfound { return 404; }
            }
            server {
                listen 127.0.0.1:{port};
                server_name ~^(?<sub>[a-z]+)\.example\.net$;
                location / { return 200 "regex server $sub\n"; }
            }
            """);
    }

    public async Task DisposeAsync() => await _portico.DisposeAsync();

    private async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> GetAsync(string path, string? host = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        var response = await _portico.Client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    [Fact]
    public async Task ReturnsTextWithVariables()
    {
        var (status, body, response) = await GetAsync("/some/path?x=1", "Foo.Test:8080");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("default foo.test /some/path x=1\n", body);
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.ToString());
        Assert.Equal("portico/0.1.0", response.Headers.Server.ToString());
    }

    [Fact]
    public async Task SelectsServersByName()
    {
        Assert.Equal("named server www.example.com\n", (await GetAsync("/", "WWW.example.com")).Body);
        Assert.Equal("named server www.example.com\n", (await GetAsync("/", "a.b.example.org")).Body);
        Assert.Equal("regex server shop\n", (await GetAsync("/", "shop.example.net")).Body);
        Assert.StartsWith("default", (await GetAsync("/", "unknown.test")).Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EachRequestOnAConnectionIsRoutedByItsOwnHost()
    {
        // The normalized Host is remembered (per thread): a later request with another Host (or a bad one) is not served as the first.
        var response = await _portico.RawAsync(
            "GET / HTTP/1.1\r\nHost: a.b.example.org\r\n\r\n"
            + "GET / HTTP/1.1\r\nHost: shop.example.net\r\n\r\n"
            + "GET / HTTP/1.1\r\nHost: a.b.example.org\r\n\r\n"
            + "GET / HTTP/1.1\r\nHost: bad..host\r\n\r\n",
            untilClose: true);

        var named = response.IndexOf("named server www.example.com", StringComparison.Ordinal);
        var regex = response.IndexOf("regex server shop", StringComparison.Ordinal);
        var again = response.IndexOf("named server www.example.com", named + 1, StringComparison.Ordinal);
        var bad = response.IndexOf("HTTP/1.1 400 Bad Request", StringComparison.Ordinal);
        Assert.True(named >= 0 && regex > named && again > regex && bad > again, response);
    }

    [Fact]
    public async Task ErrorStatusesGetNginxPages()
    {
        var (status, body, response) = await GetAsync("/gone");
        Assert.Equal(HttpStatusCode.Gone, status);
        Assert.Equal("<html>\r\n<head><title>410 Gone</title></head>\r\n<body>\r\n<center><h1>410 Gone</h1></center>\r\n<hr><center>portico/0.1.0</center>\r\n</body>\r\n</html>\r\n", body);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.ToString());

        (status, body, response) = await GetAsync("/notfound", "www.example.com");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("<hr><center>portico</center>", body, StringComparison.Ordinal);
        Assert.Equal("portico", response.Headers.Server.ToString());
    }

    [Fact]
    public async Task RedirectsAreMadeAbsolute()
    {
        var (status, body, response) = await GetAsync("/moved", "site.test");
        Assert.Equal(HttpStatusCode.MovedPermanently, status);
        Assert.Equal($"http://site.test:{_portico.Port}/elsewhere", response.Headers.Location!.ToString());
        Assert.Contains("<title>301 Moved Permanently</title>", body, StringComparison.Ordinal);

        (status, _, response) = await GetAsync("/moved-abs");
        Assert.Equal(HttpStatusCode.Found, status);
        Assert.Equal("https://example.org/x", response.Headers.Location!.ToString());

        (status, _, response) = await GetAsync("/url-only");
        Assert.Equal(HttpStatusCode.Found, status);
        Assert.Equal("http://example.org/u", response.Headers.Location!.ToString());
    }

    [Theory]
    [InlineData("/moved-abs", "HTTP/1.1 302 Moved Temporarily\r\n")]
    [InlineData("/moved", "HTTP/1.1 301 Moved Permanently\r\n")]
    [InlineData("/gone", "HTTP/1.1 410 Gone\r\n")]
    public async Task StatusLinesAreNginxs(string path, string statusLine)
    {
        var raw = await _portico.RawAsync($"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.StartsWith(statusLine, raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoContentAndClose()
    {
        var (status, body, _) = await GetAsync("/empty");
        Assert.Equal(HttpStatusCode.NoContent, status);
        Assert.Equal(string.Empty, body);

        var raw = await _portico.RawAsync("GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(string.Empty, raw);
    }

    [Fact]
    public async Task InternalLocationsAnswer404ToClients()
    {
        var (status, _, _) = await GetAsync("/internal/x");
        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task RegexCapturesInLocation()
    {
        Assert.Equal("name=abc id=42\n", (await GetAsync("/re/abc/42")).Body);
    }

    [Theory]
    [InlineData("GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", true)]
    [InlineData("GET /a/%2e%2e/%2e%2e/b HTTP/1.1\r\nHost: x\r\n\r\n", true)]
    [InlineData("GET / HTTP/1.1\r\nHost: bad..host\r\n\r\n", true)]
    [InlineData("GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", false)]   // Kestrel's parser rejects these itself,
    [InlineData("GET / HTTP/1.1\r\nHost: bad/host\r\n\r\n", false)]  // with an empty 400 body
    public async Task BadRequestsGet400AndTheConnectionIsClosed(string request, bool nginxPage)
    {
        var raw = await _portico.RawAsync(request);
        Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", raw, StringComparison.Ordinal);
        Assert.Contains("Connection: close\r\n", raw, StringComparison.Ordinal);
        if (nginxPage)
        {
            Assert.Contains("<center><h1>400 Bad Request</h1></center>", raw, StringComparison.Ordinal);
        }

        // Other clients are unaffected.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync("/")).Status);
    }

    [Fact]
    public async Task UriIsNormalizedBeforeMatching()
    {
        var raw = await _portico.RawAsync("GET /x/../re/%61bc/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.EndsWith("name=abc id=7\n", raw, StringComparison.Ordinal);
        raw = await _portico.RawAsync("GET //a///b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.EndsWith("default x /a/b \n", raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TextIsSentAsUtf8WithItsByteLength()
    {
        // A constant text is encoded once for every request; a text with variables per request. Requests in
        // flight together must each get their own text.
        var requests = Enumerable.Range(0, 24).Select(async i =>
        {
            var path = i % 2 == 0 ? "/utf8" : $"/utf8-var?x=v{i}";
            var expected = i % 2 == 0 ? "héllo ✓\n" : $"héllo v{i} ✓\n";
            var response = await _portico.Client.GetAsync(path);
            var bytes = await response.Content.ReadAsByteArrayAsync();
            Assert.Equal(System.Text.Encoding.UTF8.GetBytes(expected), bytes);
            Assert.Equal(bytes.Length, response.Content.Headers.ContentLength);
        });
        await Task.WhenAll(requests);

        var head = await _portico.RawAsync("HEAD /utf8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.Contains("\r\nContent-Length: 11\r\n", head, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", head, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HeadGetsHeadersOnly()
    {
        var raw = await _portico.RawAsync("HEAD /gone HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 410 Gone\r\n", raw, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http10WithoutHostUsesDefaultServer()
    {
        var raw = await _portico.RawAsync("GET /p HTTP/1.0\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK", raw, StringComparison.Ordinal);
        Assert.EndsWith("default _ /p \n", raw, StringComparison.Ordinal);
    }
}
