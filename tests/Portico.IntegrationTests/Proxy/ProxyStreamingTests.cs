using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Portico.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Portico.IntegrationTests.Proxy;

/// <summary>WebSocket through proxy_pass, and full duplex with HTTP/2 origins (plus what HTTP/1.1 origins do).</summary>
public sealed class ProxyStreamingTests
{
    private readonly ITestOutputHelper _output;

    public ProxyStreamingTests(ITestOutputHelper output)
    {
        _output = output;
    }

    private static Task<KestrelOrigin> EchoWebSocketOriginAsync() => KestrelOrigin.StartAsync(async ctx =>
    {
        if (!ctx.WebSockets.IsWebSocketRequest)
        {
            ctx.Response.StatusCode = 400;
            ctx.Response.ContentLength = 23;
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

    private static async Task<string> EchoAsync(ClientWebSocket ws, string text)
    {
        await ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var r = await ws.ReceiveAsync(buffer, cts.Token);
        return Encoding.UTF8.GetString(buffer, 0, r.Count);
    }

    [Fact]
    public async Task WebSocket_ProxiedBothWaysWithUpgradeHeaders()
    {
        await using var origin = await EchoWebSocketOriginAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location /ws {
                proxy_pass http://{{origin.Address}};
                proxy_http_version 1.1;
                proxy_set_header Upgrade $http_upgrade;
                proxy_set_header Connection "upgrade";
                proxy_read_timeout 3600s;
            }
            """));
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri($"ws://127.0.0.1:{portico.Port}/ws"), CancellationToken.None);
        Assert.Equal("echo:one", await EchoAsync(ws, "one"));
        Assert.Equal("echo:two", await EchoAsync(ws, "two"));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        Assert.Equal(WebSocketState.Closed, ws.State);
    }

    [Fact]
    public async Task WebSocket_WithoutTheHeadersIsNotUpgraded()
    {
        await using var origin = await EchoWebSocketOriginAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location /ws {{ proxy_pass http://{origin.Address}; proxy_http_version 1.1; }}"));
        using var ws = new ClientWebSocket();
        await Assert.ThrowsAnyAsync<WebSocketException>(() => ws.ConnectAsync(new Uri($"ws://127.0.0.1:{portico.Port}/ws"), CancellationToken.None));
        var plain = await ProxyTest.RawAsync(portico, "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 400", plain, StringComparison.Ordinal);
        Assert.EndsWith("not a websocket request", plain, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WebSocket_ReadTimeoutIsAnIdleTimeout()
    {
        await using var origin = await EchoWebSocketOriginAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location /ws {
                proxy_pass http://{{origin.Address}};
                proxy_http_version 1.1;
                proxy_set_header Upgrade $http_upgrade;
                proxy_set_header Connection "upgrade";
                proxy_read_timeout 3s;
            }
            """));
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri($"ws://127.0.0.1:{portico.Port}/ws"), CancellationToken.None);
        // Activity more often than the timeout keeps it open past the timeout in total (3.6 s and more)...
        // The timeout leaves each exchange 2.7 s: with 1 s, a first echo that waited for the JIT on a
        // loaded CI machine was cut (seen once in four runs of the whole suite).
        var open = Stopwatch.StartNew();
        for (var i = 0; i < 12; i++)
        {
            Assert.Equal($"echo:{i}", await EchoAsync(ws, i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            await Task.Delay(300);
        }

        Assert.True(open.Elapsed > TimeSpan.FromSeconds(3), "the activity did not outlast the timeout");

        // ...and an idle connection is closed.
        var buffer = new byte[64];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            var r = await ws.ReceiveAsync(buffer, cts.Token);
            Assert.Equal(WebSocketMessageType.Close, r.MessageType);
        }
        catch (WebSocketException)
        {
            // The proxy dropped the connection: what nginx does too.
        }

        Assert.False(cts.IsCancellationRequested, "the idle WebSocket was not closed");
        Assert.Contains("upstream timed out (110: Connection timed out) while proxying upgraded connection", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WebSocket_MapConnectionUpgradeIdiom()
    {
        await using var origin = await EchoWebSocketOriginAsync();
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            map $http_upgrade $connection_upgrade {
                default upgrade;
                ''      close;
            }
            server {
                listen 127.0.0.1:{port};
                location / {
                    proxy_pass http://{{origin.Address}};
                    proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $connection_upgrade;
                }
            }
            """);
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri($"ws://127.0.0.1:{portico.Port}/ws"), CancellationToken.None);
        Assert.Equal("echo:map", await EchoAsync(ws, "map"));
        var plain = await ProxyTest.RawAsync(portico, "GET /plain HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 400", plain, StringComparison.Ordinal);
    }

    /// <summary>
    /// An origin that answers as soon as it has the first part of the body, then keeps reading: "got part1"
    /// is sent before "part2" exists, and "got part2" once it arrived.
    /// </summary>
    private static Task<KestrelOrigin> EarlyAnswerOriginAsync(HttpProtocols protocols) => KestrelOrigin.StartAsync(async ctx =>
    {
        var body = ctx.Request.Body;
        var buffer = new byte[1024];
        var seen = new StringBuilder();
        while (!seen.ToString().Contains("part1", StringComparison.Ordinal))
        {
            var n = await body.ReadAsync(buffer);
            if (n == 0)
            {
                break;
            }

            seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        ctx.Response.Headers.ContentType = "text/plain";
        await ctx.Response.WriteAsync("got part1\n");
        await ctx.Response.Body.FlushAsync();
        while (true)
        {
            var n = await body.ReadAsync(buffer);
            if (n == 0)
            {
                break;
            }

            seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        await ctx.Response.WriteAsync(seen.ToString().Contains("part2", StringComparison.Ordinal) ? "got part2\n" : "no part2\n");
    }, new KestrelOriginOptions { Protocols = protocols });

    private sealed record DuplexResult(bool AnsweredBeforeBodyEnded, string Response);

    /// <summary>Sends part1, waits (bounded) for "got part1" from the proxy, then sends part2.</summary>
    private static async Task<DuplexResult> DuplexAsync(PorticoInstance portico, TimeSpan waitForEarlyAnswer)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, portico.Port);
        var stream = client.GetStream();
        await stream.WriteAsync("POST /duplex HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\npart1\r\n"u8.ToArray());
        var received = new StringBuilder();
        var buffer = new byte[4096];
        var early = false;
        using (var cts = new CancellationTokenSource(waitForEarlyAnswer))
        {
            try
            {
                while (!received.ToString().Contains("got part1", StringComparison.Ordinal))
                {
                    var n = await stream.ReadAsync(buffer, cts.Token);
                    if (n == 0)
                    {
                        break;
                    }

                    received.Append(Encoding.Latin1.GetString(buffer, 0, n));
                }

                early = received.ToString().Contains("got part1", StringComparison.Ordinal);
            }
            catch (OperationCanceledException)
            {
            }
        }

        await stream.WriteAsync("5\r\npart2\r\n0\r\n\r\n"u8.ToArray());
        using var rest = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var n = await stream.ReadAsync(buffer, rest.Token);
            if (n == 0)
            {
                break;
            }

            received.Append(Encoding.Latin1.GetString(buffer, 0, n));
        }

        return new DuplexResult(early, received.ToString());
    }

    [Fact]
    public async Task Http2Origin_FullDuplex()
    {
        await using var origin = await EarlyAnswerOriginAsync(HttpProtocols.Http2);
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location /duplex {
                proxy_pass http://{{origin.Address}};
                proxy_http_version 2;
                proxy_request_buffering off;
                proxy_buffering off;
            }
            """));
        var result = await DuplexAsync(portico, TimeSpan.FromSeconds(20));
        Assert.True(result.AnsweredBeforeBodyEnded, "the answer did not arrive while the body was still being sent:\n" + result.Response);
        Assert.Contains("got part2", result.Response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http11Origin_MeasuresWhetherTheAnswerComesBeforeTheBodyEnds()
    {
        await using var origin = await EarlyAnswerOriginAsync(HttpProtocols.Http1);
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location /duplex {
                proxy_pass http://{{origin.Address}};
                proxy_http_version 1.1;
                proxy_request_buffering off;
                proxy_buffering off;
            }
            """));
        var result = await DuplexAsync(portico, TimeSpan.FromSeconds(2));
        // Recorded, not asserted: docs/directives/proxy.md reports what .NET's HTTP/1.1 client does here.
        _output.WriteLine($"HTTP/1.1 origin: answer before the body ended = {result.AnsweredBeforeBodyEnded}");
        Assert.Contains("got part1", result.Response, StringComparison.Ordinal);
        Assert.Contains("got part2", result.Response, StringComparison.Ordinal);
    }
}
