namespace Portico.Hosting;

/// <summary>
/// The shared tier of Portico's object pools: one bounded stack behind a lock, in front of which each pool
/// keeps a small stack per thread (no lock). The shared tier is what makes reuse work when an object is taken
/// on one thread and given back on another (HTTP/2 streams run on the thread pool while their upstream
/// replies complete on the socket thread) and when more requests are in flight than a thread keeps (128
/// connections on one I/O thread). Measured without it (issue 8): 401 bytes allocated a proxied small GET at
/// 16 connections, 10.5 KiB at 128 and 16 KiB over h2c, most of it buffers the runtime's shared array pool
/// (32 arrays a size on one core) could not keep.
/// Every <see cref="PoolTrimmer.Interval"/> the stack gives back to the GC what stayed unused the whole
/// interval (its low-water mark), oldest first, so a burst does not hold memory for ever.
/// </summary>
public sealed class SharedStack<T> : PoolTrimmer.ITrimmable, IDisposable where T : class
{
    private readonly Lock _gate = new();
    private readonly T?[] _items;
    private int _count;
    private int _low;

    /// <param name="capacity">Objects kept at most.</param>
    /// <param name="trimmed">Whether the pool trimmer's timer trims this stack (tests trim by hand).</param>
    public SharedStack(int capacity, bool trimmed = true)
    {
        _items = new T?[capacity];
        if (trimmed)
        {
            PoolTrimmer.Register(this);
        }
    }

    public int Count => _count;

    public T? Pop()
    {
        lock (_gate)
        {
            if (_count == 0)
            {
                return null;
            }

            var item = _items[--_count];
            _items[_count] = null;
            if (_count < _low)
            {
                _low = _count;
            }

            return item;
        }
    }

    /// <summary>False when the stack is full: the caller leaves the object to the GC.</summary>
    public bool Push(T item)
    {
        lock (_gate)
        {
            if (_count == _items.Length)
            {
                return false;
            }

            _items[_count++] = item;
            return true;
        }
    }

    /// <summary>Drops every object and leaves the trimmer's list (a pool that ends with its owner).</summary>
    public void Dispose()
    {
        PoolTrimmer.Unregister(this);
        lock (_gate)
        {
            Array.Clear(_items, 0, _count);
            _count = 0;
            _low = 0;
        }
    }

    /// <summary>Drops the objects no one took since the last trim (the bottom of the stack).</summary>
    public void Trim()
    {
        lock (_gate)
        {
            var unused = Math.Min(_low, _count);
            if (unused > 0)
            {
                Array.Copy(_items, unused, _items, 0, _count - unused);
                Array.Clear(_items, _count - unused, unused);
                _count -= unused;
            }

            _low = _count;
        }
    }
}

/// <summary>
/// A thread's own tier of a pool, kept in a <c>[ThreadStatic]</c> field (no lock): a stack of up to the
/// capacity given on the first push. A struct, so calls on the field change the thread's own copy.
/// </summary>
public struct ThreadStack<T> where T : class
{
    private T?[]? _items;
    private int _count;

    public T? Pop()
    {
        if (_count == 0)
        {
            return null;
        }

        var item = _items![--_count];
        _items[_count] = null;
        return item;
    }

    /// <summary>False when the stack is full: the caller gives the object to the shared tier.</summary>
    public bool Push(T item, int capacity)
    {
        var items = _items ??= new T?[capacity];
        if (_count == items.Length)
        {
            return false;
        }

        items[_count++] = item;
        return true;
    }
}

/// <summary>Trims every registered shared stack on one timer.</summary>
public static class PoolTrimmer
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private static readonly Lock Gate = new();
    private static readonly List<ITrimmable> Stacks = [];
    private static Timer? _timer;

    public interface ITrimmable
    {
        void Trim();
    }

    internal static void Register(ITrimmable stack)
    {
        lock (Gate)
        {
            Stacks.Add(stack);
            _timer ??= new Timer(static _ => TrimAll(), null, Interval, Interval);
        }
    }

    internal static void Unregister(ITrimmable stack)
    {
        lock (Gate)
        {
            Stacks.Remove(stack);
        }
    }

    private static void TrimAll()
    {
        ITrimmable[] stacks;
        lock (Gate)
        {
            stacks = [.. Stacks];
        }

        foreach (var s in stacks)
        {
            s.Trim();
        }
    }
}
