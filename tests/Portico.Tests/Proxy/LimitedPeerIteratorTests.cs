using System.Net;
using Microsoft.Extensions.Time.Testing;
using Portico.Proxy;
using Portico.Upstreams;

namespace Portico.Tests.Proxy;

/// <summary>*_next_upstream_tries and *_next_upstream_timeout bound the balancer's peers.</summary>
public class LimitedPeerIteratorTests
{
    private static RoundRobinBalancer Three() => new(
        [.. Enumerable.Range(1, 3).Select(i => new UpstreamPeer(new IPEndPoint(IPAddress.Loopback, i), "127.0.0.1:" + i, new PeerState()))]);

    [Fact]
    public void TriesLimitTheNumberOfPeers()
    {
        var it = new LimitedPeerIterator(Three().Begin(null!), maxTries: 2, TimeSpan.Zero, new FakeTimeProvider());
        Assert.Equal(2, it.Remaining);
        Assert.True(it.TryNext(out var a));
        Assert.Equal(1, it.Remaining);
        Assert.True(it.TryNext(out var b));
        Assert.NotSame(a, b);
        Assert.Equal(0, it.Remaining);
        Assert.False(it.TryNext(out _));
    }

    [Fact]
    public void TheTimeoutStopsFurtherTriesOnceItPassed()
    {
        var time = new FakeTimeProvider();
        var it = new LimitedPeerIterator(Three().Begin(null!), maxTries: 0, TimeSpan.FromSeconds(5), time);
        Assert.True(it.TryNext(out _));
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(2, it.Remaining);
        Assert.True(it.TryNext(out _));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, it.Remaining);
        Assert.False(it.TryNext(out _));
    }
}
