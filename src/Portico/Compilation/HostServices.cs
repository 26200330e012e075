using Portico.Logging;

namespace Portico.Compilation;

/// <summary>
/// What outlives a configuration generation: the log writer, state keyed by identity (peer health,
/// connection pools, cache contents, limit buckets), time, randomness and the host's service provider.
/// </summary>
public sealed class HostServices
{
    public HostServices(LogWriter logWriter, TimeProvider time, IServiceProvider services)
    {
        LogWriter = logWriter;
        Time = time;
        Services = services;
    }

    public LogWriter LogWriter { get; }
    public TimeProvider Time { get; }
    public IServiceProvider Services { get; }
    public StateStore State { get; } = new();
}

/// <summary>
/// State that belongs to something that may survive a reload, keyed by that thing's identity
/// ("upstream backend 127.0.0.1:8080", "zone api_cache"), not by configuration objects.
/// </summary>
public sealed class StateStore
{
    private readonly Dictionary<string, object> _items = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    public T GetOrAdd<T>(string key, Func<T> factory) where T : class
    {
        lock (_gate)
        {
            if (_items.TryGetValue(key, out var existing) && existing is T typed)
            {
                return typed;
            }

            var created = factory();
            _items[key] = created;
            return created;
        }
    }

    public bool TryGet<T>(string key, out T? value) where T : class
    {
        lock (_gate)
        {
            if (_items.TryGetValue(key, out var v) && v is T t)
            {
                value = t;
                return true;
            }
        }

        value = null;
        return false;
    }

    /// <summary>Drops entries under a prefix whose keys the newest configuration no longer uses.</summary>
    public void Retain(string prefix, IReadOnlySet<string> live)
    {
        lock (_gate)
        {
            foreach (var key in _items.Keys.ToList())
            {
                if (key.StartsWith(prefix, StringComparison.Ordinal) && !live.Contains(key))
                {
                    if (_items[key] is IDisposable d)
                    {
                        d.Dispose();
                    }

                    _items.Remove(key);
                }
            }
        }
    }
}
