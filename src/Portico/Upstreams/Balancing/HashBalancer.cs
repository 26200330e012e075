using System.Buffers.Binary;
using System.Globalization;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Upstreams;

/// <summary>
/// hash key [consistent] (ngx_http_upstream_hash_module.c). Without "consistent": Cache::Memcached's
/// hash, ((crc32([rehash] key) >> 16) &amp; 0x7fff) accumulated, modulo the total weight. With it: nginx's
/// ketama ring, weight × 160 points per server from crc32(host "\0" port prev_hash), so adding or removing
/// one of N servers moves about 1/N of the keys. After 20 unavailable picks round robin takes over. No backups.
/// </summary>
public sealed class HashBalancer : Balancer
{
    private readonly CompiledTemplate? _key;

    public HashBalancer(IPeerSource source, CompiledTemplate? key, bool consistent, TimeProvider? time = null, Random? random = null)
        : base(source, time, random)
    {
        _key = key;
        Consistent = consistent;
    }

    public bool Consistent { get; }

    public override bool SupportsBackup => false;

    public override PeerIterator Begin(RequestContext r) => Begin(_key?.Evaluate(r) ?? string.Empty);

    public PeerIterator Begin(string key) => Consistent ? new ConsistentIterator(this, key) : new Iterator(this, key);

    private sealed class Iterator(HashBalancer owner, string key) : BalancedIterator(owner)
    {
        private uint _hash;
        private int _rehash;
        private int _tries;

        protected override int Pick(PeerList list)
        {
            if (Set.Single || list.TotalWeight == 0)
            {
                return RoundRobin(list);
            }

            Span<byte> prefix = stackalloc byte[16];
            while (_tries <= 20)
            {
                var crc = Crc32.Init;
                if (_rehash > 0)
                {
                    _rehash.TryFormat(prefix, out var written, default, CultureInfo.InvariantCulture);
                    crc = Crc32.Update(crc, prefix[..written]);
                }

                crc = Crc32.Update(crc, System.Text.Encoding.UTF8.GetBytes(key));
                crc = Crc32.Final(crc);
                _hash += (crc >> 16) & 0x7fff;
                _rehash++;
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

    private sealed class ConsistentIterator : BalancedIterator
    {
        private readonly uint _keyHash;
        private int _point = -1;
        private int _tries;

        public ConsistentIterator(HashBalancer owner, string key)
            : base(owner)
        {
            _keyHash = Crc32.Of(key);
        }

        protected override int Pick(PeerList list)
        {
            if (Set.Single)
            {
                return RoundRobin(list);
            }

            var ring = list.Table(Ring.Build);
            if (ring.Hashes.Length == 0)
            {
                return -1;
            }

            if (_point < 0)
            {
                _point = ring.Find(_keyHash);
            }

            while (_tries <= 20)
            {
                var server = ring.Servers[_point % ring.Hashes.Length];
                // Every peer of that server (a name may resolve to several addresses) is a candidate.
                var best = -1;
                for (var i = 0; i < list.Count; i++)
                {
                    if (list.Peers[i].Server == server && IsCandidate(list, i))
                    {
                        best = i;
                        break;
                    }
                }

                if (best >= 0)
                {
                    return best;
                }

                _point++;
                _tries++;
            }

            return RoundRobin(list);
        }
    }

    /// <summary>The consistent hash ring of a peer list, sorted by point hash.</summary>
    public sealed class Ring
    {
        private Ring(uint[] hashes, string[] servers)
        {
            Hashes = hashes;
            Servers = servers;
        }

        public uint[] Hashes { get; }
        public string[] Servers { get; }

        /// <summary>ngx_http_upstream_init_chash: weight × 160 points per server, deduplicated by hash.</summary>
        public static Ring Build(PeerList list)
        {
            var points = new List<(uint Hash, string Server)>();
            Span<byte> prev = stackalloc byte[4];
            foreach (var peer in list.Peers)
            {
                var (host, port) = SplitServer(peer.Server);
                var baseHash = Crc32.Update(Crc32.Init, System.Text.Encoding.UTF8.GetBytes(host));
                baseHash = Crc32.Update(baseHash, [0]);
                baseHash = Crc32.Update(baseHash, System.Text.Encoding.UTF8.GetBytes(port));
                uint prevHash = 0;
                var count = Math.Max(1, peer.Weight) * 160;
                for (var j = 0; j < count; j++)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(prev, prevHash);
                    var hash = Crc32.Final(Crc32.Update(baseHash, prev));
                    points.Add((hash, peer.Server));
                    prevHash = hash;
                }
            }

            points.Sort((a, b) => a.Hash.CompareTo(b.Hash));
            // nginx keeps the first of points with equal hashes.
            var hashes = new List<uint>(points.Count);
            var servers = new List<string>(points.Count);
            foreach (var (hash, server) in points)
            {
                if (hashes.Count > 0 && hashes[^1] == hash)
                {
                    continue;
                }

                hashes.Add(hash);
                servers.Add(server);
            }

            return new Ring([.. hashes], [.. servers]);
        }

        /// <summary>ngx_http_upstream_find_chash_point: the first point at or after the hash (may be past the end).</summary>
        public int Find(uint hash)
        {
            int lo = 0, hi = Hashes.Length;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                if (hash > Hashes[mid])
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            return lo;
        }

        /// <summary>ngx_http_upstream_init_chash: "unix:" servers hash their path; otherwise trailing digits after ':' are the port.</summary>
        public static (string Host, string Port) SplitServer(string server)
        {
            if (server.StartsWith("unix:", StringComparison.OrdinalIgnoreCase))
            {
                return (server[5..], string.Empty);
            }

            for (var j = 0; j < server.Length; j++)
            {
                var c = server[server.Length - j - 1];
                if (c == ':')
                {
                    return (server[..(server.Length - j - 1)], server[(server.Length - j)..]);
                }

                if (c is < '0' or > '9')
                {
                    break;
                }
            }

            return (server, string.Empty);
        }
    }
}
