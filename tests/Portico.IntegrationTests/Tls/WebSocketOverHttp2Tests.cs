using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Http;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using static Portico.IntegrationTests.Tls.TlsTestKit;

namespace Portico.IntegrationTests.Tls;

/// <summary>WebSocket over HTTP/2 (RFC 8441 extended CONNECT) from the client, an HTTP/1.1 Upgrade to the origin.</summary>
public sealed class WebSocketOverHttp2Tests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TestCa _ca = new();

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    /// <summary>An HTTP/1.1 WebSocket echo origin that records the handshakes it got.</summary>
    private static async Task<(KestrelOrigin Origin, ConcurrentQueue<string> Seen)> EchoOriginAsync()
    {
        var seen = new ConcurrentQueue<string>();
        var origin = await KestrelOrigin.StartAsync(async ctx =>
        {
            var h = ctx.Request.Headers;
            seen.Enqueue($"{ctx.Request.Protocol} {ctx.Request.Method} {ctx.Request.Path} upgrade={h.Upgrade} connection={h.Connection} "
                + $"version={h.SecWebSocketVersion} key={(h.SecWebSocketKey.Count == 1 ? "yes" : "no")} ws={ctx.WebSockets.IsWebSocketRequest}");
            if (!ctx.WebSockets.IsWebSocketRequest)
            {
                ctx.Response.StatusCode = 400;
                await ctx.Response.WriteAsync("not a websocket request");
                return;
            }

            using var ws = await ctx.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[4096];
            while (true)
            {
                var r = await ws.ReceiveAsync(buffer, CancellationToken.None);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                    return;
                }

                var text = "echo:" + Encoding.UTF8.GetString(buffer, 0, r.Count);
                await ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
            }
        }, new KestrelOriginOptions { WebSockets = true });
        return (origin, seen);
    }

    private string Config(string origin, int plain)
    {
        var files = TestCa.Write(_dir, "portico", _ca.IssueServer("localhost", false, "localhost"));
        var locations = $$"""
                location /ws {
                    proxy_pass http://{{origin}};
                    proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $connection_upgrade;
                }
                location /plain {
                    proxy_pass http://{{origin}};
                    proxy_http_version 1.1;
                }
            """;
        return $$"""
            map $http_upgrade $connection_upgrade { default upgrade; '' close; }
            log_format ws '$request $status $request_method $upstream_status $http2 $http_upgrade';
            access_log logs/ws.log ws;
            server {
                listen 127.0.0.1:{port} ssl;
                http2 on;
                {{CertLines(files)}}
                {{locations}}
            }
            server {
                listen 127.0.0.1:{{plain}};
                http2 on;
                {{locations}}
            }
            """;
    }

    /// <summary>A client that speaks HTTP/2 only, to 127.0.0.1:port whatever the URL's host.</summary>
    private static HttpMessageInvoker Http2Invoker(int port) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
        SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true },
    });

    private static ClientWebSocket Http2WebSocket()
    {
        var ws = new ClientWebSocket();
        ws.Options.HttpVersion = HttpVersion.Version20;
        ws.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        ws.Options.CollectHttpResponseDetails = true;
        return ws;
    }

    private static async Task<string> EchoAsync(ClientWebSocket ws, string text)
    {
        await ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var r = await ws.ReceiveAsync(buffer, cts.Token);
        return Encoding.UTF8.GetString(buffer, 0, r.Count);
    }

    public static TheoryData<bool> Transports => new() { true, false };

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Http2WebSocket_BecomesAnHttp11UpgradeToTheOrigin(bool tls)
    {
        var (origin, seen) = await EchoOriginAsync();
        await using var _ = origin;
        var plain = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(Config(origin.Address, plain));
        var port = tls ? portico.Port : plain;
        using var invoker = Http2Invoker(port);
        using var ws = Http2WebSocket();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await ws.ConnectAsync(new Uri(tls ? $"wss://localhost:{port}/ws" : $"ws://127.0.0.1:{port}/ws"), invoker, cts.Token);
        Assert.Equal(HttpStatusCode.OK, ws.HttpStatusCode);

        Assert.Equal("echo:one", await EchoAsync(ws, "one"));
        Assert.Equal("echo:two", await EchoAsync(ws, "two"));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        Assert.Equal(WebSocketState.Closed, ws.State);
        Assert.Equal("bye", ws.CloseStatusDescription);

        // The origin gets an HTTP/1.1 WebSocket handshake, with the Sec-WebSocket-Key an HTTP/2 client does not send.
        Assert.Equal(["HTTP/1.1 GET /ws upgrade=websocket connection=Upgrade version=13 key=yes ws=True"], seen);
        await ProxyTest.WaitUntilAsync(() => File.Exists(portico.Dir.File("logs/ws.log")) && File.ReadAllText(portico.Dir.File("logs/ws.log")).Length > 0, "the access log");
        Assert.Equal($"CONNECT /ws HTTP/2.0 200 GET 101 {(tls ? "h2" : "h2c")} websocket", File.ReadAllLines(portico.Dir.File("logs/ws.log")).Single());
        var log = await portico.ReadErrorLogAsync();
        Assert.DoesNotContain("[warn]", log, StringComparison.Ordinal);
        Assert.DoesNotContain("[error]", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutTheUpgradeHeaders_TheOriginGetsAPlainGet()
    {
        var (origin, seen) = await EchoOriginAsync();
        await using var _ = origin;
        var plain = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(Config(origin.Address, plain));
        using var invoker = Http2Invoker(plain);
        using var ws = Http2WebSocket();
        var e = await Assert.ThrowsAsync<WebSocketException>(() => ws.ConnectAsync(new Uri($"ws://127.0.0.1:{plain}/plain"), invoker, CancellationToken.None));
        Assert.Equal(HttpStatusCode.BadRequest, ws.HttpStatusCode);
        Assert.NotNull(e);
        Assert.Equal(["HTTP/1.1 GET /plain upgrade= connection=close version=13 key=yes ws=False"], seen);
    }

    [Fact]
    public async Task AnotherProtocol_IsRefusedAsNginxRefusesAnyProtocolPseudoHeader()
    {
        var (origin, seen) = await EchoOriginAsync();
        await using var _ = origin;
        var plain = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(Config(origin.Address, plain));
        using var invoker = Http2Invoker(plain);
        using var request = new HttpRequestMessage(HttpMethod.Connect, $"http://127.0.0.1:{plain}/ws")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Protocol = "x-other";
        using var response = await invoker.SendAsync(request, CancellationToken.None);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Empty(seen);
        Assert.Contains("client sent unknown pseudo-header \":protocol\", client: 127.0.0.1", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }
}
