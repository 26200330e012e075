using System.Net;
using System.Text;
using Portico.IntegrationTests.Proxy;
using Portico.Upstreams;
using Portico.Upstreams.Transport;

namespace Portico.IntegrationTests.Transport;

/// <summary>A clock the test moves by hand (timestamps in ticks).</summary>
public sealed class ManualTime : TimeProvider
{
    private long _now = TimeSpan.TicksPerDay;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _now);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _now, by.Ticks);
}

/// <summary>
/// The connection pool of Portico's HTTP/1 transport: upstream keepalive (reuse, keepalive_requests,
/// keepalive_time, keepalive_timeout, the idle limit), stale connections and max_conns.
/// </summary>
public sealed class Http1PoolTests
{
    /// <summary>An origin that answers every request on a connection with "n=&lt;connection&gt;.&lt;request&gt;" until the peer closes.</summary>
    private static RawOrigin KeepaliveOrigin(Func<int, int, string[]>? extraHeaders = null)
    {
        var connections = 0;
        return RawOrigin.Start(async c =>
        {
            var id = Interlocked.Increment(ref connections);
            for (var n = 1; ; n++)
            {
                if (await c.ReadHeadAsync() is null)
                {
                    return;
                }

                await c.ReadBodyAsync();
                await c.RespondAsync(200, $"n={id}.{n}", extraHeaders?.Invoke(id, n) ?? []);
            }
        });
    }

    private static IPEndPoint At(RawOrigin origin) => new(IPAddress.Loopback, origin.Port);

    [Fact]
    public async Task Keepalive_ReusesTheConnection()
    {
        await using var origin = KeepaliveOrigin();
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        for (var i = 1; i <= 3; i++)
        {
            var x = await h.SendAsync();
            Assert.True(x.Outcome.IsSuccess, x.Outcome.Error);
            Assert.Equal($"n=1.{i}", x.Text);
            if (i > 1)
            {
                Assert.Equal(0, x.State.ConnectTime);
            }
        }

        Assert.Equal(1, origin.Accepted);
        Assert.Equal(1, h.Pool.OpenedTotal);
        Assert.Equal(1, h.Pool.IdleCount);
        Assert.Equal(0, h.Pool.ActiveCount);
    }

    [Fact]
    public async Task NoKeepalive_ClosesAfterEachResponse()
    {
        await using var origin = KeepaliveOrigin();
        using var h = new Http1Harness(At(origin), Http1Harness.NoKeepalive());
        Assert.Equal("n=1.1", (await h.SendAsync()).Text);
        Assert.Equal("n=2.1", (await h.SendAsync()).Text);
        Assert.Equal(0, h.Pool.IdleCount);
        Assert.Equal(0, h.Pool.OpenCount);
    }

    [Fact]
    public async Task KeepaliveRequests_ClosesAfterThatMany()
    {
        await using var origin = KeepaliveOrigin();
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive(requests: 2));
        Assert.Equal("n=1.1", (await h.SendAsync()).Text);
        Assert.Equal("n=1.2", (await h.SendAsync()).Text);
        Assert.Equal("n=2.1", (await h.SendAsync()).Text);
    }

    [Fact]
    public async Task KeepaliveTime_ClosesAConnectionOlderThanThat()
    {
        var time = new ManualTime();
        await using var origin = KeepaliveOrigin();
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive(time: TimeSpan.FromSeconds(10)), time);
        Assert.Equal("n=1.1", (await h.SendAsync()).Text);
        time.Advance(TimeSpan.FromSeconds(11));
        // Still idle for less than keepalive_timeout: reused once more, then closed for its age.
        Assert.Equal("n=1.2", (await h.SendAsync()).Text);
        Assert.Equal(0, h.Pool.IdleCount);
        Assert.Equal("n=2.1", (await h.SendAsync()).Text);
    }

    [Fact]
    public async Task KeepaliveTimeout_IdleConnectionsAreClosed()
    {
        var time = new ManualTime();
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = RawOrigin.Start(async c =>
        {
            while (await c.ReadHeadAsync() is not null)
            {
                await c.RespondAsync(200, "ok");
            }

            closed.TrySetResult();
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive(timeout: TimeSpan.FromSeconds(5)), time);
        Assert.True((await h.SendAsync()).Outcome.IsSuccess);
        Assert.Equal(1, h.Pool.IdleCount);
        time.Advance(TimeSpan.FromSeconds(4));
        h.Pool.Sweep();
        Assert.Equal(1, h.Pool.IdleCount);
        time.Advance(TimeSpan.FromSeconds(2));
        h.Pool.Sweep();
        Assert.Equal(0, h.Pool.IdleCount);
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(20));

        // A request after the timeout opens a new connection even without a sweep.
        Assert.True((await h.SendAsync()).Outcome.IsSuccess);
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.True((await h.SendAsync()).Outcome.IsSuccess);
        Assert.Equal(3, origin.Accepted);
    }

    [Fact]
    public async Task IdleLimit_TheLeastRecentlyUsedIsClosed()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = 0;
        await using var origin = RawOrigin.Start(async c =>
        {
            while (await c.ReadHeadAsync() is not null)
            {
                if (Interlocked.Increment(ref arrived) <= 2)
                {
                    await release.Task;
                }

                await c.RespondAsync(200, "ok");
            }
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive(connections: 1));
        var one = h.SendAsync();
        var two = h.SendAsync();
        await ProxyTest.WaitUntilAsync(() => Volatile.Read(ref arrived) == 2, "two requests at the origin");
        Assert.Equal(2, h.Pool.ActiveCount);
        release.SetResult();
        Assert.True((await one).Outcome.IsSuccess);
        Assert.True((await two).Outcome.IsSuccess);
        Assert.Equal(1, h.Pool.IdleCount);
        Assert.Equal(1, h.Pool.OpenCount);
    }

    [Fact]
    public async Task ConnectionCloseFromTheOrigin_IsNotKept()
    {
        await using var origin = KeepaliveOrigin((_, _) => ["Connection: close"]);
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        Assert.True((await h.SendAsync()).Outcome.IsSuccess);
        Assert.Equal(0, h.Pool.IdleCount);
    }

    [Fact]
    public async Task Http10Response_IsNotKept()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            while (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        Assert.Equal("ok", (await h.SendAsync()).Text);
        Assert.Equal(0, h.Pool.IdleCount);
    }

    [Fact]
    public async Task ConnectionCloseSentToTheOrigin_IsNotKept()
    {
        await using var origin = KeepaliveOrigin();
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        Assert.True((await h.SendAsync(headers: [new("Host", "o"), new("Connection", "close")])).Outcome.IsSuccess);
        Assert.Equal(0, h.Pool.IdleCount);
    }

    [Fact]
    public async Task MoreDataThanContentLength_IsNotKept()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            while (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA");
            }
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        var x = await h.SendAsync();
        Assert.Equal("ok", x.Text);
        Assert.Equal(0, h.Pool.IdleCount);
    }

    [Fact]
    public async Task StaleConnection_ClosedWhileIdle_IsNotUsedForAPost()
    {
        // The origin closes each connection after one response, without saying so (as an origin's idle timeout does).
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.ReadBodyAsync();
                await c.RespondAsync(200, "ok");
            }
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        Assert.True((await h.SendAsync()).Outcome.IsSuccess);
        await ProxyTest.WaitUntilAsync(() => Http1PoolProbe.IdleLooksClosed(h.Pool), "the origin's close to arrive");
        // A POST polls the connection however briefly it was idle: written to the closed one it could not be
        // sent again, and would fail.
        var second = await h.SendAsync(method: "POST", body: "data"u8.ToArray());
        Assert.True(second.Outcome.IsSuccess, second.Outcome.Error);
        Assert.Equal(2, origin.Accepted);
    }

    [Fact]
    public async Task EarlyAnswer_SmallBufferedBodyIsFinishedAndTheConnectionKept()
    {
        // Reads after the first wait 1 ms: the answer is complete before the body is all sent, and the rest
        // (about 6 ms) is far inside FinishWait even on a loaded machine (5 ms a read failed once under a
        // parallel test run).
        Assert.Equal(1, await EarlyAnswerPostsAsync(posts: 3, delayMs: 1));
    }

    [Fact]
    public async Task EarlyAnswer_BodyThatDoesNotFinishSoonIsCutAndTheConnectionClosed()
    {
        // Seven reads of 32 KiB, those after the first taking far longer than FinishWait in total: the answer
        // was the client's; the cut connection could not serve the second request.
        Assert.Equal(2, await EarlyAnswerPostsAsync(posts: 2, delayMs: 200));
    }

    /// <summary>
    /// POSTs of a 200 KiB body from a temporary file (as client_body_buffer_size buffers anything over 16 KiB)
    /// to an origin that answers after the head and reads the body afterwards, as nginx's "return" does.
    /// Every answer must reach the client; returns the connections the origin accepted.
    /// </summary>
    private static async Task<int> EarlyAnswerPostsAsync(int posts, int delayMs)
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            while (await c.ReadHeadAsync() is not null)
            {
                await c.RespondAsync(200, "early");
                await c.ReadBodyAsync();
            }
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        var path = Path.Combine(Path.GetTempPath(), "portico-early-" + Guid.NewGuid().ToString("N")[..8]);
        await File.WriteAllBytesAsync(path, new byte[200 * 1024]);
        try
        {
            for (var i = 0; i < posts; i++)
            {
                await using var file = new SlowFile(path, delayMs);
                var x = await h.SendAsync(method: "POST", bodyStream: file, bodyLength: file.Length);
                Assert.True(x.Outcome.IsSuccess, x.Outcome.Error);
                Assert.Equal("early", x.Text);
            }
        }
        finally
        {
            File.Delete(path);
        }

        return origin.Accepted;
    }

    [Fact]
    public async Task StaleConnection_ClosedJustNow_IdempotentRequestGoesAgainOnAFreshOne()
    {
        // Taken without a poll (idle for less than FreshIdle), the closed connection fails before any response
        // byte: the GET is sent again on a new connection and succeeds.
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.RespondAsync(200, "ok");
            }
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        Assert.True((await h.SendAsync()).Outcome.IsSuccess);
        await ProxyTest.WaitUntilAsync(() => Http1PoolProbe.IdleLooksClosed(h.Pool), "the origin's close to arrive");
        var second = await h.SendAsync();
        Assert.True(second.Outcome.IsSuccess, second.Outcome.Error);
        Assert.Equal("ok", second.Text);
    }

    /// <summary>An origin whose first connection takes a second request head and closes without answering.</summary>
    private static RawOrigin ClosesOnSecondRequestOrigin()
    {
        var connections = 0;
        return RawOrigin.Start(async c =>
        {
            var first = Interlocked.Increment(ref connections) == 1;
            for (var n = 1; ; n++)
            {
                if (await c.ReadHeadAsync() is null)
                {
                    return;
                }

                await c.ReadBodyAsync();
                if (first && n == 2)
                {
                    return;
                }

                await c.RespondAsync(200, $"ok {n}");
            }
        });
    }

    [Fact]
    public async Task StaleConnection_ClosedAfterTheRequest_IdempotentIsSentAgain()
    {
        await using var origin = ClosesOnSecondRequestOrigin();
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        Assert.Equal("ok 1", (await h.SendAsync()).Text);
        var again = await h.SendAsync(method: "PUT", body: "data"u8.ToArray());
        Assert.True(again.Outcome.IsSuccess, again.Outcome.Error);
        Assert.Equal("ok 1", again.Text);
        Assert.Equal(2, origin.Accepted);
    }

    [Fact]
    public async Task StaleConnection_ClosedAfterTheRequest_PostIsNotSentAgain()
    {
        await using var origin = ClosesOnSecondRequestOrigin();
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        Assert.Equal("ok 1", (await h.SendAsync()).Text);
        var post = await h.SendAsync(method: "POST", body: "data"u8.ToArray());
        Assert.Equal(UpstreamFailure.Error, post.Outcome.Failure);
        Assert.True(post.Outcome.RequestSent);
        Assert.Equal("upstream prematurely closed connection", post.Outcome.Error);
        Assert.Equal("reading response header from upstream", post.Outcome.Action);
        Assert.Equal(1, origin.Accepted);
    }

    [Fact]
    public async Task Bodies_LengthChunkedAndLarge()
    {
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var origin = RawOrigin.Start(async c =>
        {
            while (await c.ReadHeadAsync() is { } head)
            {
                var body = await c.ReadBodyAsync();
                seen.Enqueue($"{head.Header("Content-Length")}|{head.Header("Transfer-Encoding")}|{body.Length}|{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(body))}");
                await c.RespondAsync(200, "ok");
            }
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        var small = "hello"u8.ToArray();
        var large = new byte[3 * 1024 * 1024 + 17];
        new Random(7).NextBytes(large);
        string Hash(byte[] b) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(b));

        Assert.True((await h.SendAsync("POST", body: small)).Outcome.IsSuccess);
        Assert.True((await h.SendAsync("POST", body: large)).Outcome.IsSuccess);
        Assert.True((await h.SendAsync("POST", bodyStream: new NonSeekable(large), bodyLength: null)).Outcome.IsSuccess);
        Assert.True((await h.SendAsync("POST", bodyStream: new NonSeekable([]), bodyLength: null)).Outcome.IsSuccess);
        Assert.Equal(
            [$"5||5|{Hash(small)}", $"{large.Length}||{large.Length}|{Hash(large)}", $"|chunked|{large.Length}|{Hash(large)}", $"|chunked|0|{Hash([])}"],
            seen.ToArray());
        Assert.Equal(1, origin.Accepted);
    }

    [Fact]
    public async Task ChunkedResponse_TrailersAndReuse()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            while (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-Sum: 42\r\nX-Other: x\r\n\r\n");
            }
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        for (var i = 0; i < 2; i++)
        {
            var x = await h.SendAsync();
            Assert.Equal("hello!", x.Text);
            Assert.Equal([new("X-Sum", "42"), new KeyValuePair<string, string>("X-Other", "x")], x.Trailers);
            Assert.Equal(6, x.State.ResponseLength);
        }

        Assert.Equal(1, origin.Accepted);
    }

    [Fact]
    public async Task ClientAbort_EndsTheExchange()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var origin = RawOrigin.Start(async c =>
        {
            await c.ReadHeadAsync();
            await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart");
            arrived.TrySetResult();
            await Task.Delay(TimeSpan.FromSeconds(20));
        });
        using var h = new Http1Harness(At(origin), Http1Harness.Keepalive());
        using var abort = new CancellationTokenSource();
        var handler = new RecordingHandler();
        var exchange = h.SendAsync(aborted: abort.Token, handler: handler);
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await ProxyTest.WaitUntilAsync(() => handler.Head is not null, "the response head");
        abort.Cancel();
        var x = await exchange.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(ClientFailure.Closed, x.Outcome.Client);
        Assert.True(x.Outcome.HeadReceived);
        Assert.Equal(0, h.Pool.IdleCount);
    }

    /// <summary>A body stream that cannot seek (as the client's streamed body).</summary>
    private sealed class NonSeekable(byte[] data) : MemoryStream(data, writable: false)
    {
        public override bool CanSeek => false;
    }
}

/// <summary>A temporary body file whose reads after the first one take a moment (a slow disk).</summary>
internal sealed class SlowFile(string path, int delayMs) : FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, useAsync: true)
{
    private int _reads;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (++_reads > 1)
        {
            await Task.Delay(delayMs, cancellationToken);
        }

        return await base.ReadAsync(buffer, cancellationToken);
    }
}

internal static class Http1PoolProbe
{
    /// <summary>True once the idle connection's socket reads as closed (what TakeIdle checks).</summary>
    public static bool IdleLooksClosed(Portico.Upstreams.Transport.Http1.Http1Pool pool) =>
        pool.PeekIdle() is not { } c || c.PeerClosedWhileIdle();
}
