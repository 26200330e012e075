using System.Collections.Concurrent;
using Microsoft.Win32.SafeHandles;

namespace Portico.Static;

/// <summary>
/// The outcome of opening or testing a file: an errno with the call that failed (nginx's of.err and
/// of.failed), or the file's metadata and, for a regular file that was opened, its handle.
/// </summary>
public sealed class FileProbe
{
    public FileProbe(int error, string failed, FileStat stat, SafeFileHandle? handle)
    {
        Error = error;
        Failed = failed;
        Stat = stat;
        Handle = handle;
    }

    public int Error { get; }
    public string Failed { get; }
    public FileStat Stat { get; }

    /// <summary>The open file (regular files only, when opened for reading).</summary>
    public SafeFileHandle? Handle { get; }

    public bool Ok => Error == 0;
}

/// <summary>
/// A checked-out file: the probe plus the reference the request holds on the handle. Disposing it releases
/// that reference (a cached handle stays open for the cache; an uncached one is closed).
/// </summary>
public struct OpenedFile : IDisposable
{
    private bool _addedRef;

    internal OpenedFile(FileProbe probe, bool addedRef)
    {
        Probe = probe;
        _addedRef = addedRef;
    }

    public FileProbe Probe { get; }

    public void Dispose()
    {
        if (_addedRef)
        {
            _addedRef = false;
            Probe.Handle!.DangerousRelease();
        }
        else if (Probe is { Handle: { } h })
        {
            h.Dispose();
        }
    }
}

/// <summary>
/// nginx's open_file_cache: open handles and stat results (and, with open_file_cache_errors, lookup errors)
/// by file name, trusted for open_file_cache_valid seconds; entries unused for "inactive" seconds are closed,
/// and the least recently used go when there are more than "max". A handle is kept only once the file was
/// used open_file_cache_min_uses times. Lookups are lock-free; a hit needs no system call at all.
/// </summary>
public sealed class OpenFileCache : IDisposable
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly Lock _sweepGate = new();
    private int _sweeping;
    private long _lastSweep;
    private long _hits;
    private long _misses;
    private bool _disposed;

    public OpenFileCache(int max, long inactiveSeconds, TimeProvider time)
    {
        Max = max;
        InactiveSeconds = inactiveSeconds;
        _time = time;
        _lastSweep = Now;
    }

    public int Max { get; }
    public long InactiveSeconds { get; }
    public int Count => _entries.Count;
    public long Hits => Interlocked.Read(ref _hits);
    public long Misses => Interlocked.Read(ref _misses);

    private long Now => _time.GetUtcNow().ToUnixTimeSeconds();

    private sealed class Entry
    {
        public Entry(FileProbe probe, SymlinkPolicy policy, int from, long validated, int uses)
        {
            Probe = probe;
            Policy = policy;
            From = from;
            Validated = validated;
            Uses = uses;
            Accessed = validated;
        }

        public readonly FileProbe Probe;
        public readonly SymlinkPolicy Policy;
        public readonly int From;
        public readonly long Validated;
        public int Uses;
        public long Accessed;
    }

    /// <summary>
    /// A valid cached answer for the file, or false. With <paramref name="needHandle"/> a regular file counts
    /// only when its handle is cached (the reference is taken for the caller).
    /// </summary>
    public bool TryGet(string path, SymlinkPolicy policy, int from, long valid, bool needHandle, out OpenedFile file)
    {
        file = default;
        var now = Now;
        MaybeSweep(now);
        if (!_entries.TryGetValue(path, out var e) || e.Policy != policy || e.From != from)
        {
            Interlocked.Increment(ref _misses);
            return false;
        }

        Interlocked.Increment(ref e.Uses);
        Volatile.Write(ref e.Accessed, now);
        if (now - e.Validated >= valid)
        {
            Interlocked.Increment(ref _misses);
            return false;
        }

        var probe = e.Probe;
        if (needHandle && probe.Ok && probe.Stat.IsFile)
        {
            if (probe.Handle is not { } handle)
            {
                Interlocked.Increment(ref _misses);
                return false;
            }

            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
            }
            catch (ObjectDisposedException)
            {
                Interlocked.Increment(ref _misses);
                return false;
            }

            Interlocked.Increment(ref _hits);
            file = new OpenedFile(probe, added);
            return true;
        }

        Interlocked.Increment(ref _hits);
        file = new OpenedFile(new FileProbe(probe.Error, probe.Failed, probe.Stat, null), false);
        return true;
    }

    /// <summary>
    /// Records a fresh result. Returns the file for the caller: with a handle kept by the cache the caller gets
    /// its own reference; otherwise the caller owns the handle.
    /// </summary>
    public OpenedFile Store(string path, SymlinkPolicy policy, int from, FileProbe probe, long minUses, bool cacheErrors)
    {
        if (_disposed || (!probe.Ok && !cacheErrors))
        {
            _entries.TryRemove(path, out var stale);
            Release(stale);
            return new OpenedFile(probe, false);
        }

        var now = Now;
        _entries.TryGetValue(path, out var old);
        var uses = old is not null && old.Policy == policy && old.From == from ? Volatile.Read(ref old.Uses) : 1;
        var keepHandle = probe.Handle is not null && uses >= minUses;
        var cached = keepHandle ? probe : new FileProbe(probe.Error, probe.Failed, probe.Stat, null);
        var entry = new Entry(cached, policy, from, now, uses);
        var replaced = old is null ? _entries.TryAdd(path, entry) : _entries.TryUpdate(path, entry, old);
        if (!replaced)
        {
            return new OpenedFile(probe, false);
        }

        Release(old);
        if (_entries.Count > Max)
        {
            ScheduleSweep();
        }

        if (!keepHandle)
        {
            return new OpenedFile(probe, false);
        }

        var added = false;
        probe.Handle!.DangerousAddRef(ref added);
        return new OpenedFile(probe, added);
    }

    private static void Release(Entry? e) => e?.Probe.Handle?.Dispose();

    private void MaybeSweep(long now)
    {
        var last = Interlocked.Read(ref _lastSweep);
        if (now - last >= Math.Max(1, InactiveSeconds / 2) && Interlocked.CompareExchange(ref _lastSweep, now, last) == last)
        {
            ScheduleSweep();
        }
    }

    private void ScheduleSweep()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static c =>
            {
                try
                {
                    c.Sweep();
                }
                finally
                {
                    Volatile.Write(ref c._sweeping, 0);
                }
            }, this, preferLocal: false);
        }
    }

    /// <summary>Closes entries unused for "inactive" seconds, then the least recently used beyond "max".</summary>
    public void Sweep()
    {
        lock (_sweepGate)
        {
            var now = Now;
            foreach (var (key, e) in _entries)
            {
                if (now - Volatile.Read(ref e.Accessed) >= InactiveSeconds && _entries.TryRemove(new KeyValuePair<string, Entry>(key, e)))
                {
                    Release(e);
                }
            }

            var excess = _entries.Count - Max;
            if (excess > 0)
            {
                var all = _entries.ToArray();
                Array.Sort(all, static (a, b) => Volatile.Read(ref a.Value.Accessed).CompareTo(Volatile.Read(ref b.Value.Accessed)));
                for (var i = 0; i < all.Length && excess > 0; i++)
                {
                    if (_entries.TryRemove(all[i]))
                    {
                        Release(all[i].Value);
                        excess--;
                    }
                }
            }
        }
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var (key, e) in _entries)
        {
            if (_entries.TryRemove(new KeyValuePair<string, Entry>(key, e)))
            {
                Release(e);
            }
        }
    }
}
