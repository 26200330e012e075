using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>Request bodies (limits, buffering, temp files, streaming) and response bodies (HEAD, 204/304, 1xx, trailers).</summary>
public sealed class ProxyBodyTests
{
    private static async Task<Stream> ConnectAsync(PorticoInstance p, TcpClient client)
    {
        await client.ConnectAsync(IPAddress.Loopback, p.Port);
        return client.GetStream();
    }

    /// <summary>Reads one response with a Content-Length body.</summary>
    private static async Task<string> ReadResponseAsync(Stream s)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var n = await s.ReadAsync(buffer, cts.Token);
            if (n == 0)
            {
                return text.ToString();
            }

            text.Append(Encoding.Latin1.GetString(buffer, 0, n));
            var all = text.ToString();
            var end = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            var cl = System.Text.RegularExpressions.Regex.Match(all, "Content-Length: (\\d+)");
            if (end > 0 && cl.Success && all.Length - end - 4 >= int.Parse(cl.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))
            {
                return all;
            }
        }
    }

    private static async Task<string> ReadAllAsync(Stream s)
    {
        using var reader = new StreamReader(s, Encoding.Latin1);
        return await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task ClientMaxBodySize_413BeforeTheBodyIsRead()
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"client_max_body_size 10; location / {{ proxy_pass http://{origin.Address}; }}"));
        using var client = new TcpClient();
        var stream = await ConnectAsync(portico, client);
        // Expect: 100-continue: the client hears 413 instead of 100 and never sends the body.
        await stream.WriteAsync("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"u8.ToArray());
        // Like nginx's lingering close, Kestrel keeps the connection a while for a body that never comes:
        // read the response, not up to the close.
        var response = await ReadResponseAsync(stream);
        Assert.StartsWith("HTTP/1.1 413", response, StringComparison.Ordinal);
        Assert.DoesNotContain("100 Continue", response, StringComparison.Ordinal);
        Assert.Equal(0, origin.Accepted);
        Assert.Contains("[error]", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        Assert.Contains("client intended to send too large body: 11 bytes, client: 127.0.0.1, server: , request: \"POST /up HTTP/1.1\", host: \"t\"", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientMaxBodySize_ChunkedBodyIsCheckedWhileRead()
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"client_max_body_size 10; location / {{ proxy_pass http://{origin.Address}; }}"));
        var response = await ProxyTest.RawAsync(portico, "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 413", response, StringComparison.Ordinal);
        Assert.Equal(0, origin.Accepted);
        Assert.Contains("client intended to send too large chunked body: ", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BodyBeyondTheBuffer_GoesToATempFileThatIsRemoved()
    {
        byte[]? received = null;
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                received = await c.ReadBodyAsync();
                await c.RespondAsync(200, "ok");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"client_body_buffer_size 1k; client_body_temp_path {{prefix}}/cbt 1 2; location / {{ proxy_pass http://{origin.Address}; }}"));
        var body = new string('b', 5000);
        var response = await ProxyTest.RawAsync(portico, $"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Equal(body, Encoding.ASCII.GetString(received!));
        var log = await portico.ReadErrorLogAsync();
        Assert.Matches(@"\[warn\] \d+#\d+: \*\d+ a client request body is buffered to a temporary file .*/cbt/\d/\d\d/\d{10}, client: 127\.0\.0\.1", log);

        // The file goes when the request ends, which may be just after the client has the whole response.
        await ProxyTest.WaitUntilAsync(() => Directory.GetFiles(portico.Dir.File("cbt"), "*", SearchOption.AllDirectories).Length == 0, "temp file removed", 5);
    }

    [Theory]
    [InlineData(1025, false)]
    [InlineData(65535, false)]
    [InlineData(65536, false)]
    [InlineData(65536, true)]
    [InlineData(65537, false)]
    [InlineData(200_000, false)]
    [InlineData(200_000, true)]
    public async Task BodyOnDisk_ArrivesWholeAtEveryAttempt(int size, bool chunked)
    {
        // The body spills past a 1k buffer: up to 64 KiB it is also kept in memory and attempts read it from
        // there, beyond that they read the file. The first origin takes the head and closes; the second
        // must still get every byte.
        await using var failing = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.ReadBytesAsync(Math.Min(size, 1000));
            }
        });
        byte[]? received = null;
        await using var good = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                received = await c.ReadBodyAsync();
                await c.RespondAsync(200, "ok");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server(
            $"client_body_buffer_size 1k; client_body_temp_path {{prefix}}/cbt; location / {{ proxy_pass http://up; proxy_next_upstream error non_idempotent; }}",
            $"upstream up {{ server {failing.Address} max_fails=0; server {good.Address}; }}"));
        var body = new byte[size];
        for (var i = 0; i < size; i++)
        {
            body[i] = (byte)('a' + i * 7 % 26);
        }

        var text = Encoding.ASCII.GetString(body);
        var request = chunked
            ? $"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{size:x}\r\n{text}\r\n0\r\n\r\n"
            : $"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n{text}";
        var response = await ProxyTest.RawAsync(portico, request);
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Equal(1, failing.Accepted);
        Assert.Equal(body, received);
        Assert.Contains("a client request body is buffered to a temporary file", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        await ProxyTest.WaitUntilAsync(() => Directory.GetFiles(portico.Dir.File("cbt"), "*", SearchOption.AllDirectories).Length == 0, "temp file removed", 5);
    }

    [Fact]
    public async Task BodyTempFile_IsUnlinkedAtOnce()
    {
        // As nginx does with a temp file it does not keep, the file is unlinked as soon as it is made: the
        // directory is empty while the origin has the request, though $request_body_file names a file (the
        // next name of nginx's counter each time).
        var entries = new ConcurrentQueue<int>();
        PorticoInstance? p = null;
        await using var origin = RawOrigin.Start(async c =>
        {
            while (await c.ReadHeadAsync() is not null)
            {
                await c.ReadBodyAsync();
                entries.Enqueue(Directory.GetFiles(p!.Dir.File("cbt"), "*", SearchOption.AllDirectories).Length);
                await c.RespondAsync(200, "ok");
            }
        });
        await using var portico = p = await PorticoInstance.StartHttpAsync(ProxyTest.Server(
            $"client_body_buffer_size 1k; client_body_temp_path {{prefix}}/cbt 1; location / {{ proxy_pass http://{origin.Address}; proxy_set_header X-File $request_body_file; }}"));
        var names = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var body = new string('q', 40_000);
            var response = await ProxyTest.RawAsync(portico, $"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}");
            Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
            Assert.True(origin.Requests.TryDequeue(out var seen));
            names.Add(seen!.Header("X-File")!);
        }

        Assert.Equal([0, 0, 0], entries);
        Assert.Equal(3, names.Distinct().Count());
        Assert.All(names, n => Assert.Matches(@"/cbt/\d/\d{10}$", n));
        var log = await portico.ReadErrorLogAsync();
        Assert.All(names, n => Assert.Contains("a client request body is buffered to a temporary file " + n, log, StringComparison.Ordinal));
    }

    [Fact]
    public async Task BodyInFileOnly_KeepsTheFileAndNamesIt()
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"client_body_in_file_only on; client_body_temp_path {{prefix}}/cbt; location / {{ proxy_pass http://{origin.Address}; proxy_set_header X-File $request_body_file; proxy_set_header X-Body $request_body; }}"));
        await ProxyTest.RawAsync(portico, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        Assert.True(origin.Requests.TryDequeue(out var seen));
        var file = seen!.Header("X-File");
        Assert.NotNull(file);
        Assert.False(seen.Has("X-Body"));
        Assert.Equal("hello", await File.ReadAllTextAsync(file!));
    }

    [Fact]
    public async Task RequestBufferingOn_OriginSeesNothingBeforeTheWholeBody()
    {
        long headArrived = 0;
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                headArrived = Stopwatch.GetTimestamp();
                await c.ReadBodyAsync();
                await c.RespondAsync(200, "ok");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; }}"));
        using var client = new TcpClient();
        var stream = await ConnectAsync(portico, client);
        await stream.WriteAsync("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello"u8.ToArray());
        // The origin cannot have the request yet; send the rest and note when the last byte left.
        await Task.Delay(200);
        Assert.Equal(0, origin.Accepted);
        var lastByte = Stopwatch.GetTimestamp();
        await stream.WriteAsync("world"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 200", await ReadAllAsync(stream), StringComparison.Ordinal);
        Assert.True(headArrived > lastByte, "the origin received the head before the client sent the whole body");
    }

    [Fact]
    public async Task RequestBufferingOff_StreamsTheBody()
    {
        var headArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                headArrived.SetResult();
                received.SetResult(Encoding.ASCII.GetString(await c.ReadBodyAsync()) + "|" + c.Request!.Header("Transfer-Encoding") + "|" + c.Request.Version);
                await c.RespondAsync(200, "ok");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; proxy_request_buffering off; proxy_http_version 1.1; }}"));
        using var client = new TcpClient();
        var stream = await ConnectAsync(portico, client);
        await stream.WriteAsync("POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n"u8.ToArray());
        // The origin gets the request while the client still holds the rest of the body.
        await headArrived.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await stream.WriteAsync("6\r\n world\r\n0\r\n\r\n"u8.ToArray());
        Assert.Equal("hello world|chunked|HTTP/1.1", await received.Task.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.StartsWith("HTTP/1.1 200", await ReadAllAsync(stream), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "11", null)]
    [InlineData("proxy_request_buffering off;", "11", null)]
    public async Task ChunkedClientBody_IsSentWithALengthWhenBufferedOrHttp10(string directive, string length, string? transferEncoding)
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; {directive} }}"));
        await ProxyTest.RawAsync(portico, "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        Assert.True(origin.Requests.TryDequeue(out var seen));
        Assert.Equal(length, seen!.Header("Content-Length"));
        Assert.Equal(transferEncoding, seen.Header("Transfer-Encoding"));
    }

    [Fact]
    public async Task ClientBodyTimeout_408ClosesTheConnection()
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"client_body_timeout 300ms; location / {{ proxy_pass http://{origin.Address}; }}"));
        using var client = new TcpClient();
        var stream = await ConnectAsync(portico, client);
        await stream.WriteAsync("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello"u8.ToArray());
        // nginx finalizes a request that timed out with 408 by closing the connection, without a response.
        var received = new MemoryStream();
        try
        {
            var buffer = new byte[1024];
            int n;
            while ((n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(20))) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
        }

        Assert.Equal(0, received.Length);
        Assert.Equal(0, origin.Accepted);
        Assert.Contains("[info]", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        Assert.Contains("client timed out (110: Connection timed out) while reading client request body, client: 127.0.0.1", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Head_PassesTheLengthWithoutBody()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is { } req)
            {
                await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/x-test\r\n\r\n");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; }}"));
        var response = await ProxyTest.RawAsync(portico, "HEAD /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 1234\r\n", response, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", response, StringComparison.Ordinal);
        Assert.True(origin.Requests.TryDequeue(out var seen));
        Assert.Equal("HEAD", seen!.Method);
    }

    [Theory]
    [InlineData(204, "No Content")]
    [InlineData(304, "Not Modified")]
    public async Task NoBodyStatuses(int status, string reason)
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync($"HTTP/1.1 {status} {reason}\r\nETag: \"x\"\r\n\r\n");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; }}"));
        var response = await ProxyTest.RawAsync(portico, "GET /n HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.StartsWith($"HTTP/1.1 {status}", response, StringComparison.Ordinal);
        Assert.Contains("ETag: \"x\"", response, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", response, StringComparison.Ordinal);
        Assert.DoesNotContain("Transfer-Encoding", response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InformationalResponsesAreSkipped()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; }}"));
        var response = await ProxyTest.RawAsync(portico, "GET /i HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.EndsWith("final", response, StringComparison.Ordinal);
        Assert.DoesNotContain("Continue", response, StringComparison.Ordinal);
    }

    // Kestrel sends no trailers on HTTP/1.1 responses, so proxy_pass_trailers reaches HTTP/2 clients only;
    // an HTTP/1.1 client gets the chunked body without them either way.
    [Theory]
    [InlineData("", false)]
    [InlineData("proxy_buffering off;", false)]
    [InlineData("proxy_pass_trailers on;", false)]
    [InlineData("proxy_pass_trailers on; proxy_buffering off;", false)]
    public async Task ChunkedResponseWithTrailers(string directives, bool trailersPassed)
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location / { proxy_pass http://{{origin.Address}}; proxy_http_version 1.1; {{directives}} }
            """));
        using var client = new TcpClient();
        var stream = await ConnectAsync(portico, client);
        await stream.WriteAsync("GET /t HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\r\n"u8.ToArray());
        var response = await ReadAllAsync(stream);
        Assert.Contains("Transfer-Encoding: chunked", response, StringComparison.Ordinal);
        Assert.Contains("hello", response, StringComparison.Ordinal);
        Assert.Contains(" world", response, StringComparison.Ordinal);
        Assert.Equal(trailersPassed, response.Contains("X-Sum: 42", StringComparison.Ordinal));
    }
}
