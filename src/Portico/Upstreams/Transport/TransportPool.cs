using System.Diagnostics;
using System.Net;
using Portico.Compilation;

namespace Portico.Upstreams.Transport;

/// <summary>
/// One connection pool to a peer: a SocketsHttpHandler (behind the exchange handler) and its invoker.
/// Kept in the host's state store by identity, so requests and reloads share it while the peer and its
/// settings stay the same. When a reload drops it, it is disposed once the last request using it ends.
/// </summary>
public sealed class TransportHandle : IDisposable
{
    private readonly SocketsHttpHandler _sockets;
    private readonly UpstreamPeer _peer;
    private readonly UpstreamConnectionOptions _options;
    private Http1.Http1Pool? _http1;
    private int _users;
    private int _retired;
    private int _disposed;

    internal TransportHandle(UpstreamPeer peer, UpstreamConnectionOptions options)
    {
        _peer = peer;
        _options = options;
        var connector = new UpstreamConnector(peer, options);
        _sockets = new SocketsHttpHandler
        {
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = Timeout.InfiniteTimeSpan,
            ConnectCallback = connector.ConnectAsync,
            // nginx adds no tracing headers of its own.
            ActivityHeadersPropagator = DistributedContextPropagator.CreateNoOutputPropagator(),
            // Without upstream keepalive nginx closes every upstream connection after its request; a zero
            // lifetime is what makes SocketsHttpHandler close it as soon as the response is read.
            PooledConnectionIdleTimeout = options.KeepaliveTimeout ?? TimeSpan.Zero,
            // keepalive_time: a connection is not reused once it is that old.
            PooledConnectionLifetime = options.KeepaliveTimeout is null ? TimeSpan.Zero : options.KeepaliveTime,
            MaxResponseHeadersLength = Math.Max(1, (options.MaxHeaderBytes + 1023) / 1024),
            ResponseDrainTimeout = TimeSpan.Zero,
        };
        Invoker = new HttpMessageInvoker(new ExchangeHandler(_sockets), disposeHandler: true);
    }

    public HttpMessageInvoker Invoker { get; }

    /// <summary>The connections of Portico's own HTTP/1 transport to this peer with these settings (made on first use).</summary>
    public Http1.Http1Pool Http1 => Volatile.Read(ref _http1) ?? CreateHttp1();

    private Http1.Http1Pool CreateHttp1()
    {
        var pool = new Http1.Http1Pool(_peer, _options);
        var existing = Interlocked.CompareExchange(ref _http1, pool, null);
        if (existing is not null)
        {
            pool.Dispose();
            return existing;
        }

        if (Closed)
        {
            pool.Dispose();
        }

        return pool;
    }

    /// <summary>The pool was closed (a reload dropped it and no request used it any more).</summary>
    public bool Closed => Volatile.Read(ref _disposed) == 1;

    /// <summary>A request starts using the pool; returns how many use it now (in flight, this one included).</summary>
    public int Acquire() => Interlocked.Increment(ref _users);

    /// <summary>Requests in flight on this pool.</summary>
    public int InFlight => Volatile.Read(ref _users);

    public void Release()
    {
        if (Interlocked.Decrement(ref _users) == 0 && Volatile.Read(ref _retired) == 1)
        {
            DisposeNow();
        }
    }

    /// <summary>The configuration no longer uses this pool: dispose when no request holds it.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _retired, 1);
        if (Volatile.Read(ref _users) == 0)
        {
            DisposeNow();
        }
    }

    private void DisposeNow()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Invoker.Dispose();
            Volatile.Read(ref _http1)?.Dispose();
        }
    }
}

/// <summary>Finds (or creates) the connection pool for a peer and connection settings.</summary>
public static class TransportPool
{
    public const string StatePrefix = "upstream-transport|";

    public static string KeyOf(UpstreamPeer peer, UpstreamConnectionOptions options) => StatePrefix + peer.Name + "|" + options.Signature;

    /// <summary>At compile time: the pool for a peer, marked live for the snapshot being built.</summary>
    public static TransportHandle Get(StateStore store, UpstreamRegistry registry, UpstreamPeer peer, UpstreamConnectionOptions options)
    {
        var key = KeyOf(peer, options);
        registry.MarkLive(key);
        return store.GetOrAdd(key, () => new TransportHandle(peer, options));
    }
}
