using System.Collections.Concurrent;
using Portico.Compilation;

namespace Portico.Upstreams.Transport;

/// <summary>
/// Connection pools for peers known only at request time (proxy_pass with variables naming an address).
/// Lock-free lookups; a pool is created once per peer and settings (the host's state store is only
/// touched then), and dropped with the configuration that created it.
/// </summary>
public sealed class RuntimePools
{
    private readonly ConcurrentDictionary<string, TransportHandle> _pools = new(StringComparer.Ordinal);
    private readonly StateStore _store;

    public RuntimePools(StateStore store)
    {
        _store = store;
    }

    public TransportHandle Get(UpstreamPeer peer, UpstreamConnectionOptions options)
    {
        var key = TransportPool.KeyOf(peer, options);
        if (_pools.TryGetValue(key, out var handle))
        {
            return handle;
        }

        return _pools.GetOrAdd(key, k => _store.GetOrAdd(k, () => new TransportHandle(peer, options)));
    }
}
