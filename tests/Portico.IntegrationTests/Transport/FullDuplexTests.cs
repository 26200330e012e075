using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using Xunit.Abstractions;

namespace Portico.IntegrationTests.Transport;

/// <summary>
/// The IPFS seed's case (nginx trac #1293, go-ipfs #6402): an origin that starts its response once it has
/// the first 64 KiB of an 8 MiB POST and then answers while it reads the rest. Here it echoes the body
/// back as it reads it, so nothing moves unless the proxy reads the response while it still sends the
/// request (full duplex) — with response buffering on and off, request buffering on and off, over
/// HTTP/1.0 and HTTP/1.1 to the origin.
/// </summary>
public sealed class FullDuplexTests
{
    private const int BodySize = 8 * 1024 * 1024;
    private const int AnswerAfter = 64 * 1024;
    private readonly ITestOutputHelper _output;

    public FullDuplexTests(ITestOutputHelper output)
    {
        _output = output;
    }

    /// <summary>Answers after the first 64 KiB, then echoes each further piece as it arrives.</summary>
    private static RawOrigin EchoAfterFirstPieceOrigin() => RawOrigin.Start(async c =>
    {
        var head = await c.ReadHeadAsync();
        if (head is null)
        {
            return;
        }

        var length = long.Parse(head.Header("Content-Length")!, System.Globalization.CultureInfo.InvariantCulture);
        var first = await c.ReadBytesAsync(AnswerAfter);
        await c.WriteAsync($"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n");
        await c.WriteAsync(first);
        var left = length - first.Length;
        while (left > 0)
        {
            var piece = await c.ReadBytesAsync(Math.Min(left, 32 * 1024));
            if (piece.Length == 0)
            {
                return;
            }

            await c.WriteAsync(piece);
            left -= piece.Length;
        }
    });

    /// <summary>Sends the POST while reading the answer; returns the response head and the SHA-256 of its body.</summary>
    private static async Task<(string Head, byte[] BodyHash, long BodyLength)> PostAsync(int port, byte[] body, CancellationToken ct)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, ct);
        var stream = client.GetStream();
        var send = Task.Run(async () =>
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /api/v0/add HTTP/1.1\r\nHost: ipfs\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"), ct);
            for (var at = 0; at < body.Length; at += 64 * 1024)
            {
                await stream.WriteAsync(body.AsMemory(at, Math.Min(64 * 1024, body.Length - at)), ct);
            }
        }, ct);

        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var n = await stream.ReadAsync(buffer, ct);
            if (n == 0)
            {
                break;
            }

            received.Write(buffer, 0, n);
        }

        await send;
        var all = received.ToArray();
        var end = all.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.True(end > 0, "no response head");
        var bodyBytes = all.AsSpan(end + 4);
        return (Encoding.Latin1.GetString(all, 0, end), SHA256.HashData(bodyBytes), bodyBytes.Length);
    }

    [Theory]
    [InlineData("1.1", "on", "on")]
    [InlineData("1.1", "on", "off")]
    [InlineData("1.1", "off", "on")]
    [InlineData("1.1", "off", "off")]
    [InlineData("1.0", "on", "on")]
    [InlineData("1.0", "on", "off")]
    [InlineData("1.0", "off", "on")]
    [InlineData("1.0", "off", "off")]
    public async Task EightMiBPost_AnsweredAfterTheFirst64KiB(string version, string requestBuffering, string buffering)
    {
        await using var origin = EchoAfterFirstPieceOrigin();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            client_max_body_size 0;
            client_body_temp_path {prefix}/cbt;
            location / {
                proxy_pass http://{{origin.Address}};
                proxy_http_version {{version}};
                proxy_request_buffering {{requestBuffering}};
                proxy_buffering {{buffering}};
                proxy_temp_path {prefix}/pt;
                proxy_read_timeout 20s;
                proxy_send_timeout 20s;
            }
            """));
        var body = new byte[BodySize];
        new Random(1293).NextBytes(body);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var (head, hash, length) = await PostAsync(portico.Port, body, cts.Token);
        _output.WriteLine($"HTTP/{version} request_buffering {requestBuffering} buffering {buffering}: {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal(BodySize, length);
        Assert.Equal(SHA256.HashData(body), hash);
        Assert.DoesNotContain("[error]", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task EarlyErrorAnswer_TheRestOfTheBodyIsNotWaitedFor()
    {
        // An origin that refuses after the head without reading the body (as a 413 from an application).
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!");
                await Task.Delay(TimeSpan.FromSeconds(30));
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            client_max_body_size 0;
            location / { proxy_pass http://{{origin.Address}}; proxy_http_version 1.1; proxy_request_buffering off; proxy_send_timeout 30s; }
            """));
        var body = new byte[BodySize];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, portico.Port, cts.Token);
        var stream = client.GetStream();
        _ = Task.Run(async () =>
        {
            try
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {body.Length}\r\n\r\n"), cts.Token);
                await stream.WriteAsync(body, cts.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
            {
            }
        });
        var received = new StringBuilder();
        var buffer = new byte[4096];
        while (!received.ToString().Contains("too big!", StringComparison.Ordinal))
        {
            var n = await stream.ReadAsync(buffer, cts.Token);
            if (n == 0)
            {
                break;
            }

            received.Append(Encoding.Latin1.GetString(buffer, 0, n));
        }

        Assert.StartsWith("HTTP/1.1 413", received.ToString(), StringComparison.Ordinal);
        Assert.EndsWith("too big!", received.ToString(), StringComparison.Ordinal);
    }
}
