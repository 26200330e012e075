using System.Net;
using System.Net.Sockets;
using System.Text;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>keepalive_timeout, keepalive_requests, client_header_timeout and send_timeout on any content.</summary>
public sealed class ClientLimitsTests
{
    private static async Task<string> ExchangeAsync(NetworkStream stream, string request)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var sb = new StringBuilder();
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var n = await stream.ReadAsync(buffer, cts.Token);
            if (n == 0)
            {
                return sb.ToString();
            }

            sb.Append(Encoding.ASCII.GetString(buffer, 0, n));
            var text = sb.ToString();
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            var cl = System.Text.RegularExpressions.Regex.Match(text, "Content-Length: (\\d+)");
            if (end > 0 && cl.Success && text.Length - end - 4 >= int.Parse(cl.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))
            {
                return text;
            }
        }
    }

    [Fact]
    public async Task KeepaliveRequests_ClosesAfterTheLimit()
    {
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server("keepalive_requests 2; location / { return 200 \"ok\"; }"));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, portico.Port);
        var stream = client.GetStream();
        var first = await ExchangeAsync(stream, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        Assert.DoesNotContain("Connection: close", first, StringComparison.Ordinal);
        var second = await ExchangeAsync(stream, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        Assert.Contains("Connection: close", second, StringComparison.Ordinal);
        Assert.Equal(0, await stream.ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task KeepaliveTimeoutZero_DisablesKeepalivePerLocation()
    {
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server("""
            location /once { keepalive_timeout 0; return 200 "ok"; }
            location / { keepalive_timeout 75s 60; return 200 "ok"; }
            """));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, portico.Port);
        var stream = client.GetStream();
        var kept = await ExchangeAsync(stream, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        Assert.Contains("Keep-Alive: timeout=60", kept, StringComparison.Ordinal);
        var closed = await ExchangeAsync(stream, "GET /once HTTP/1.1\r\nHost: t\r\n\r\n");
        Assert.Contains("Connection: close", closed, StringComparison.Ordinal);
        Assert.DoesNotContain("Keep-Alive", closed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeepaliveTimeout_ClosesAnIdleConnection()
    {
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server("keepalive_timeout 1s; location / { return 200 \"ok\"; }"));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, portico.Port);
        var stream = client.GetStream();
        await ExchangeAsync(stream, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        // Idle after the response: the server closes within the timeout (Kestrel's timer ticks once a second).
        Assert.Equal(0, await stream.ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task ClientHeaderTimeout_ClosesAClientThatNeverFinishesItsHeaders()
    {
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server("client_header_timeout 1s; location / { return 200 \"ok\"; }"));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, portico.Port);
        var stream = client.GetStream();
        await stream.WriteAsync("GET / HTTP/1.1\r\nHost: t\r\n"u8.ToArray());
        var buffer = new byte[4096];
        int n;
        var text = new StringBuilder();
        try
        {
            while ((n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(20))) > 0)
            {
                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        }
        catch (IOException)
        {
        }

        Assert.DoesNotContain("200 OK", text.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SendTimeout_AppliesToEveryResponse()
    {
        // A large "return" body to a client that never reads.
        var big = new string('x', 8 * 1024 * 1024);
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"send_timeout 500ms; location / {{ return 200 \"{big}\"; }}"));
        using var client = new TcpClient { ReceiveBufferSize = 4096 };
        await client.ConnectAsync(IPAddress.Loopback, portico.Port);
        await client.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"u8.ToArray());
        await ProxyTest.WaitUntilAsync(async () => (await portico.ReadErrorLogAsync())
            .Contains("client timed out (110: Connection timed out) while sending to client", StringComparison.Ordinal), "the send_timeout log line", 60);
    }
}
