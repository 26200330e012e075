using System.Net;
using System.Net.Sockets;
using Portico.Compilation;
using Portico.Config.Syntax;
using Portico.Upstreams.Resolution;

namespace Portico.Upstreams;

/// <summary>Turns an upstream block into a group: peers (with state by identity), balancer, queue.</summary>
internal static class UpstreamBuilder
{
    public static UpstreamGroup Build(SnapshotBuilder snapshot, UpstreamRegistry registry, UpstreamBlockSpec spec, ResolverSettings httpResolver)
    {
        var groupState = registry.GroupStateOf(spec.Name);
        var peers = new List<UpstreamPeer>();
        var resolving = false;
        foreach (var server in spec.Servers)
        {
            if (server.UnixPath is { } path)
            {
                peers.Add(registry.ConfiguredPeer(spec.Name, groupState, new UnixDomainSocketEndPoint(path), server));
                continue;
            }

            var literal = server.Host.StartsWith('[') ? server.Host[1..^1] : server.Host;
            if (IPAddress.TryParse(literal, out var ip))
            {
                peers.Add(registry.ConfiguredPeer(spec.Name, groupState, new IPEndPoint(ip, server.Port), server));
                continue;
            }

            if (server.Resolve)
            {
                resolving = true;
                if ((spec.Resolver ?? httpResolver.Resolver) is null)
                {
                    throw new ConfigException($"no resolver defined to resolve names at run time in upstream \"{spec.Name}\" in {spec.Source.File}:{spec.Source.Line}");
                }

                // The last answer (kept across reloads) until the resolver refreshes it.
                foreach (var address in registry.CachedAnswer(spec.Name, server.Address))
                {
                    peers.Add(registry.ConfiguredPeer(spec.Name, groupState, new IPEndPoint(address, server.Port), server));
                }

                continue;
            }

            var addresses = UpstreamRegistry.ResolveHost(server.Host)
                ?? throw new ConfigException($"host not found in upstream \"{server.Address}\"", server.Source.File, server.Source.Line);
            foreach (var address in addresses)
            {
                peers.Add(registry.ConfiguredPeer(spec.Name, groupState, new IPEndPoint(address, server.Port), server));
            }
        }

        var set = new PeerSet(peers, resolving);
        var resolverSpec = spec.Resolver ?? httpResolver.Resolver;
        var time = snapshot.Services.Time;
        var queue = spec.Queue is not null ? groupState.Queue : null;
        var group = new UpstreamGroup(spec.Name, spec, set, g => spec.Method switch
        {
            BalancingMethod.LeastConn => new LeastConnBalancer(g, time) { Queue = queue },
            BalancingMethod.IpHash => new IpHashBalancer(g, time) { Queue = queue },
            BalancingMethod.Hash => new HashBalancer(g, snapshot.Compile(spec.HashKey!), spec.HashConsistent, time) { Queue = queue },
            BalancingMethod.Random => new RandomBalancer(g, spec.RandomTwo, time) { Queue = queue },
            BalancingMethod.LeastTime => new LeastTimeBalancer(g, spec.LeastTimeLastByte, spec.LeastTimeInflight, time) { Queue = queue },
            _ => new RoundRobinBalancer(g, time) { Queue = queue },
        })
        {
            State = groupState,
        };
        if (resolving)
        {
            var timeout = spec.ResolverTimeout ?? httpResolver.Timeout ?? TimeSpan.FromSeconds(30);
            registry.AddBackground(new UpstreamResolver(registry, group, resolverSpec!, timeout, UpstreamResolver.Factory?.Invoke(resolverSpec!, timeout)));
        }

        return group;
    }
}
