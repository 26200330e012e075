using System.Net;
using DnsClient;
using DnsClient.Protocol;
using Portico.Compilation;
using Portico.Config.Syntax;

namespace Portico.Upstreams.Resolution;

/// <summary>One DNS answer: the addresses and how long they stay valid, or the error.</summary>
public readonly record struct DnsResult(IReadOnlyList<IPAddress> Addresses, TimeSpan Ttl, string? Error, bool NotFound);

/// <summary>Asks DNS for a name's addresses (injected so tests can answer without a server).</summary>
public interface INameResolver
{
    Task<DnsResult> ResolveAsync(string host, bool ipv4, bool ipv6, CancellationToken cancellationToken);
}

/// <summary>DnsClient against the configured resolver addresses, TTL-aware, without its own cache.</summary>
public sealed class DnsNameResolver : INameResolver
{
    private readonly LookupClient _client;

    public DnsNameResolver(IReadOnlyList<IPEndPoint> servers, TimeSpan timeout)
    {
        _client = new LookupClient(new LookupClientOptions([.. servers])
        {
            UseCache = false,
            Timeout = timeout,
            Retries = 0,
            ThrowDnsErrors = false,
            ContinueOnDnsError = false,
            UseTcpFallback = true,
        });
    }

    public async Task<DnsResult> ResolveAsync(string host, bool ipv4, bool ipv6, CancellationToken cancellationToken)
    {
        var addresses = new List<IPAddress>();
        var ttl = int.MaxValue;
        var types = new List<QueryType>(2);
        if (ipv4)
        {
            types.Add(QueryType.A);
        }

        if (ipv6)
        {
            types.Add(QueryType.AAAA);
        }

        foreach (var type in types)
        {
            IDnsQueryResponse response;
            try
            {
                response = await _client.QueryAsync(host, type, QueryClass.IN, cancellationToken).ConfigureAwait(false);
            }
            catch (DnsResponseException e)
            {
                return new DnsResult([], TimeSpan.Zero, e.Code == DnsResponseCode.ConnectionTimeout ? "110: Operation timed out" : e.DnsError, false);
            }

            if (response.HasError)
            {
                var notFound = response.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain;
                return new DnsResult([], TimeSpan.Zero, notFound ? "3: Host not found" : response.ErrorMessage, notFound);
            }

            foreach (var record in response.Answers)
            {
                switch (record)
                {
                    case ARecord a:
                        addresses.Add(a.Address);
                        ttl = Math.Min(ttl, a.TimeToLive);
                        break;
                    case AaaaRecord aaaa:
                        addresses.Add(aaaa.Address);
                        ttl = Math.Min(ttl, aaaa.TimeToLive);
                        break;
                }
            }
        }

        if (addresses.Count == 0)
        {
            return new DnsResult([], TimeSpan.Zero, "3: Host not found", true);
        }

        return new DnsResult(addresses, TimeSpan.FromSeconds(ttl == int.MaxValue ? 0 : ttl), null, false);
    }
}

/// <summary>
/// Re-resolves the "resolve" servers of one upstream group on their records' TTL (or valid=), and
/// replaces the group's peers when the answer changes, without a reload. Peers that stay keep their state.
/// </summary>
public sealed class UpstreamResolver : IBackgroundWork
{
    private readonly UpstreamRegistry _registry;
    private readonly UpstreamGroup _group;
    private readonly ResolverSpec _spec;
    private readonly INameResolver _resolver;

    public UpstreamResolver(UpstreamRegistry registry, UpstreamGroup group, ResolverSpec spec, TimeSpan timeout, INameResolver? resolver = null)
    {
        _registry = registry;
        _group = group;
        _spec = spec;
        _resolver = resolver ?? new DnsNameResolver(spec.Servers, timeout);
    }

    /// <summary>Tests may replace how names are looked up (the default queries the configured servers).</summary>
    public static Func<ResolverSpec, TimeSpan, INameResolver>? Factory { get; set; }

    public void Start(RuntimeSnapshot snapshot, CancellationToken stop) => _ = Task.Run(() => RunAsync(snapshot, stop), CancellationToken.None);

    private async Task RunAsync(RuntimeSnapshot snapshot, CancellationToken stop)
    {
        var time = snapshot.Services.Time;
        while (!stop.IsCancellationRequested)
        {
            var next = await RefreshAsync(snapshot.ErrorLog, stop).ConfigureAwait(false);
            try
            {
                await Task.Delay(next, time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Resolves every "resolve" server once; returns when to ask again.</summary>
    public async Task<TimeSpan> RefreshAsync(Logging.ErrorLog? log, CancellationToken stop)
    {
        var next = TimeSpan.FromHours(1);
        var spec = _group.Spec!;
        foreach (var server in spec.Servers)
        {
            if (!server.Resolve || server.UnixPath is not null || IPAddress.TryParse(server.Host.Trim('[', ']'), out _))
            {
                continue;
            }

            DnsResult result;
            try
            {
                result = await _resolver.ResolveAsync(server.Host, _spec.Ipv4, _spec.Ipv6, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return TimeSpan.Zero;
            }

            if (result.Error is not null)
            {
                log?.Write(LogLevel.Error, $"{server.Host} could not be resolved ({result.Error})");
                next = Min(next, TimeSpan.FromSeconds(1));
                if (!result.NotFound)
                {
                    continue;
                }
            }
            else
            {
                var ttl = _spec.Valid ?? result.Ttl;
                next = Min(next, ttl < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : ttl);
            }

            Apply(server, result.Addresses);
        }

        return next;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>Publishes the peers of one server as the answer lists them; unchanged peers stay the same objects.</summary>
    public void Apply(ServerSpec server, IReadOnlyList<IPAddress> addresses)
    {
        var current = _group.Current;
        var kept = new List<UpstreamPeer>(current.All.Count + addresses.Count);
        var existing = new Dictionary<string, UpstreamPeer>(StringComparer.Ordinal);
        foreach (var p in current.All)
        {
            if (p.Server == server.Address && p.Resolve)
            {
                existing[p.Name] = p;
            }
            else
            {
                kept.Add(p);
            }
        }

        var changed = false;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var address in addresses)
        {
            var endPoint = new IPEndPoint(address, server.Port);
            var name = UpstreamPeer.NameOf(endPoint);
            if (!seen.Add(name))
            {
                continue;
            }

            if (existing.Remove(name, out var same))
            {
                kept.Add(same);
                continue;
            }

            changed = true;
            kept.Add(_registry.RuntimePeer(_group.Name, _group.State!, endPoint, state => new UpstreamPeer(endPoint, name, state)
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
                Resolve = true,
            }));
        }

        changed |= existing.Count > 0;
        _registry.RememberAnswer(_group.Name, server.Address, [.. addresses]);
        if (changed)
        {
            kept.Sort((a, b) => a.State.Id.CompareTo(b.State.Id));
            if (_group.HealthChecked)
            {
                foreach (var p in kept)
                {
                    foreach (var check in _group.Spec!.HealthChecks)
                    {
                        if (check.Mandatory)
                        {
                            p.State.StartChecking();
                        }
                    }
                }
            }

            _group.Publish(new PeerSet(kept, current.Resolving));
        }
    }
}
