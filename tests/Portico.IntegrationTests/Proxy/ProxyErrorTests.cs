using System.Net;
using System.Net.Sockets;
using Portico.IntegrationTests.Infrastructure;
using Portico.Upstreams;

namespace Portico.IntegrationTests.Proxy;

/// <summary>
/// 502 versus 504 and nginx's error_log lines for each way an origin can fail (the expected lines were
/// taken from nginx 1.22 with the same origins), next-upstream over several peers, and $upstream_*.
/// </summary>
public sealed class ProxyErrorTests
{
    private static async Task<(string Response, string Log)> FailAsync(Func<RawConnection, Task> behavior, string directives = "proxy_read_timeout 1s;", string path = "/p")
    {
        await using var origin = RawOrigin.Start(behavior);
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; {directives} }}"));
        var response = await ProxyTest.RawAsync(portico, $"GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 20);
        var log = (await portico.ReadErrorLogAsync()).Replace(origin.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "OPORT", StringComparison.Ordinal);
        return (response, log);
    }

    private static string Line(string message, string path = "/p") =>
        $"{message}, client: 127.0.0.1, server: , request: \"GET {path} HTTP/1.1\", upstream: \"http://127.0.0.1:OPORT{path}\", host: \"h\"";

    [Fact]
    public async Task Refused_Is502()
    {
        var port = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://127.0.0.1:{port}; }}"));
        var response = await ProxyTest.RawAsync(portico, "GET /p?a=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway", response, StringComparison.Ordinal);
        Assert.Contains("<center><h1>502 Bad Gateway</h1></center>", response, StringComparison.Ordinal);
        var log = await portico.ReadErrorLogAsync();
        Assert.Matches(@"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#\d+: \*\d+ connect\(\) failed \(111: Connection refused\) while connecting to upstream, client: 127\.0\.0\.1, server: , request: ""GET /p\?a=1 HTTP/1\.1"", upstream: ""http://127\.0\.0\.1:" + port + @"/p\?a=1"", host: ""h""", log);
    }

    [Fact]
    public async Task ConnectTimeout_Is504()
    {
        // A listener whose accept queue is full: SYNs go unanswered and connect() hangs.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var fillers = new List<Socket>();
        for (var i = 0; i < 4; i++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            try
            {
                s.Connect(IPAddress.Loopback, port);
            }
            catch (SocketException)
            {
            }

            fillers.Add(s);
        }

        try
        {
            await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://127.0.0.1:{port}; proxy_connect_timeout 500ms; }}"));
            var response = await ProxyTest.RawAsync(portico, "GET /p HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 20);
            Assert.StartsWith("HTTP/1.1 504", response, StringComparison.Ordinal);
            Assert.Contains(Line("upstream timed out (110: Connection timed out) while connecting to upstream").Replace("OPORT", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal),
                await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        }
        finally
        {
            fillers.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task ReadTimeoutWaitingForTheHead_Is504()
    {
        var (response, log) = await FailAsync(async c =>
        {
            await c.ReadHeadAsync();
            await Task.Delay(TimeSpan.FromSeconds(30), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        });
        Assert.StartsWith("HTTP/1.1 504", response, StringComparison.Ordinal);
        Assert.Contains("[error]", log, StringComparison.Ordinal);
        Assert.Contains(Line("upstream timed out (110: Connection timed out) while reading response header from upstream"), log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SendTimeout_AnOriginThatStopsReadingTheBodyIs504()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = RawOrigin.Start(async c =>
        {
            // Take the head, never read the body.
            await c.ReadHeadAsync();
            await release.Task.WaitAsync(TimeSpan.FromSeconds(30));
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"client_max_body_size 0; location / {{ proxy_pass http://{origin.Address}; proxy_send_timeout 500ms; }}"));
        using var handler = new SocketsHttpHandler();
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
        using var content = new ByteArrayContent(new byte[32 * 1024 * 1024]);
        using var response = await client.PostAsync($"http://127.0.0.1:{portico.Port}/upload", content);
        release.TrySetResult();
        Assert.True(response.StatusCode == HttpStatusCode.GatewayTimeout, await portico.ReadErrorLogAsync());
        var log = (await portico.ReadErrorLogAsync()).Replace(origin.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "OPORT", StringComparison.Ordinal);
        Assert.Contains("upstream timed out (110: Connection timed out) while sending request to upstream, client: 127.0.0.1, server: , request: \"POST /upload HTTP/1.1\"", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClosedWithoutResponse_Is502()
    {
        var (response, log) = await FailAsync(async c => await c.ReadHeadAsync());
        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Contains(Line("upstream prematurely closed connection while reading response header from upstream"), log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reset_Is502()
    {
        var (response, log) = await FailAsync(async c =>
        {
            await c.ReadHeadAsync();
            c.Reset();
        });
        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Contains(Line("recv() failed (104: Connection reset by peer) while reading response header from upstream"), log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidHeader_Is502()
    {
        var (response, log) = await FailAsync(async c =>
        {
            await c.ReadHeadAsync();
            await c.WriteAsync("HTTP/1.1 200 OK\r\nBad Header\r\n\r\n");
        });
        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Contains(Line("upstream sent invalid header: \"Bad\\x20...\" while reading response header from upstream"), log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TooBigHeader_Is502()
    {
        var (response, log) = await FailAsync(async c =>
        {
            await c.ReadHeadAsync();
            await c.WriteAsync("HTTP/1.1 200 OK\r\nX-Big: " + new string('a', 10000) + "\r\nContent-Length: 0\r\n\r\n");
        });
        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Contains(Line("upstream sent too big header while reading response header from upstream"), log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadTimeoutInTheBody_ClosesTheClientConnection()
    {
        var (response, log) = await FailAsync(async c =>
        {
            await c.ReadHeadAsync();
            await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
            await Task.Delay(TimeSpan.FromSeconds(10));
        }, "proxy_read_timeout 1s; proxy_buffering off;");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.EndsWith("partial", response, StringComparison.Ordinal);
        Assert.Contains(Line("upstream timed out (110: Connection timed out) while reading upstream"), log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PrematureEndOfBody_ClosesTheClientConnection()
    {
        var (response, log) = await FailAsync(async c =>
        {
            await c.ReadHeadAsync();
            await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
        });
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Contains(Line("upstream prematurely closed connection while reading upstream"), log, StringComparison.Ordinal);
        // Kestrel adds its own line about the unmet Content-Length; the connection closes after "partial".
    }

    [Fact]
    public async Task ReadTimeout_IsBetweenReadsNotTotal()
    {
        // Eight pieces 150 ms apart take longer than the 1 s timeout in total, but never 1 s between two reads.
        var (response, _) = await FailAsync(async c =>
        {
            await c.ReadHeadAsync();
            await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n");
            for (var i = 0; i < 8; i++)
            {
                await Task.Delay(150);
                await c.WriteAsync("x");
            }
        }, "proxy_read_timeout 1s; proxy_buffering off;");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nxxxxxxxx", response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnixSocket_ConnectFailureIsCrit()
    {
        var path = Path.Combine(Path.GetTempPath(), "portico-missing-" + Guid.NewGuid().ToString("N")[..8] + ".sock");
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location /u/ {{ proxy_pass http://unix:{path}:/x/; }}"));
        var response = await ProxyTest.RawAsync(portico, "GET /u/a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Contains($"[crit]", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        Assert.Contains($"connect() to unix:{path} failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: , request: \"GET /u/a HTTP/1.1\", upstream: \"http://unix:{path}:/x/a\", host: \"h\"",
            await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SeveralAddresses_NextPeerOnErrorAndUpstreamVariables()
    {
        // The first address refuses, the second answers: nginx's default proxy_next_upstream (error timeout).
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.RespondAsync(200, "ok", "X-Accel-Redirect: @show", "X-Origin: yes", "Set-Cookie: sid=42; Path=/");
            }
        });
        var name = "multi-" + Guid.NewGuid().ToString("N")[..8] + ".test";
        UpstreamRegistry.StaticHosts[name] = [IPAddress.Parse("127.0.0.2"), IPAddress.Loopback];
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location / { proxy_pass http://{{name}}:{{origin.Port}}; }
            location @show { return 200 "addr=[$upstream_addr] status=[$upstream_status] h=[$upstream_http_x_origin] c=[$upstream_cookie_sid] t=[$upstream_response_time]"; }
            """));
        var response = await ProxyTest.RawAsync(portico, "GET /p HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        var port = origin.Port;
        Assert.Contains($"addr=[127.0.0.2:{port}, 127.0.0.1:{port}] status=[502, 200] h=[yes] c=[42]", response, StringComparison.Ordinal);
        Assert.Matches(@"t=\[\d+\.\d{3}, \d+\.\d{3}\]", response);
        Assert.Contains($"connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: \"GET /p HTTP/1.1\", upstream: \"http://127.0.0.2:{port}/p\"",
            await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NonIdempotentRequestAlreadySent_IsNotRetried()
    {
        // Both addresses listen; the first resets once it has the request.
        await using var good = RawOrigin.Start();
        await using var bad = RawOrigin.Start(async c =>
        {
            await c.ReadHeadAsync();
            c.Reset();
        }, IPAddress.Parse("127.0.0.2"), good.Port);
        var name = "pair-" + Guid.NewGuid().ToString("N")[..8] + ".test";
        UpstreamRegistry.StaticHosts[name] = [IPAddress.Parse("127.0.0.2"), IPAddress.Loopback];
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{name}:{good.Port}; }}"));

        var post = await ProxyTest.RawAsync(portico, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
        Assert.StartsWith("HTTP/1.1 502", post, StringComparison.Ordinal);
        Assert.Empty(good.Requests);

        // The failure took the first address out for fail_timeout (max_fails=1, fail_timeout=10s as nginx's
        // implicit groups): the next requests go to the second one only.
        await ProxyTest.RawAsync(portico, "GET /p HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        var get = await ProxyTest.RawAsync(portico, "GET /p HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", get, StringComparison.Ordinal);
        Assert.Equal(2, good.Requests.Count);
        Assert.Equal(1, bad.Accepted);
    }
}
