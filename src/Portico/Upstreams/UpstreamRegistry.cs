using System.Net;
using System.Net.Sockets;
using Portico.Compilation;
using Portico.Config.Syntax;

namespace Portico.Upstreams;

/// <summary>
/// The upstream groups of one snapshot (nginx's upstream main conf): groups declared by upstream blocks
/// and the implicit groups proxy_pass creates for a host:port. Built while compiling; read-only afterwards.
/// </summary>
public sealed class UpstreamRegistry
{
    private readonly Dictionary<string, UpstreamGroup> _explicit = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, UpstreamGroup> _implicit = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _liveStateKeys = new(StringComparer.Ordinal);
    private readonly StateStore _state;
    private readonly List<IBackgroundWork> _background = [];
    private CancellationTokenSource? _stop;

    public UpstreamRegistry(StateStore state, TimeProvider? time = null)
    {
        _state = state;
        Time = time ?? TimeProvider.System;
    }

    public TimeProvider Time { get; }

    public StateStore State => _state;

    /// <summary>Explicit groups by name (the API's upstreams).</summary>
    public IReadOnlyDictionary<string, UpstreamGroup> Explicit => _explicit;

    public const string GroupStatePrefix = "upstream-group|";

    public const string DnsStatePrefix = "upstream-dns|";

    /// <summary>The state of an upstream block kept by name (peer ids, queue).</summary>
    public GroupState GroupStateOf(string name)
    {
        var key = GroupStatePrefix + name;
        _liveStateKeys.Add(key);
        return _state.GetOrAdd(key, () => new GroupState());
    }

    /// <summary>A peer of an upstream block: its state by identity, its parameters from the server line.</summary>
    public UpstreamPeer ConfiguredPeer(string group, GroupState groupState, EndPoint endPoint, ServerSpec server)
    {
        var name = UpstreamPeer.NameOf(endPoint);
        var key = PeerStatePrefix + group + "|" + name;
        _liveStateKeys.Add(key);
        var state = _state.GetOrAdd(key, () => new PeerState(groupState.NextId()));
        return new UpstreamPeer(endPoint, name, state)
        {
            Server = server.Address,
            Weight = server.Weight,
            MaxConns = server.MaxConns,
            MaxFails = server.MaxFails,
            FailTimeout = server.FailTimeout,
            Backup = server.Backup,
            ConfigDown = server.Down,
            ConfigDrain = server.Drain,
            SlowStart = server.SlowStart,
            Resolve = server.Resolve,
        };
    }

    /// <summary>A peer added at run time (API, DNS): the same identity rules; not marked live for reloads.</summary>
    public UpstreamPeer RuntimePeer(string group, GroupState groupState, EndPoint endPoint, Func<PeerState, UpstreamPeer> create)
    {
        var key = PeerStatePrefix + group + "|" + UpstreamPeer.NameOf(endPoint);
        return create(_state.GetOrAdd(key, () => new PeerState(groupState.NextId())));
    }

    /// <summary>The addresses a "resolve" server had at the last answer (kept across reloads).</summary>
    public IReadOnlyList<IPAddress> CachedAnswer(string group, string server)
    {
        var key = DnsStatePrefix + group + "|" + server;
        _liveStateKeys.Add(key);
        return _state.TryGet<DnsAnswer>(key, out var answer) ? answer!.Addresses : [];
    }

    public void RememberAnswer(string group, string server, IReadOnlyList<IPAddress> addresses) =>
        _state.GetOrAdd(DnsStatePrefix + group + "|" + server, () => new DnsAnswer()).Addresses = addresses;

    /// <summary>Background work of this snapshot (health checks, resolvers), started when it becomes current.</summary>
    public void AddBackground(IBackgroundWork work) => _background.Add(work);

    public IReadOnlyList<IBackgroundWork> Background => _background;

    public void Activate(RuntimeSnapshot snapshot)
    {
        // Groups no health check watches any more take requests again.
        foreach (var group in _explicit.Values)
        {
            if (!group.HealthChecked)
            {
                foreach (var peer in group.Peers)
                {
                    if (peer.State.Health != HealthState.Healthy)
                    {
                        peer.State.StopChecking();
                    }
                }
            }
        }

        _stop = new CancellationTokenSource();
        foreach (var work in _background)
        {
            work.Start(snapshot, _stop.Token);
        }
    }

    public void Deactivate()
    {
        if (Interlocked.Exchange(ref _stop, null) is { } stop)
        {
            stop.Cancel();
            stop.Dispose();
        }
    }

    /// <summary>State keys (peers, transports) this snapshot uses; the rest is dropped when it becomes current.</summary>
    public IReadOnlySet<string> LiveStateKeys => _liveStateKeys;

    public const string PeerStatePrefix = "upstream-peer|";

    /// <summary>Adds a group declared by an upstream block (the upstreams module does this before locations compile).</summary>
    public void AddExplicit(UpstreamGroup group) => _explicit[group.Name] = group;

    /// <summary>An upstream block by name.</summary>
    public UpstreamGroup? FindExplicit(string name) => _explicit.GetValueOrDefault(name);

    public IEnumerable<UpstreamGroup> Groups => _explicit.Values.Concat(_implicit.Values);

    /// <summary>
    /// The group for proxy_pass to host[:port] (ngx_http_upstream_add): an upstream block of that name,
    /// otherwise an implicit group whose peers are the addresses the host resolves to now.
    /// Throws nginx's [emerg] when the name does not resolve.
    /// </summary>
    public UpstreamGroup ForProxyPass(string host, int port, bool noPort, string file, int line)
    {
        if (_explicit.TryGetValue(host, out var declared))
        {
            if (!noPort)
            {
                throw new ConfigException($"upstream \"{host}\" may not have port {port}", file, line);
            }

            return declared;
        }

        var key = host + ":" + port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (_implicit.TryGetValue(key, out var existing))
        {
            return existing;
        }

        var addresses = ResolveHost(host) ?? throw new ConfigException($"host not found in upstream \"{host}\"", file, line);
        var peers = new List<UpstreamPeer>(addresses.Count);
        foreach (var address in addresses)
        {
            peers.Add(Peer(host, new IPEndPoint(address, port)));
        }

        var group = new UpstreamGroup(host, port, isImplicit: true, peers, new RoundRobinBalancer(peers));
        _implicit.Add(key, group);
        return group;
    }

    /// <summary>The implicit group of a unix socket proxy_pass ("unix:/path").</summary>
    public UpstreamGroup ForUnixSocket(string path)
    {
        var key = "unix:" + path;
        if (_implicit.TryGetValue(key, out var existing))
        {
            return existing;
        }

        var peers = new[] { Peer(key, new UnixDomainSocketEndPoint(path)) };
        var group = new UpstreamGroup(key, 0, isImplicit: true, peers, new RoundRobinBalancer(peers));
        _implicit.Add(key, group);
        return group;
    }

    /// <summary>
    /// Finds a group at request time for proxy_pass with variables (ngx_http_upstream_init_request): an
    /// upstream block by name (without port), or an implicit group of the same host and port.
    /// </summary>
    public UpstreamGroup? Find(string host, int port, bool noPort)
    {
        if (_explicit.TryGetValue(host, out var declared) && noPort)
        {
            return declared;
        }

        return _implicit.TryGetValue(host + ":" + port.ToString(System.Globalization.CultureInfo.InvariantCulture), out var g) ? g : null;
    }

    /// <summary>A peer with its state looked up by identity, so counters survive reloads.</summary>
    public UpstreamPeer Peer(string group, EndPoint endPoint)
    {
        var name = UpstreamPeer.NameOf(endPoint);
        var key = PeerStatePrefix + group + "|" + name;
        _liveStateKeys.Add(key);
        return new UpstreamPeer(endPoint, name, _state.GetOrAdd(key, () => new PeerState()));
    }

    /// <summary>The DNS answer of one "resolve" server, kept by identity across reloads.</summary>
    public sealed class DnsAnswer
    {
        public IReadOnlyList<IPAddress> Addresses { get; set; } = [];
    }

    /// <summary>Remembers a state key this snapshot uses (transports register theirs).</summary>
    public void MarkLive(string key) => _liveStateKeys.Add(key);

    /// <summary>Names answered without the system resolver (tests give a name several addresses with it).</summary>
    internal static readonly System.Collections.Concurrent.ConcurrentDictionary<string, IPAddress[]> StaticHosts = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>ngx_inet_resolve_host: an address literal, or the system resolver's answer (all addresses).</summary>
    public static List<IPAddress>? ResolveHost(string host)
    {
        if (StaticHosts.TryGetValue(host, out var known))
        {
            return [.. known];
        }

        var literal = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        if (IPAddress.TryParse(literal, out var ip))
        {
            return [ip];
        }

        try
        {
            var result = new List<IPAddress>();
#pragma warning disable RS0030 // configuration time (snapshot compilation), never the request path; nginx resolves here too
            foreach (var a in Dns.GetHostAddresses(host))
#pragma warning restore RS0030
            {
                var address = a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;
                if (!result.Contains(address))
                {
                    result.Add(address);
                }
            }

            return result.Count > 0 ? result : null;
        }
        catch (SocketException)
        {
            return null;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}

/// <summary>Work a snapshot runs in the background while it is current (health checks, DNS re-resolution).</summary>
public interface IBackgroundWork
{
    void Start(RuntimeSnapshot snapshot, CancellationToken stop);
}
