using System.Net;
using Portico.IntegrationTests.Proxy;
using Portico.Upstreams.Transport;

namespace Portico.IntegrationTests.Transport;

/// <summary>
/// IDirectBodySink: the transport reads the origin's bytes into memory the client side lends, but never
/// leaves a read waiting there (Kestrel frees that memory when the client aborts, while the request runs).
/// </summary>
public sealed class DirectBodyTests
{
    private static byte Pattern(long i) => (byte)(i % 253);

    /// <summary>A sink that lends its own buffer and records whether lent memory is outstanding.</summary>
    private sealed class LendingSink : MemoryStream, IDirectBodySink
    {
        private readonly byte[] _lent = new byte[64 * 1024];

        public volatile bool Outstanding;

        public int Commits { get; private set; }

        public bool CanLend => true;

        public Memory<byte> DirectMemory(int minimum)
        {
            Outstanding = true;
            return _lent;
        }

        public ValueTask CommitDirectAsync(int count, CancellationToken cancellationToken)
        {
            Write(_lent, 0, count);
            Commits++;
            Outstanding = false;
            return ValueTask.CompletedTask;
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AReadNeverWaitsInLentMemory(bool withLength)
    {
        const int first = 200_000;
        const int size = 400_000;
        var sink = new LendingSink();
        var heldDuringPause = true;
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is null)
            {
                return;
            }

            var body = new byte[size];
            for (var i = 0; i < size; i++)
            {
                body[i] = Pattern(i);
            }

            await c.WriteAsync(withLength ? $"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n" : "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            await c.Stream.WriteAsync(body.AsMemory(0, first));

            // Portico has taken all of it and waits for more: no lent memory may be held now (sampled a few
            // times; a read left waiting in lent memory would hold it for the whole pause).
            await Task.Delay(300);
            for (var k = 0; k < 10 && heldDuringPause; k++)
            {
                heldDuringPause = sink.Outstanding;
                await Task.Delay(10);
            }

            await c.Stream.WriteAsync(body.AsMemory(first));
            if (!withLength)
            {
                c.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
                // Portico closes once it has the body (the origin's end marks it).
                _ = await c.Stream.ReadAsync(new byte[1]);
            }
        });

        using var h = new Http1Harness(new IPEndPoint(IPAddress.Loopback, origin.Port), Http1Harness.NoKeepalive());
        var exchange = await h.SendAsync(sink: sink);

        Assert.True(exchange.Outcome.IsSuccess, exchange.Outcome.Error);
        Assert.False(heldDuringPause, "lent memory was held while the origin sent nothing");
        Assert.True(sink.Commits > 0, "the transport never read into lent memory");
        var got = exchange.Body;
        Assert.Equal(size, got.Length);
        for (var i = 0; i < got.Length; i++)
        {
            if (got[i] != Pattern(i))
            {
                Assert.Fail($"byte {i} differs");
            }
        }
    }
}
