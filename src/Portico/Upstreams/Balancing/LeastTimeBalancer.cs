using Portico.Pipeline;

namespace Portico.Upstreams;

/// <summary>
/// least_time header | last_byte [inflight] (nginx Plus, ngx_http_upstream_least_time_module.c): the peer
/// with the least estimated time to finish its current requests, the moving average of its header or
/// full response time times (1 + active requests), relative to its weight; times are clustered by 20 ms,
/// capped at 5 s (then it is least_conn), halved once per fail_timeout without a failure so slow peers
/// get chances again. Ties go by smooth weighted round robin. "inflight" lets the age of running requests
/// raise the estimate.
/// </summary>
public sealed class LeastTimeBalancer : Balancer
{
    public LeastTimeBalancer(IPeerSource source, bool lastByte, bool inflight, TimeProvider? time = null, Random? random = null)
        : base(source, time, random)
    {
        LastByte = lastByte;
        Inflight = inflight;
    }

    public bool LastByte { get; }
    public bool Inflight { get; }

    public override PeerIterator Begin(RequestContext r) => new Iterator(this);

    /// <summary>ngx_http_upstream_least_time_eta for a peer now.</summary>
    public long Eta(UpstreamPeer peer, long nowMs)
    {
        var rt = LastByte ? peer.State.ResponseTime : peer.State.HeaderTime;
        var sinceSelected = nowMs - peer.State.SelectedMs;
        var failTimeout = (long)peer.FailTimeout.TotalMilliseconds;
        if (peer.State.SelectedMs > 0 && sinceSelected > failTimeout)
        {
            var shift = sinceSelected / (failTimeout + 1000);
            rt = shift >= 63 ? 0 : rt >> (int)shift;
        }

        rt = rt > 5000 ? 5000 : rt + 20 - (rt % 20);
        return rt * (1 + peer.State.Active);
    }

    private sealed class Iterator(LeastTimeBalancer owner) : BalancedIterator(owner)
    {
        protected override int Pick(PeerList list)
        {
            var lt = (LeastTimeBalancer)Owner;
            var best = -1;
            double bestEta = 0;
            var many = false;
            for (var i = 0; i < list.Count; i++)
            {
                if (!IsCandidate(list, i))
                {
                    continue;
                }

                var eta = lt.Eta(list.Peers[i], Now) / EffectiveWeight(list.Peers[i]);
                if (best < 0 || eta < bestEta)
                {
                    best = i;
                    bestEta = eta;
                    many = false;
                }
                else if (eta == bestEta)
                {
                    many = true;
                }
            }

            if (!many || best < 0)
            {
                return best;
            }

            var chosen = RoundRobin(list, i => lt.Eta(list.Peers[i], Now) / EffectiveWeight(list.Peers[i]) == bestEta);
            return chosen >= 0 ? chosen : best;
        }
    }
}
