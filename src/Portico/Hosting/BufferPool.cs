using System.Buffers;

namespace Portico.Hosting;

/// <summary>
/// Byte buffers of the upstream transport (4, 16, 32 and 64 KiB: head and body buffers): a small stack per
/// thread and size (32 head buffers, 2 body buffers: at most 832 KiB a thread, never trimmed), then a
/// <see cref="SharedStack{T}"/> per size holding up to 32 MiB of it. Other sizes go to
/// <see cref="ArrayPool{T}.Shared"/>. The runtime's shared array pool keeps one array a size per thread and
/// 32 per core, which a proxy with more exchanges in flight than that outruns on every request.
/// </summary>
public static class BufferPool
{
    private const int SharedBytes = 32 * 1024 * 1024;
    private static readonly int[] Sizes = [4 * 1024, 16 * 1024, 32 * 1024, 64 * 1024];
    private static readonly int[] PerThread = [32, 32, 2, 2];
    private static readonly SharedStack<byte[]>[] Shared = [.. Sizes.Select(s => new SharedStack<byte[]>(Math.Min(2048, SharedBytes / s)))];

    [ThreadStatic]
    private static ThreadStack<byte[]>[]? t_local;

    /// <summary>A buffer of at least <paramref name="minimum"/> bytes; its contents are not cleared.</summary>
    public static byte[] Rent(int minimum)
    {
        var c = ClassFor(minimum);
        if (c < 0)
        {
            return ArrayPool<byte>.Shared.Rent(minimum);
        }

        var local = t_local;
        return (local is null ? null : local[c].Pop()) ?? Shared[c].Pop() ?? GC.AllocateUninitializedArray<byte>(Sizes[c]);
    }

    public static void Return(byte[] array)
    {
        var c = Array.IndexOf(Sizes, array.Length);
        if (c < 0)
        {
            if (array.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(array);
            }

            return;
        }

        var local = t_local ??= new ThreadStack<byte[]>[Sizes.Length];
        if (!local[c].Push(array, PerThread[c]))
        {
            Shared[c].Push(array);
        }
    }

    private static int ClassFor(int minimum)
    {
        for (var i = 0; i < Sizes.Length; i++)
        {
            if (minimum <= Sizes[i])
            {
                return i;
            }
        }

        return -1;
    }
}
