using Portico.Pipeline;

namespace Portico.Upstreams;

/// <summary>
/// random [two [least_conn]] (ngx_http_upstream_random_module.c): a peer drawn with probability
/// proportional to its weight; with "two", two distinct peers are drawn and the one with fewer active
/// requests relative to its weight wins. After 20 unavailable draws round robin takes over. No backups.
/// </summary>
public sealed class RandomBalancer : Balancer
{
    public RandomBalancer(IPeerSource source, bool two, TimeProvider? time = null, Random? random = null)
        : base(source, time, random)
    {
        Two = two;
    }

    public bool Two { get; }

    public override bool SupportsBackup => false;

    public override PeerIterator Begin(RequestContext r) => new Iterator(this);

    private sealed class Iterator(RandomBalancer owner) : BalancedIterator(owner)
    {
        private int _tries;

        private int Draw(PeerList list)
        {
            var x = Owner.Random.Next(list.TotalWeight);
            for (var i = 0; i < list.Count; i++)
            {
                x -= list.Peers[i].Weight;
                if (x < 0)
                {
                    return i;
                }
            }

            return list.Count - 1;
        }

        protected override int Pick(PeerList list)
        {
            if (Set.Single || list.TotalWeight == 0)
            {
                return RoundRobin(list);
            }

            if (!((RandomBalancer)Owner).Two || list.Count < 2)
            {
                while (_tries++ < 20)
                {
                    var i = Draw(list);
                    if (IsCandidate(list, i))
                    {
                        return i;
                    }
                }

                return RoundRobin(list);
            }

            while (_tries++ < 20)
            {
                var a = Draw(list);
                var b = Draw(list);
                if (a == b)
                {
                    continue;
                }

                var okA = IsCandidate(list, a);
                var okB = IsCandidate(list, b);
                if (!okA && !okB)
                {
                    continue;
                }

                if (okA != okB)
                {
                    return okA ? a : b;
                }

                var pa = list.Peers[a];
                var pb = list.Peers[b];
                // ngx_http_upstream_get_random2_peer: the second wins only with a strictly lower load.
                return pb.State.Active * pa.Weight < pa.State.Active * pb.Weight ? b : a;
            }

            return RoundRobin(list);
        }
    }
}
