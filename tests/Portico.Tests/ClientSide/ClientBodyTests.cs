using System.Buffers;
using Portico.ClientSide;

namespace Portico.Tests.ClientSide;

public class ClientBodyTests
{
    private static (ClientBody Body, byte[] Expected) Staged(int length)
    {
        var pooled = ArrayPool<byte>.Shared.Rent(ClientBody.StageSize);
        for (var i = 0; i < length; i++)
        {
            pooled[i] = (byte)(i * 7 % 251);
        }

        return (ClientBody.Staged(pooled, length), pooled[..length]);
    }

    [Fact]
    public async Task EveryAttemptReadsTheWholeStagedBody_InPiecesOrInPlace()
    {
        var (body, expected) = Staged(50_000);

        // A reader taking small pieces (as a forwarder with a small buffer does) sees every byte in order.
        using var first = body.OpenRead();
        var seen = new MemoryStream();
        var piece = new byte[7_000];
        int n;
        while ((n = await first.ReadAsync(piece)) > 0)
        {
            seen.Write(piece, 0, n);
        }

        Assert.Equal(expected, seen.ToArray());

        // The next attempt starts again from the first byte; sending in place hands over all of it.
        var second = Assert.IsType<ClientBody.CopySlice>(body.OpenRead());
        Assert.True(second.TryLease(out var rest));
        Assert.Equal(expected, rest.ToArray());
        second.EndLease();
        Assert.Equal(0, await second.ReadAsync(piece));

        await body.DisposeAsync();
    }

    [Fact]
    public async Task ReadsAfterTheRequestEnded_Fail()
    {
        var (body, _) = Staged(1_000);
        var late = body.OpenRead();
        var lease = Assert.IsType<ClientBody.CopySlice>(body.OpenRead());
        await body.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => late.Read(new byte[10], 0, 10));
        Assert.False(lease.TryLease(out _));
    }
}
