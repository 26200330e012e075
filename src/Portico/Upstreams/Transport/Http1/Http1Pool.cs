using System.Net.Sockets;

namespace Portico.Upstreams.Transport.Http1;

/// <summary>
/// The connections of Portico's HTTP/1 transport to one peer with one set of connection settings (nginx's
/// upstream keepalive cache, per peer instead of per group). Idle connections are kept while the settings
/// allow it: at most <c>keepalive</c> of them (the least recently used is closed beyond that), each closed
/// after <c>keepalive_timeout</c> idle, after <c>keepalive_requests</c> requests or once older than
/// <c>keepalive_time</c>; one the peer closed while idle is noticed and dropped before it is handed out.
/// <c>max_conns</c> bounds the connections in use. The lock is this pool's alone, held only to push or pop
/// the idle list, never across an await or a system call.
/// </summary>
public sealed class Http1Pool : IDisposable
{
    private readonly Lock _gate = new();
    private readonly List<Http1Connection> _idle = [];
    private readonly TimeProvider _time;
    private ITimer? _sweeper;
    private int _active;
    private int _open;
    private long _opened;
    private bool _disposed;

    public Http1Pool(UpstreamPeer peer, UpstreamConnectionOptions options, TimeProvider? time = null)
    {
        Peer = peer;
        Options = options;
        _time = time ?? TimeProvider.System;
        Connector = new UpstreamConnector(peer, options);
        MaxHeaderBytes = Math.Max(64, options.MaxHeaderBytes);
    }

    public UpstreamPeer Peer { get; }
    public UpstreamConnectionOptions Options { get; }
    internal UpstreamConnector Connector { get; }
    internal Http1ValueCache Values { get; } = new();
    internal TimeProvider Time => _time;
    internal int MaxHeaderBytes { get; }

    /// <summary>Upstream keepalive is on: connections may be reused.</summary>
    public bool KeepaliveEnabled => Options.KeepaliveTimeout is { } t && t > TimeSpan.Zero;

    /// <summary>Connections idle in the pool now.</summary>
    public int IdleCount
    {
        get
        {
            lock (_gate)
            {
                return _idle.Count;
            }
        }
    }

    /// <summary>Connections open now (idle and in use).</summary>
    public int OpenCount => Volatile.Read(ref _open);

    /// <summary>Connections in use by an exchange now.</summary>
    public int ActiveCount => Volatile.Read(ref _active);

    /// <summary>Connections opened since the pool was created.</summary>
    public long OpenedTotal => Interlocked.Read(ref _opened);

    public bool Disposed => Volatile.Read(ref _disposed);

    /// <summary>An exchange starts using a connection of this pool.</summary>
    internal void Enter() => Interlocked.Increment(ref _active);

    internal void Exit() => Interlocked.Decrement(ref _active);

    /// <summary>Idle for less than this, a pooled connection is not polled before it is reused.</summary>
    internal static readonly TimeSpan FreshIdle = TimeSpan.FromMilliseconds(50);

    /// <summary>The most recently used idle connection that is still good, or null.</summary>
    /// <param name="mustBeLive">Poll the connection whatever its idle time: for requests that cannot be sent
    /// again once they may have reached the origin (non-idempotent methods).</param>
    /// <param name="now">The attempt's start on <see cref="Time"/> (the clock is not read again).</param>
    internal Http1Connection? TakeIdle(bool mustBeLive, long now)
    {
        if (!KeepaliveEnabled)
        {
            return null;
        }

        while (true)
        {
            Http1Connection? c;
            lock (_gate)
            {
                if (_idle.Count == 0)
                {
                    return null;
                }

                c = _idle[^1];
                _idle.RemoveAt(_idle.Count - 1);
            }

            // The poll is a system call: an idempotent request takes a connection back in the pool for less
            // than the sweeper's shortest period without it (under load that is nearly every request). If its
            // peer closed it in that instant, no response arrives and the request goes again on a fresh one.
            var trusted = !mustBeLive && _time.GetElapsedTime(c.IdleSince, now) < FreshIdle;
            if (!Expired(c, now) && !(trusted ? c.IsClosed : c.PeerClosedWhileIdle()))
            {
                return c;
            }

            Close(c);
        }
    }

    /// <summary>The connection the next <see cref="TakeIdle"/> would consider, left in the pool (for tests).</summary>
    internal Http1Connection? PeekIdle()
    {
        lock (_gate)
        {
            return _idle.Count == 0 ? null : _idle[^1];
        }
    }

    /// <summary>Opens a new connection (connect timeout, proxy_bind, TLS as configured).</summary>
    internal async ValueTask<Http1Connection> OpenAsync(UpstreamRequest request, CancellationToken cancellationToken)
    {
        var (stream, socket) = await Connector.ConnectAsync(request, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _open);
        Interlocked.Increment(ref _opened);
        return new Http1Connection(this, socket, stream, _time.GetTimestamp());
    }

    /// <summary>Gives a connection back after an exchange: kept idle when it may serve another request, else closed.</summary>
    /// <param name="now">The end of the exchange on <see cref="Time"/> (the clock is not read again).</param>
    internal void Return(Http1Connection c, bool reusable, long now)
    {
        if (!reusable || !KeepaliveEnabled || c.Requests >= Options.KeepaliveRequests || _time.GetElapsedTime(c.Created, now) >= Options.KeepaliveTime)
        {
            Close(c);
            return;
        }

        c.IdleSince = now;
        Http1Connection? evicted = null;
        lock (_gate)
        {
            if (_disposed)
            {
                evicted = c;
            }
            else
            {
                if (Options.KeepaliveConnections > 0 && _idle.Count >= Options.KeepaliveConnections)
                {
                    evicted = _idle[0];
                    _idle.RemoveAt(0);
                }

                _idle.Add(c);
                _sweeper ??= StartSweeper();
            }
        }

        if (evicted is not null)
        {
            Close(evicted);
        }
    }

    internal void Close(Http1Connection c)
    {
        if (c.Close())
        {
            Interlocked.Decrement(ref _open);
        }
    }

    private bool Expired(Http1Connection c, long now) =>
        Options.KeepaliveTimeout is not { } timeout || _time.GetElapsedTime(c.IdleSince, now) >= timeout;

    private ITimer StartSweeper()
    {
        var timeout = Options.KeepaliveTimeout!.Value;
        var period = TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(5).Ticks));
        return _time.CreateTimer(static s => ((Http1Pool)s!).Sweep(), this, period, period);
    }

    /// <summary>Closes idle connections past keepalive_timeout and those the peer closed (nginx's keepalive close handler).</summary>
    internal void Sweep()
    {
        var now = _time.GetTimestamp();
        Http1Connection[] idle;
        lock (_gate)
        {
            if (_idle.Count == 0)
            {
                return;
            }

            idle = [.. _idle];
        }

        List<Http1Connection>? closing = null;
        foreach (var c in idle)
        {
            if (Expired(c, now) || c.PeerClosedWhileIdle())
            {
                (closing ??= []).Add(c);
            }
        }

        if (closing is null)
        {
            return;
        }

        for (var i = closing.Count - 1; i >= 0; i--)
        {
            lock (_gate)
            {
                // Taken by a request meanwhile: that request checks it again itself.
                if (!_idle.Remove(closing[i]))
                {
                    closing.RemoveAt(i);
                }
            }
        }

        foreach (var c in closing)
        {
            Close(c);
        }
    }

    /// <summary>Closes the idle connections; connections in use are closed when their exchange ends.</summary>
    public void Dispose()
    {
        Http1Connection[] idle;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            idle = [.. _idle];
            _idle.Clear();
            _sweeper?.Dispose();
            _sweeper = null;
        }

        foreach (var c in idle)
        {
            Close(c);
        }
    }

    /// <summary>SelectRead on an idle socket: data or end of stream means the connection cannot be reused.</summary>
    internal static bool Readable(Socket socket)
    {
        try
        {
            return socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }
}
