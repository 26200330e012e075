using Portico.Pipeline;

namespace Portico.Upstreams;

/// <summary>
/// nginx's default method: smooth weighted round robin (ngx_http_upstream_round_robin.c). The cycle nginx's
/// algorithm produces with every peer available is precomputed per peer list (weights 5,1,1 give
/// a,a,b,a,c,a,a) and walked with one Interlocked cursor, so no lock is shared by requests; a peer that is
/// not available is skipped to the next position of the cycle.
/// </summary>
public sealed class RoundRobinBalancer : Balancer
{
    public RoundRobinBalancer(IReadOnlyList<UpstreamPeer> peers)
        : base(new StaticPeers(peers), null, null)
    {
    }

    public RoundRobinBalancer(IPeerSource source, TimeProvider? time = null, Random? random = null)
        : base(source, time, random)
    {
    }

    public override PeerIterator Begin(RequestContext r) => new Iterator(this);

    public override PeerIterator Begin(RequestContext r, PeerIterator? spare) => spare is Iterator reused ? reused.Start(this) : new Iterator(this);

    private sealed class Iterator(RoundRobinBalancer owner) : BalancedIterator(owner)
    {
        protected override int Pick(PeerList list) => RoundRobin(list);
    }
}
