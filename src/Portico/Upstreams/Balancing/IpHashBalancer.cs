using System.Net;
using System.Net.Sockets;
using Portico.Pipeline;

namespace Portico.Upstreams;

/// <summary>
/// ip_hash (ngx_http_upstream_ip_hash_module.c): the first three octets of an IPv4 client address (the
/// whole address for IPv6) pick a peer by weight, so a client keeps reaching the same server; an
/// unavailable peer is replaced by rehashing, and after 20 tries round robin takes over. No backups.
/// </summary>
public sealed class IpHashBalancer : Balancer
{
    public IpHashBalancer(IPeerSource source, TimeProvider? time = null, Random? random = null)
        : base(source, time, random)
    {
    }

    public override bool SupportsBackup => false;

    public override PeerIterator Begin(RequestContext r) => Begin(r?.Http.Connection.RemoteIpAddress);

    public PeerIterator Begin(IPAddress? client) => new Iterator(this, client);

    /// <summary>The bytes nginx hashes: three octets of IPv4, sixteen of IPv6, three zeros otherwise.</summary>
    public static byte[] HashBytes(IPAddress? client)
    {
        if (client is null)
        {
            return [0, 0, 0];
        }

        if (client.IsIPv4MappedToIPv6)
        {
            client = client.MapToIPv4();
        }

        var bytes = client.GetAddressBytes();
        return client.AddressFamily == AddressFamily.InterNetwork ? bytes[..3] : bytes;
    }

    private sealed class Iterator : BalancedIterator
    {
        private readonly byte[] _address;
        private uint _hash = 89;
        private int _tries;

        public Iterator(IpHashBalancer owner, IPAddress? client)
            : base(owner)
        {
            _address = HashBytes(client);
        }

        protected override int Pick(PeerList list)
        {
            if (Set.Single || list.TotalWeight == 0)
            {
                return RoundRobin(list);
            }

            while (_tries <= 20)
            {
                foreach (var b in _address)
                {
                    _hash = (_hash * 113 + b) % 6271;
                }

                var w = (int)(_hash % (uint)list.TotalWeight);
                var index = 0;
                while (w >= list.Peers[index].Weight)
                {
                    w -= list.Peers[index].Weight;
                    index++;
                }

                if (IsCandidate(list, index))
                {
                    return index;
                }

                _tries++;
            }

            return RoundRobin(list);
        }
    }
}
