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

    public UpstreamRegistry(StateStore state)
    {
        _state = state;
    }

    /// <summary>State keys (peers, transports) this snapshot uses; the rest is dropped when it becomes current.</summary>
    public IReadOnlySet<string> LiveStateKeys => _liveStateKeys;

    public const string PeerStatePrefix = "upstream-peer|";

    /// <summary>Adds a group declared by an upstream block (the upstreams module does this before locations compile).</summary>
    public void AddExplicit(UpstreamGroup group) => _explicit[group.Name] = group;

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
