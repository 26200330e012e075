using System.Buffers;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Portico.Hosting;

/// <summary>
/// Kestrel's socket buffers in 64 KiB pinned blocks instead of 4 KiB ones. Measured (bench/, issue 8): with
/// inline scheduling, 4 KiB blocks make a 64 KiB POST cost many small reads and writes; 64 KiB blocks move
/// it in one. Idle keep-alive connections hold no block (Kestrel waits for data before renting one).
/// Free blocks are a stack (the block given back last, still in the CPU's cache, serves next; a queue cycles
/// through every retained block) and what stayed unused for a whole <see cref="PoolTrimmer.Interval"/> goes
/// back to the GC, so a burst of connections does not pin its blocks for ever.
/// </summary>
public sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 64 * 1024;

    private readonly SharedStack<Block> _free;
    private bool _disposed;

    public LargeBlockMemoryPool(int maxRetainedBlocks = 512, bool trimmed = true)
    {
        _free = new SharedStack<Block>(maxRetainedBlocks, trimmed);
    }

    /// <summary>Free blocks kept now.</summary>
    internal int FreeBlocks => _free.Count;

    /// <summary>What the trimmer's timer does (tests call it by hand).</summary>
    internal void Trim() => _free.Trim();

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        var block = _free.Pop() ?? new Block(this);
        block.Lease();
        return block;
    }

    private void Return(Block block)
    {
        // Past the cap (or after the pool's end) the block is left to the GC.
        if (!_disposed)
        {
            _free.Push(block);
        }
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        _free.Dispose();
    }

    private sealed class Block : MemoryManager<byte>
    {
        private readonly LargeBlockMemoryPool _pool;
        private readonly byte[] _array;
        private int _leased;

        public Block(LargeBlockMemoryPool pool)
        {
            _pool = pool;
            _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);
        }

        public void Lease() => _leased = 1;

        public override Span<byte> GetSpan() => _array;

        public override Memory<byte> Memory => CreateMemory(BlockSize);

        public override unsafe MemoryHandle Pin(int elementIndex = 0)
        {
            // The array lives on the pinned object heap: no GCHandle needed.
            var pointer = Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
            return new MemoryHandle((byte*)pointer + elementIndex);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
            if (Interlocked.Exchange(ref _leased, 0) == 1)
            {
                _pool.Return(this);
            }
        }

        protected override bool TryGetArray(out ArraySegment<byte> segment)
        {
            segment = new ArraySegment<byte>(_array);
            return true;
        }
    }
}

/// <summary>Hands Kestrel's socket transport the large-block pool.</summary>
public sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    public static readonly LargeBlockMemoryPoolFactory Instance = new();

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool();

    /// <summary>
    /// SocketTransportOptions.MemoryPoolFactory is internal in .NET 10 (the generic host sets it from DI);
    /// Portico builds the options itself, so it sets the property by name. False when a future Kestrel
    /// renames it: the transport then keeps its default 4 KiB pool, which is correct, only slower.
    /// </summary>
    public static bool TryInstall(SocketTransportOptions options)
    {
        var property = typeof(SocketTransportOptions).GetProperty("MemoryPoolFactory", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        if (property?.SetMethod is null || !property.PropertyType.IsAssignableFrom(typeof(LargeBlockMemoryPoolFactory)))
        {
            return false;
        }

        property.SetValue(options, Instance);
        return true;
    }
}
