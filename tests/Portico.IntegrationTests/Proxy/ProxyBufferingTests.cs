using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>proxy_buffering: a slow client never holds the origin; off (or X-Accel-Buffering: no) streams as sent.</summary>
public sealed class ProxyBufferingTests
{
    private const int TenMiB = 10 * 1024 * 1024;

    private static byte Pattern(long i) => (byte)('a' + (i % 26));

    /// <summary>An origin that sends <paramref name="size"/> bytes and reports when Portico let go of the connection.</summary>
    private static RawOrigin LargeOrigin(int size, TaskCompletionSource released)
    {
        return RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is null)
            {
                return;
            }

            await c.WriteAsync($"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n");
            var chunk = new byte[64 * 1024];
            for (long sent = 0; sent < size; sent += chunk.Length)
            {
                for (var i = 0; i < chunk.Length; i++)
                {
                    chunk[i] = Pattern(sent + i);
                }

                await c.Stream.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, size - sent)));
            }

            // Portico closes the connection once it has the whole response (no upstream keepalive).
            var n = await c.Stream.ReadAsync(new byte[1]);
            if (n == 0)
            {
                released.TrySetResult();
            }
        });
    }

    [Fact]
    public async Task BufferingOn_ASlowClientDoesNotHoldTheOrigin()
    {
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = LargeOrigin(TenMiB, released);
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; proxy_temp_path {{prefix}}/ptemp; }}"));

        using var client = new TcpClient { ReceiveBufferSize = 4096 };
        await client.ConnectAsync(IPAddress.Loopback, portico.Port);
        var stream = client.GetStream();
        await stream.WriteAsync("GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"u8.ToArray());

        // Read 1 KiB a second until the origin has been released.
        var buffer = new byte[1024];
        long read = 0;
        var seconds = 0;
        while (!released.Task.IsCompleted)
        {
            read += await stream.ReadAsync(buffer);
            await Task.WhenAny(released.Task, Task.Delay(1000));
            Assert.True(++seconds < 60, "the origin was never released");
        }

        Assert.True(read < 64 * 1024, $"the client had read {read} bytes when the origin was released");
        Assert.Contains("an upstream response is buffered to a temporary file ", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        // As in nginx, the file holding the response was unlinked as soon as it was made.
        Assert.Empty(Directory.GetFiles(portico.Dir.File("ptemp"), "*", SearchOption.AllDirectories));

        // The rest arrives intact from memory and the temporary file.
        var all = new MemoryStream();
        var big = new byte[256 * 1024];
        int n;
        while ((n = await stream.ReadAsync(big)) > 0)
        {
            all.Write(big, 0, n);
        }

        // Head and body: the whole response arrived, and the temporary file is gone.
        Assert.True(read + all.Length > TenMiB, "the whole response arrived");
        Assert.EndsWith(Encoding.Latin1.GetString([Pattern(TenMiB - 2), Pattern(TenMiB - 1)]), Encoding.Latin1.GetString(all.ToArray()), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(portico.Dir.File("ptemp"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task BufferingOn_BodyIsIntact()
    {
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        const int size = 3 * 1024 * 1024 + 17;
        await using var origin = LargeOrigin(size, released);
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; proxy_buffers 4 8k; }}"));
        var bytes = await portico.Client.GetByteArrayAsync("/big");
        Assert.Equal(size, bytes.Length);
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] != Pattern(i))
            {
                Assert.Fail($"byte {i} differs");
            }
        }
    }

    // A body that outgrows the head's read is read from the origin straight into the client connection's
    // output memory (IDirectBodySink, buffering on or off): byte-exact, counted in $body_bytes_sent (chunk
    // framing included, as nginx counts it) whether the origin gives a length or ends the body by closing.
    [Theory]
    [InlineData(true, "on")]
    [InlineData(false, "on")]
    [InlineData(true, "off")]
    [InlineData(false, "off")]
    public async Task LargeBodyIsIntactAndCounted(bool withLength, string buffering)
    {
        const int size = 2 * 1024 * 1024 + 4099;
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is null)
            {
                return;
            }

            await c.WriteAsync(withLength ? $"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n" : "HTTP/1.0 200 OK\r\n\r\n");
            var chunk = new byte[50_000];
            for (long sent = 0; sent < size; sent += chunk.Length)
            {
                var n = (int)Math.Min(chunk.Length, size - sent);
                for (var i = 0; i < n; i++)
                {
                    chunk[i] = Pattern(sent + i);
                }

                await c.Stream.WriteAsync(chunk.AsMemory(0, n));
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            log_format bytes '$status $body_bytes_sent';
            server {
                listen 127.0.0.1:{port};
                access_log {prefix}/logs/bytes.log bytes;
                location / { proxy_pass http://{{origin.Address}}; proxy_buffering {{buffering}}; }
            }
            """);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, portico.Port);
        var stream = client.GetStream();
        await stream.WriteAsync("GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"u8.ToArray());
        var all = new MemoryStream();
        await stream.CopyToAsync(all);
        var response = all.ToArray();
        var headEnd = response.AsSpan().IndexOf("\r\n\r\n"u8) + 4;
        var head = Encoding.Latin1.GetString(response, 0, headEnd);
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        var body = response.AsSpan(headEnd).ToArray();
        if (!withLength)
        {
            Assert.Contains("Transfer-Encoding: chunked", head, StringComparison.Ordinal);
            body = Dechunk(body);
        }

        Assert.Equal(size, body.Length);
        for (var i = 0; i < body.Length; i++)
        {
            if (body[i] != Pattern(i))
            {
                Assert.Fail($"byte {i} differs");
            }
        }

        await portico.QuiesceAsync();
        var log = await File.ReadAllTextAsync(portico.Dir.File("logs/bytes.log"));
        Assert.Equal($"200 {response.Length - headEnd}\n", log);
    }

    // Bytes past Content-Length at the end of a large body: cut, warned about as nginx does, and the
    // connection is not kept (the last piece is read into Portico's own buffer, where the extra bytes show).
    [Fact]
    public async Task BufferingOn_LargeBodyWithExtraBytes_IsCutWithTheWarning()
    {
        const int size = 700_000;
        await using var origin = RawOrigin.Start(async c =>
        {
            while (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync($"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                var body = new byte[size];
                for (var i = 0; i < size; i++)
                {
                    body[i] = Pattern(i);
                }

                await c.Stream.WriteAsync(body.AsMemory(0, size - 1000));
                await Task.Delay(50);
                await c.WriteAsync([.. body.AsSpan(size - 1000), .. "EXTRA"u8]);
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            upstream o { server {{origin.Address}}; keepalive 4; }
            server {
                listen 127.0.0.1:{port};
                location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; }
            }
            """);

        for (var round = 0; round < 2; round++)
        {
            var bytes = await portico.Client.GetByteArrayAsync("/big");
            Assert.Equal(size, bytes.Length);
            Assert.Equal(Pattern(size - 1), bytes[^1]);
        }

        Assert.Contains("upstream sent more data than specified in \"Content-Length\" header while reading upstream", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    private static byte[] Dechunk(byte[] data)
    {
        var output = new MemoryStream();
        var at = 0;
        while (true)
        {
            var lineEnd = data.AsSpan(at).IndexOf("\r\n"u8) + at;
            var length = Convert.ToInt32(Encoding.Latin1.GetString(data, at, lineEnd - at), 16);
            at = lineEnd + 2;
            if (length == 0)
            {
                return output.ToArray();
            }

            output.Write(data, at, length);
            at += length + 2;
        }
    }

    /// <summary>An SSE origin: sends one event, waits for the test to see it, then the next.</summary>
    private static RawOrigin SseOrigin(string extraHeader, Func<int, Task> waitForClient)
    {
        return RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is null)
            {
                return;
            }

            await c.WriteAsync($"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n{extraHeader}\r\n");
            for (var i = 1; i <= 3; i++)
            {
                await c.WriteAsync($"data: event {i}\n\n");
                await waitForClient(i);
            }
        });
    }

    [Theory]
    [InlineData("proxy_buffering off;", "")]
    [InlineData("", "X-Accel-Buffering: no\r\n")]
    public async Task ServerSentEvents_ReachTheClientAsSent(string directive, string originHeader)
    {
        var seen = new TaskCompletionSource[4];
        for (var i = 0; i < seen.Length; i++)
        {
            seen[i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        await using var origin = SseOrigin(originHeader, i => seen[i].Task.WaitAsync(TimeSpan.FromSeconds(20)));
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location /events { proxy_pass http://{{origin.Address}}; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_read_timeout 24h; {{directive}} }
            """));
        using var response = await portico.Client.GetAsync("/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.False(response.Headers.Contains("X-Accel-Buffering"));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        for (var i = 1; i <= 3; i++)
        {
            // Each event must arrive while the origin waits for us: nothing holds it back.
            var line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal($"data: event {i}", line);
            Assert.Equal(string.Empty, await reader.ReadLineAsync());
            seen[i].SetResult();
        }
    }

    [Fact]
    public async Task ProxyLimitRate_PacesReadingFromTheOrigin()
    {
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = LargeOrigin(192 * 1024, released);
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; proxy_limit_rate 64k; }}"));
        var started = Stopwatch.GetTimestamp();
        var bytes = await portico.Client.GetByteArrayAsync("/slow");
        Assert.Equal(192 * 1024, bytes.Length);
        // Reading stops until the bytes read so far are due at 64 KiB/s: the last 64 KiB cannot be read
        // before 2 s (a lower bound: no claim on how much longer it takes).
        Assert.True(Stopwatch.GetElapsedTime(started) >= TimeSpan.FromSeconds(1.9), $"took {Stopwatch.GetElapsedTime(started)}");
    }

    [Theory]
    [InlineData("proxy_buffering off;")]
    [InlineData("")]
    public async Task SendTimeout_ClosesAClientThatStopsReading(string directive)
    {
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = LargeOrigin(64 * 1024 * 1024, released);
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; send_timeout 500ms; proxy_max_temp_file_size 0; {directive} }}"));
        using var client = new TcpClient { ReceiveBufferSize = 4096 };
        await client.ConnectAsync(IPAddress.Loopback, portico.Port);
        await client.GetStream().WriteAsync("GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"u8.ToArray());
        // Never read: Portico's writes stop progressing and send_timeout closes the connection.
        await ProxyTest.WaitUntilAsync(async () => (await portico.ReadErrorLogAsync())
            .Contains("client timed out (110: Connection timed out) while sending to client", StringComparison.Ordinal), "the send_timeout log line", 60);
        Assert.Contains("[info]", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }
}

/// <summary>proxy_ignore_client_abort: a client leaving does not cut the origin's exchange short.</summary>
public sealed class ProxyIgnoreClientAbortTests
{
    [Theory]
    [InlineData("on", true)]
    [InlineData("off", false)]
    public async Task OriginExchangeCompletesOnlyWhenIgnored(string value, bool completes)
    {
        var clientGone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var outcome = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is null)
            {
                // Portico gave up before it even sent the request: the exchange was cut short.
                outcome.TrySetResult(false);
                return;
            }

            await clientGone.Task.WaitAsync(TimeSpan.FromSeconds(20));
            try
            {
                // Larger than the socket buffers: the write completes only if Portico keeps reading.
                const int size = 16 * 1024 * 1024;
                await c.WriteAsync($"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                var chunk = new byte[64 * 1024];
                for (var sent = 0; sent < size; sent += chunk.Length)
                {
                    await c.Stream.WriteAsync(chunk).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
                }

                outcome.TrySetResult(true);
            }
            catch (Exception)
            {
                outcome.TrySetResult(false);
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; proxy_ignore_client_abort {value}; }}"));
        using (var client = new System.Net.Sockets.TcpClient())
        {
            await client.ConnectAsync(System.Net.IPAddress.Loopback, portico.Port);
            await client.GetStream().WriteAsync("GET /job HTTP/1.1\r\nHost: t\r\n\r\n"u8.ToArray());
            await ProxyTest.WaitUntilAsync(() => origin.Accepted > 0, "the origin to get the request");
        }

        // Let Portico notice the close before the origin answers.
        await Task.Delay(300);
        clientGone.SetResult();
        Assert.Equal(completes, await outcome.Task.WaitAsync(TimeSpan.FromSeconds(60)));
    }
}
