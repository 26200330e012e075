using System.Net;
using System.Net.Sockets;

namespace Portico.Upstreams;

/// <summary>
/// One server of an upstream group as the current configuration (or the API, or DNS) describes it: the
/// address, nginx's peer name ("127.0.0.1:8080", "[::1]:80", "unix:/run/app.sock"), the server
/// parameters, and its live <see cref="PeerState"/>, which is kept by identity (upstream name + address)
/// and so outlives reloads and parameter changes. A peer object never changes: the API publishes a new one
/// with the same state.
/// </summary>
public sealed class UpstreamPeer
{
    public UpstreamPeer(EndPoint endPoint, string name, PeerState state)
    {
        EndPoint = endPoint;
        Name = name;
        State = state;
        Server = name;
    }

    /// <summary>An <see cref="IPEndPoint"/> or a <see cref="UnixDomainSocketEndPoint"/>.</summary>
    public EndPoint EndPoint { get; }

    /// <summary>nginx's peer name: $upstream_addr and the "upstream:" part of error lines.</summary>
    public string Name { get; }

    public bool IsUnix => EndPoint is UnixDomainSocketEndPoint;

    /// <summary>Counters and health that survive reloads while the peer stays configured.</summary>
    public PeerState State { get; }

    /// <summary>The server address as written in the configuration ("app1.internal:3000"); the API's "server".</summary>
    public string Server { get; init; }

    public int Weight { get; init; } = 1;

    /// <summary>max_conns (0: unlimited).</summary>
    public int MaxConns { get; init; }

    /// <summary>max_fails (0: passive health off).</summary>
    public int MaxFails { get; init; } = 1;

    public TimeSpan FailTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public bool Backup { get; init; }

    /// <summary>"down" in the configuration (the API may override it, see <see cref="PeerState.Admin"/>).</summary>
    public bool ConfigDown { get; init; }

    /// <summary>"drain" in the configuration.</summary>
    public bool ConfigDrain { get; init; }

    public TimeSpan SlowStart { get; init; }

    /// <summary>The server was declared with "resolve": its addresses follow DNS.</summary>
    public bool Resolve { get; init; }

    /// <summary>Whether the peer takes no requests: down in the configuration or through the API.</summary>
    public bool IsDown => State.Admin switch
    {
        AdminState.Down => true,
        AdminState.Up or AdminState.Drain => false,
        _ => ConfigDown,
    };

    /// <summary>Draining: no new requests, the running ones finish.</summary>
    public bool IsDraining => State.Admin switch
    {
        AdminState.Drain => true,
        AdminState.Up or AdminState.Down => false,
        _ => ConfigDrain && !ConfigDown,
    };

    /// <summary>The same peer with other parameters (the API's PATCH); the state stays.</summary>
    public UpstreamPeer With(int? weight = null, int? maxConns = null, int? maxFails = null, TimeSpan? failTimeout = null, bool? backup = null, TimeSpan? slowStart = null) =>
        new(EndPoint, Name, State)
        {
            Server = Server,
            Weight = weight ?? Weight,
            MaxConns = maxConns ?? MaxConns,
            MaxFails = maxFails ?? MaxFails,
            FailTimeout = failTimeout ?? FailTimeout,
            Backup = backup ?? Backup,
            ConfigDown = ConfigDown,
            ConfigDrain = ConfigDrain,
            SlowStart = slowStart ?? SlowStart,
            Resolve = Resolve,
        };

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
/// A named set of peers the proxy connects to: an upstream block, or the implicit group proxy_pass creates
/// for a host. The peers are a copy-on-write <see cref="PeerSet"/> that the API and the resolver replace
/// without a reload; balancers read the current set once per request.
/// </summary>
public sealed class UpstreamGroup : IPeerSource
{
    private PeerSet _set;

    public UpstreamGroup(string name, int port, bool isImplicit, IReadOnlyList<UpstreamPeer> peers, IBalancer balancer)
    {
        Name = name;
        Port = port;
        Implicit = isImplicit;
        _set = new PeerSet(peers, false);
        Balancer = balancer;
    }

    /// <summary>An upstream block's group; the balancer is created from it (it reads the group's peers).</summary>
    public UpstreamGroup(string name, UpstreamBlockSpec spec, PeerSet peers, Func<UpstreamGroup, IBalancer> balancer)
    {
        Name = name;
        Spec = spec;
        _set = peers;
        Balancer = balancer(this);
    }

    /// <summary>The host as written in proxy_pass, or the upstream block's name.</summary>
    public string Name { get; }

    /// <summary>The port of an implicit group (0 for upstream blocks, which name no port).</summary>
    public int Port { get; }

    public bool Implicit { get; }

    /// <summary>The upstream block, null for implicit groups.</summary>
    public UpstreamBlockSpec? Spec { get; }

    /// <summary>Every peer of the current set, primaries then backups.</summary>
    public IReadOnlyList<UpstreamPeer> Peers => Volatile.Read(ref _set).All;

    public PeerSet Current => Volatile.Read(ref _set);

    public IBalancer Balancer { get; }

    /// <summary>Runtime state of the group kept by identity (peer ids, the queue, the health checker's view).</summary>
    public GroupState? State { get; init; }

    /// <summary>Active health checks watch this group: peers start "checking" when a check is mandatory.</summary>
    public bool HealthChecked { get; set; }

    /// <summary>Replaces the peers (API changes, DNS answers); requests already running keep their iterator.</summary>
    public void Publish(PeerSet set) => Volatile.Write(ref _set, set);

    public override string ToString() => Name;
}

/// <summary>Where a balancer reads the peers of the moment.</summary>
public interface IPeerSource
{
    PeerSet Current { get; }
}

/// <summary>A fixed list of peers (implicit groups, tests).</summary>
public sealed class StaticPeers : IPeerSource
{
    public StaticPeers(IReadOnlyList<UpstreamPeer> peers, bool single = false)
    {
        Current = new PeerSet(peers, single);
    }

    public PeerSet Current { get; }
}

/// <summary>
/// A balancing method: hands out, per request, an iterator over the peers to try. An iterator never yields
/// a peer twice, so "next upstream" never re-picks a peer that already failed for this request.
/// </summary>
public interface IBalancer
{
    PeerIterator Begin(Pipeline.RequestContext r);

    /// <summary>As <see cref="Begin(Pipeline.RequestContext)"/>, reusing <paramref name="spare"/> where the method can.</summary>
    PeerIterator Begin(Pipeline.RequestContext r, PeerIterator? spare);
}
