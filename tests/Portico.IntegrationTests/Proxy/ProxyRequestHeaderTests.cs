using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>proxy_set_header, nginx's default request headers, what is never passed, and the related directives.</summary>
public sealed class ProxyRequestHeaderTests
{
    private static async Task<RawRequest> SeenAsync(string http, string request)
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(http.Replace("ORIGIN", origin.Address, StringComparison.Ordinal));
        var response = await ProxyTest.RawAsync(portico, request);
        Assert.True(origin.Requests.TryDequeue(out var seen), "the origin received nothing:\n" + response + "\n" + await portico.ReadErrorLogAsync());
        return seen!;
    }

    private static string Get(string path, string headers = "") => $"GET {path} HTTP/1.1\r\nHost: client.example\r\n{headers}Connection: close\r\n\r\n";

    [Fact]
    public async Task SetHeader_OverridesDefaultsAndAddsVariables()
    {
        var seen = await SeenAsync(ProxyTest.Server("""
            location / {
                proxy_pass http://ORIGIN;
                proxy_set_header Host $host;
                proxy_set_header X-Real-IP $remote_addr;
                proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                proxy_set_header X-Forwarded-Proto $scheme;
                proxy_set_header X-Proxy $proxy_host:$proxy_port;
            }
            """), Get("/", "X-Forwarded-For: 10.0.0.1\r\n"));
        Assert.Equal("client.example", seen.Header("Host"));
        Assert.Equal("127.0.0.1", seen.Header("X-Real-IP"));
        Assert.Equal("10.0.0.1, 127.0.0.1", seen.Header("X-Forwarded-For"));
        Assert.Equal("http", seen.Header("X-Forwarded-Proto"));
        Assert.Matches(@"^127\.0\.0\.1:\d+:\d+$", seen.Header("X-Proxy"));
        Assert.Equal("close", seen.Header("Connection"));
        Assert.Equal(["Host", "X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto", "X-Proxy", "Connection"], seen.Headers.Take(6).Select(h => h.Key));
    }

    [Fact]
    public async Task ProxyAddXForwardedFor_WithoutClientHeaderIsTheClientAddress()
    {
        var seen = await SeenAsync(ProxyTest.Server("location / { proxy_pass http://ORIGIN; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }"), Get("/"));
        Assert.Equal("127.0.0.1", seen.Header("X-Forwarded-For"));
    }

    [Fact]
    public async Task ProxyAddXForwardedFor_JoinsEveryClientLine()
    {
        // nginx 1.23+: every X-Forwarded-For line of the request, joined with ", ", then the client address.
        var seen = await SeenAsync(ProxyTest.Server("location / { proxy_pass http://ORIGIN; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }"),
            Get("/", "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n"));
        Assert.Equal("10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1", seen.Header("X-Forwarded-For"));
    }

    [Fact]
    public async Task EmptyValueRemovesTheHeader()
    {
        var seen = await SeenAsync(ProxyTest.Server("""
            location / {
                proxy_pass http://ORIGIN;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_set_header Accept-Encoding "";
                proxy_set_header X-Empty $http_x_missing;
            }
            """), Get("/", "Accept-Encoding: gzip\r\n"));
        Assert.Equal("HTTP/1.1", seen.Version);
        Assert.False(seen.Has("Connection"));
        Assert.False(seen.Has("Accept-Encoding"));
        Assert.False(seen.Has("X-Empty"));
    }

    [Fact]
    public async Task SetHeaderArrays_AreInheritedOnlyByLevelsThatSetNone()
    {
        const string config = """
            proxy_set_header X-Level http;
            server {
                listen 127.0.0.1:{port};
                proxy_set_header X-Level server;
                proxy_set_header X-Server yes;
                location /inherit { proxy_pass http://ORIGIN; }
                location /own { proxy_pass http://ORIGIN; proxy_set_header X-Own yes; }
            }
            """;
        var inherited = await SeenAsync(config, Get("/inherit"));
        Assert.Equal("server", inherited.Header("X-Level"));
        Assert.Equal("yes", inherited.Header("X-Server"));

        var own = await SeenAsync(config, Get("/own"));
        Assert.Equal("yes", own.Header("X-Own"));
        Assert.False(own.Has("X-Level"));
        Assert.False(own.Has("X-Server"));
    }

    [Fact]
    public async Task HopByHopAndConnectionListedHeaders_NeverReachTheOrigin()
    {
        var seen = await SeenAsync(ProxyTest.Server("location / { proxy_pass http://ORIGIN; }"),
            // Kestrel keeps the tokens of a Connection header only when it names neither "close" nor "keep-alive".
            "GET / HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nX-Hop: 1\r\nX-Kept: 2\r\nConnection: X-Hop, TE\r\n\r\n");
        Assert.False(seen.Has("TE"), string.Join(" | ", seen.Headers));
        Assert.False(seen.Has("Keep-Alive"));
        Assert.False(seen.Has("Upgrade"));
        Assert.False(seen.Has("Proxy-Connection"));
        Assert.False(seen.Has("X-Hop"), string.Join(" | ", seen.Headers));
        Assert.Equal("2", seen.Header("X-Kept"));
        Assert.Equal("close", seen.Header("Connection"));
    }

    [Fact]
    public async Task Expect_IsAnsweredByPorticoAndNotPassed()
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; }}"));
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, portico.Port);
        var stream = client.GetStream();
        await stream.WriteAsync("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"u8.ToArray());
        var buffer = new byte[256];
        var n = await stream.ReadAsync(buffer);
        Assert.StartsWith("HTTP/1.1 100 Continue", System.Text.Encoding.ASCII.GetString(buffer, 0, n), StringComparison.Ordinal);
        await stream.WriteAsync("hello"u8.ToArray());
        var rest = await new StreamReader(stream).ReadToEndAsync();
        Assert.Contains("200 OK", rest, StringComparison.Ordinal);
        Assert.True(origin.Requests.TryDequeue(out var seen));
        Assert.False(seen!.Has("Expect"));
        Assert.Equal("5", seen.Header("Content-Length"));
    }

    [Fact]
    public async Task PassRequestHeadersOff_SendsOnlyTheConfiguredOnes()
    {
        var seen = await SeenAsync(ProxyTest.Server("location / { proxy_pass http://ORIGIN; proxy_pass_request_headers off; proxy_set_header X-Only 1; }"),
            Get("/", "X-Client: 1\r\nCookie: a=b\r\n"));
        Assert.Equal("1", seen.Header("X-Only"));
        Assert.False(seen.Has("X-Client"));
        Assert.False(seen.Has("Cookie"));
        Assert.True(seen.Has("Host"));
    }

    [Fact]
    public async Task ProxyMethodAndPassRequestBodyOff()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.RespondAsync(200, "ok");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location / {
                proxy_pass http://{{origin.Address}};
                proxy_method PROPFIND;
                proxy_pass_request_body off;
                proxy_set_header Content-Length "";
            }
            """));
        var response = await ProxyTest.RawAsync(portico, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.True(origin.Requests.TryDequeue(out var seen));
        Assert.Equal("PROPFIND", seen!.Method);
        // nginx sends no Content-Length here; .NET's client always says "Content-Length: 0" for a method
        // that may carry a body and has none. No body follows either way.
        Assert.True(seen.Header("Content-Length") is null or "0", string.Join(" | ", seen.Headers));
        Assert.False(seen.Has("Transfer-Encoding"));
    }

    [Fact]
    public async Task SetBody_ReplacesTheBody()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                var body = System.Text.Encoding.UTF8.GetString(await c.ReadBodyAsync());
                await c.RespondAsync(200, "got:" + body);
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; proxy_set_body \"uri=$uri\"; }}"));
        var response = await ProxyTest.RawAsync(portico, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody");
        Assert.EndsWith("got:uri=/x", response, StringComparison.Ordinal);
        Assert.True(origin.Requests.TryDequeue(out var seen));
        Assert.Equal("6", seen!.Header("Content-Length"));
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("underscores_in_headers on;", true)]
    [InlineData("ignore_invalid_headers off;", true)]
    public async Task HeadersWithUnderscores_FollowUnderscoresInHeaders(string directive, bool passed)
    {
        var seen = await SeenAsync(ProxyTest.Server($"{directive} location / {{ proxy_pass http://ORIGIN; }}"), Get("/", "X_Under: 1\r\nX-Dash: 2\r\n"));
        Assert.Equal(passed, seen.Has("X_Under"));
        Assert.Equal("2", seen.Header("X-Dash"));
    }

    [Fact]
    public async Task RequestBodyVariable_IsTheBufferedBody()
    {
        var seen = await SeenAsync(ProxyTest.Server("location / { proxy_pass http://ORIGIN; proxy_set_header X-Body $request_body; }"),
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world");
        Assert.Equal("hello world", seen.Header("X-Body"));
    }
}
