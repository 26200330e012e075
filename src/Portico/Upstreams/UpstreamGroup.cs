using System.Net;
using System.Net.Sockets;

namespace Portico.Upstreams;

/// <summary>
/// One server of an upstream group: an address to connect to, the name nginx shows for it
/// ("127.0.0.1:8080", "[::1]:80", "unix:/run/app.sock") and its live state, which outlives reloads
/// (kept by identity in the host's state store).
/// </summary>
public sealed class UpstreamPeer
{
    public UpstreamPeer(EndPoint endPoint, string name, PeerState state)
    {
        EndPoint = endPoint;
        Name = name;
        State = state;
    }

    /// <summary>An <see cref="IPEndPoint"/> or a <see cref="UnixDomainSocketEndPoint"/>.</summary>
    public EndPoint EndPoint { get; }

    /// <summary>nginx's peer name: $upstream_addr and the "upstream:" part of error lines.</summary>
    public string Name { get; }

    public bool IsUnix => EndPoint is UnixDomainSocketEndPoint;

    /// <summary>Counters and health that survive reloads while the peer stays configured.</summary>
    public PeerState State { get; }

    /// <summary>The text of an endpoint as nginx prints peer names.</summary>
    public static string NameOf(EndPoint endPoint) => endPoint switch
    {
        IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"[{ip.Address}]:{ip.Port}",
        IPEndPoint ip => $"{ip.Address}:{ip.Port}",
        UnixDomainSocketEndPoint unix => "unix:" + unix,
        _ => endPoint.ToString() ?? string.Empty,
    };

    public override string ToString() => Name;
}

/// <summary>
/// A peer's state that belongs to the peer, not to one configuration: request and failure counters
/// (Interlocked). Passive health (max_fails, fail_timeout) and balancers build on it.
/// </summary>
public sealed class PeerState
{
    private long _requests;
    private long _fails;
    private long _active;

    public long Requests => Interlocked.Read(ref _requests);
    public long Fails => Interlocked.Read(ref _fails);
    public long Active => Interlocked.Read(ref _active);

    public void Begin()
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Increment(ref _active);
    }

    public void End(UpstreamFailure failure)
    {
        Interlocked.Decrement(ref _active);
        if (failure != UpstreamFailure.None && (failure & (UpstreamFailure.Http403 | UpstreamFailure.Http404)) == 0)
        {
            Interlocked.Increment(ref _fails);
        }
    }
}

/// <summary>
/// A named set of peers the proxy connects to. proxy_pass to a host without an upstream block makes an
/// implicit group whose peers are the addresses the name resolved to (once, at configuration time).
/// </summary>
public sealed class UpstreamGroup
{
    public UpstreamGroup(string name, int port, bool isImplicit, IReadOnlyList<UpstreamPeer> peers, IBalancer balancer)
    {
        Name = name;
        Port = port;
        Implicit = isImplicit;
        Peers = peers;
        Balancer = balancer;
    }

    /// <summary>The host as written in proxy_pass, or the upstream block's name.</summary>
    public string Name { get; }

    /// <summary>The port of an implicit group (0 for upstream blocks, which name no port).</summary>
    public int Port { get; }

    public bool Implicit { get; }
    public IReadOnlyList<UpstreamPeer> Peers { get; }
    public IBalancer Balancer { get; }

    public override string ToString() => Name;
}

/// <summary>
/// A balancing method: hands out, per request, an iterator over the peers to try. An iterator never yields
/// a peer twice, so "next upstream" never re-picks a peer that already failed for this request.
/// </summary>
public interface IBalancer
{
    PeerIterator Begin(Pipeline.RequestContext r);
}

/// <summary>The peers one request may try, in the order the balancer chose.</summary>
public abstract class PeerIterator
{
    /// <summary>How many peers are left to try (nginx's peer.tries).</summary>
    public abstract int Remaining { get; }

    /// <summary>The next peer to try; false when every peer has been tried.</summary>
    public abstract bool TryNext(out UpstreamPeer peer);

    /// <summary>Reports how the attempt at the peer ended (balancers and passive health read it).</summary>
    public virtual void Report(UpstreamPeer peer, UpstreamFailure failure) => peer.State.End(failure);
}

/// <summary>
/// Round robin over equal peers (nginx's implicit groups: weight 1 each): every request starts one peer
/// further than the previous one and then tries the others in order.
/// </summary>
public sealed class RoundRobinBalancer : IBalancer
{
    private readonly UpstreamPeer[] _peers;
    private long _next = -1;

    public RoundRobinBalancer(IReadOnlyList<UpstreamPeer> peers)
    {
        _peers = [.. peers];
    }

    public PeerIterator Begin(Pipeline.RequestContext r)
    {
        var start = _peers.Length == 1 ? 0 : (int)((ulong)Interlocked.Increment(ref _next) % (ulong)_peers.Length);
        return new Iterator(_peers, start);
    }

    private sealed class Iterator(UpstreamPeer[] peers, int start) : PeerIterator
    {
        private int _taken;

        public override int Remaining => peers.Length - _taken;

        public override bool TryNext(out UpstreamPeer peer)
        {
            if (_taken >= peers.Length)
            {
                peer = null!;
                return false;
            }

            peer = peers[(start + _taken) % peers.Length];
            _taken++;
            peer.State.Begin();
            return true;
        }
    }
}
