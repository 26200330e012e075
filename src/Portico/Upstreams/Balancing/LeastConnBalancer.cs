using Portico.Pipeline;

namespace Portico.Upstreams;

/// <summary>
/// least_conn (ngx_http_upstream_least_conn_module.c): the available peer with the fewest active requests
/// relative to its weight; peers tied at that value are taken in smooth weighted round robin order.
/// </summary>
public sealed class LeastConnBalancer : Balancer
{
    public LeastConnBalancer(IPeerSource source, TimeProvider? time = null, Random? random = null)
        : base(source, time, random)
    {
    }

    public override PeerIterator Begin(RequestContext r) => new Iterator(this);

    public override PeerIterator Begin(RequestContext r, PeerIterator? spare) => spare is Iterator reused ? reused.Start(this) : new Iterator(this);

    private sealed class Iterator(LeastConnBalancer owner) : BalancedIterator(owner)
    {
        protected override int Pick(PeerList list)
        {
            var best = -1;
            double bestLoad = 0;
            var many = false;
            for (var i = 0; i < list.Count; i++)
            {
                if (!IsCandidate(list, i))
                {
                    continue;
                }

                var load = list.Peers[i].State.Active / EffectiveWeight(list.Peers[i]);
                if (best < 0 || load < bestLoad)
                {
                    best = i;
                    bestLoad = load;
                    many = false;
                }
                else if (load == bestLoad)
                {
                    many = true;
                }
            }

            if (!many || best < 0)
            {
                return best;
            }

            var chosen = RoundRobin(list, i => list.Peers[i].State.Active / EffectiveWeight(list.Peers[i]) == bestLoad);
            return chosen >= 0 ? chosen : best;
        }
    }
}
