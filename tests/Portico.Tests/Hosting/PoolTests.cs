using System.Buffers;
using System.Runtime.InteropServices;
using Portico.Hosting;
using Xunit;

namespace Portico.Tests.Hosting;

public class SharedStackTests
{
    [Fact]
    public void GivesBackTheLastObjectFirst_AndNothingWhenEmpty()
    {
        var s = new SharedStack<object>(4, trimmed: false);
        var a = new object();
        var b = new object();
        Assert.True(s.Push(a));
        Assert.True(s.Push(b));
        Assert.Same(b, s.Pop());
        Assert.Same(a, s.Pop());
        Assert.Null(s.Pop());
    }

    [Fact]
    public void KeepsNoMoreThanItsCapacity()
    {
        var s = new SharedStack<object>(2, trimmed: false);
        Assert.True(s.Push(new object()));
        Assert.True(s.Push(new object()));
        Assert.False(s.Push(new object()));
        Assert.Equal(2, s.Count);
    }

    [Fact]
    public void Trim_DropsWhatStayedUnusedAWholeInterval_OldestFirst()
    {
        var s = new SharedStack<object>(16, trimmed: false);
        var items = Enumerable.Range(0, 10).Select(_ => new object()).ToArray();
        foreach (var i in items)
        {
            s.Push(i);
        }

        s.Trim(); // the first interval starts: nothing has been unused for a whole one yet
        Assert.Equal(10, s.Count);

        // Three taken and given back during the interval: seven stayed unused.
        var taken = new[] { s.Pop()!, s.Pop()!, s.Pop()! };
        foreach (var t in taken.Reverse())
        {
            s.Push(t);
        }

        s.Trim();
        Assert.Equal(3, s.Count);
        Assert.Equal(new[] { items[9], items[8], items[7] }, new[] { s.Pop(), s.Pop(), s.Pop() });

        foreach (var t in taken.Reverse())
        {
            s.Push(t);
        }

        s.Trim(); // pushed during the interval, but the stack was empty at one point: all three were in use
        Assert.Equal(3, s.Count);
        s.Trim(); // a whole interval untouched
        Assert.Equal(0, s.Count);
    }
}

public class BufferPoolTests
{
    [Theory]
    [InlineData(1, 4096)]
    [InlineData(4096, 4096)]
    [InlineData(4097, 16384)]
    [InlineData(16385, 32768)]
    [InlineData(65536, 65536)]
    public void RentsTheSmallestSizeThatFits(int minimum, int length)
    {
        var a = BufferPool.Rent(minimum);
        Assert.Equal(length, a.Length);
        BufferPool.Return(a);
    }

    [Fact]
    public void LargerRequestsComeFromTheRuntimesPool()
    {
        var a = BufferPool.Rent(100_000);
        Assert.True(a.Length >= 100_000);
        BufferPool.Return(a);
        BufferPool.Return([]); // an exchange that never rented gives back an empty array: ignored
    }

    [Fact]
    public void AThreadsOwnBuffersComeBackOnceEach_LastFirst()
    {
        // On a new thread nothing else touches its stack: three given back are the next three taken, each once.
        RunOnNewThread(() =>
        {
            var given = new[] { BufferPool.Rent(4096), BufferPool.Rent(4096), BufferPool.Rent(4096) };
            foreach (var a in given)
            {
                BufferPool.Return(a);
            }

            var taken = new[] { BufferPool.Rent(4096), BufferPool.Rent(4096), BufferPool.Rent(4096) };
            // The same arrays (xunit's Equal would compare byte[] by content).
            Assert.Same(given[2], taken[0]);
            Assert.Same(given[1], taken[1]);
            Assert.Same(given[0], taken[2]);
            foreach (var a in taken)
            {
                BufferPool.Return(a);
            }
        });
    }

    [Fact]
    public void ABurstLargerThanAThreadKeepsIsReused_OnAnotherThreadToo()
    {
        // 200 buffers in flight at once (more than the 32 a thread keeps), given back on one thread and taken
        // again on another: with only per-thread stacks most would be new arrays. Other tests may use the pool
        // at the same time, so the check is that most come back, not all.
        const int n = 200;
        var first = new HashSet<byte[]>(ReferenceEqualityComparer.Instance);
        RunOnNewThread(() =>
        {
            var rented = Enumerable.Range(0, n).Select(_ => BufferPool.Rent(16 * 1024)).ToArray();
            foreach (var a in rented)
            {
                first.Add(a);
                BufferPool.Return(a);
            }
        });

        var reused = 0;
        var again = new List<byte[]>();
        RunOnNewThread(() =>
        {
            for (var i = 0; i < n - 32; i++)
            {
                var a = BufferPool.Rent(16 * 1024);
                again.Add(a);
                if (first.Contains(a))
                {
                    reused++;
                }
            }
        });

        foreach (var a in again)
        {
            BufferPool.Return(a);
        }

        Assert.True(reused >= (n - 32) * 3 / 4, $"only {reused} of {n - 32} buffers were reused");
    }

    private static void RunOnNewThread(Action action)
    {
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        t.Start();
        t.Join();
        if (error is not null)
        {
            throw error;
        }
    }
}

public class LargeBlockMemoryPoolTests
{
    [Fact]
    public void TheBlockGivenBackLastServesNext()
    {
        using var pool = new LargeBlockMemoryPool(8, trimmed: false);
        var a = pool.Rent();
        var b = pool.Rent();
        var c = pool.Rent();
        var arrayOf = (IMemoryOwner<byte> o) => MemoryMarshal.TryGetArray<byte>(o.Memory, out var s) ? s.Array : null;
        var (aa, bb) = (arrayOf(a), arrayOf(b));
        a.Dispose();
        b.Dispose();
        // A queue would hand out a's block first: the coldest one.
        Assert.Same(bb, arrayOf(pool.Rent()));
        Assert.Same(aa, arrayOf(pool.Rent()));
        Assert.Equal(LargeBlockMemoryPool.BlockSize, c.Memory.Length);
    }

    [Fact]
    public void BlocksUnusedForAWholeInterval_GoBackToTheGc_AndTheCapHolds()
    {
        using var pool = new LargeBlockMemoryPool(4, trimmed: false);
        var burst = Enumerable.Range(0, 6).Select(_ => pool.Rent()).ToArray();
        foreach (var b in burst)
        {
            b.Dispose();
        }

        Assert.Equal(4, pool.FreeBlocks);
        pool.Trim(); // the interval of the burst: nothing dropped yet
        Assert.Equal(4, pool.FreeBlocks);
        pool.Rent().Dispose(); // one block in use during the next interval: three stayed unused
        pool.Trim();
        Assert.Equal(1, pool.FreeBlocks);
        pool.Trim();
        Assert.Equal(0, pool.FreeBlocks);
    }

    [Fact]
    public void ABlockGivenBackTwice_IsKeptOnce()
    {
        using var pool = new LargeBlockMemoryPool(8, trimmed: false);
        var a = pool.Rent();
        a.Dispose();
        a.Dispose();
        Assert.Equal(1, pool.FreeBlocks);
    }
}
