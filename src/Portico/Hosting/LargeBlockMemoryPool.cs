using System.Buffers;
using System.Collections.Concurrent;
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
/// </summary>
public sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 64 * 1024;

    private readonly ConcurrentQueue<Block> _free = new();
    private readonly int _maxRetained;
    private int _retained;
    private bool _disposed;

    public LargeBlockMemoryPool(int maxRetainedBlocks = 512)
    {
        _maxRetained = maxRetainedBlocks;
    }

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _retained);
            block.Lease();
            return block;
        }

        var created = new Block(this);
        created.Lease();
        return created;
    }

    private void Return(Block block)
    {
        if (_disposed || Interlocked.Increment(ref _retained) > _maxRetained)
        {
            // Past the cap the block is left to the GC: a burst does not pin memory for ever.
            Interlocked.Decrement(ref _retained);
            return;
        }

        _free.Enqueue(block);
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        _free.Clear();
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
