using System.Net;
using Microsoft.Extensions.Time.Testing;
using Portico.Upstreams;

namespace Portico.Tests.Upstreams;

/// <summary>Every balancing method with injected time and randomness: exact sequences, no sleeping.</summary>
public class BalancerTests
{
    private static int _id;

    private static UpstreamPeer Peer(string name, int weight = 1, bool backup = false, int maxFails = 1, int failSeconds = 10, int maxConns = 0, string? server = null)
    {
        var ep = new IPEndPoint(IPAddress.Parse("10.0.0." + (name[0] - 'a' + 1)), 80);
        return new UpstreamPeer(ep, name, new PeerState(Interlocked.Increment(ref _id)))
        {
            Server = server ?? name,
            Weight = weight,
            Backup = backup,
            MaxFails = maxFails,
            FailTimeout = TimeSpan.FromSeconds(failSeconds),
            MaxConns = maxConns,
        };
    }

    private static string Sequence(IBalancer balancer, int count, UpstreamFailure report = UpstreamFailure.None)
    {
        var picks = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var it = balancer.Begin(null!);
            Assert.True(it.TryNext(out var p));
            picks.Add(p.Name);
            it.Report(p, report);
        }

        return string.Join(",", picks);
    }

    [Fact]
    public void SmoothWeightedRoundRobin_5_1_1()
    {
        var rr = new RoundRobinBalancer(new StaticPeers([Peer("a", 5), Peer("b", 1), Peer("c", 1)]), new FakeTimeProvider());
        Assert.Equal("a,a,b,a,c,a,a", Sequence(rr, 7));
        Assert.Equal("a,a,b,a,c,a,a", Sequence(rr, 7));
    }

    [Theory]
    [InlineData("round robin")]
    [InlineData("least_conn")]
    public void ARestartedIteratorIsLikeANewOne(string method)
    {
        var peers = new StaticPeers([Peer("a"), Peer("b"), Peer("c", backup: true)]);
        Balancer balancer = method == "least_conn"
            ? new LeastConnBalancer(peers, new FakeTimeProvider())
            : new RoundRobinBalancer(peers, new FakeTimeProvider());
        var used = balancer.Begin(null!);
        Assert.True(used.TryNext(out var p));
        used.Report(p, UpstreamFailure.Error);
        Pipeline.ReuseAssert.Dirty(used);

        var restarted = balancer.Begin(null!, used);
        Assert.Same(used, restarted);
        Pipeline.ReuseAssert.LikeNew(restarted, balancer.Begin(null!));
    }

    [Fact]
    public void ReusedIteratorsPickAsNewOnes()
    {
        var rr = new RoundRobinBalancer(new StaticPeers([Peer("a", 5), Peer("b", 1), Peer("c", 1)]), new FakeTimeProvider());
        PeerIterator? spare = null;
        var picks = new List<string>();
        for (var i = 0; i < 14; i++)
        {
            var it = rr.Begin(null!, spare);
            Assert.True(it.TryNext(out var p));
            picks.Add(p.Name);
            it.Report(p, UpstreamFailure.None);
            spare = it;
        }

        Assert.Equal("a,a,b,a,c,a,a,a,a,b,a,c,a,a", string.Join(",", picks));

        // An iterator of another method is not taken over.
        var leastConn = new LeastConnBalancer(new StaticPeers([Peer("a")]), new FakeTimeProvider());
        Assert.NotSame(spare, leastConn.Begin(null!, spare));
    }

    [Fact]
    public void SmoothWeightedRoundRobin_3_3_1_SpreadsEvenly()
    {
        var rr = new RoundRobinBalancer(new StaticPeers([Peer("a", 3), Peer("b", 3), Peer("c", 1)]), new FakeTimeProvider());
        Assert.Equal("a,b,c,a,b,a,b", Sequence(rr, 7));
    }

    [Fact]
    public void UnavailablePeersAreSkippedAndRetriesNeverRepeat()
    {
        var a = Peer("a");
        var b = Peer("b");
        var c = Peer("c");
        var time = new FakeTimeProvider();
        var rr = new RoundRobinBalancer(new StaticPeers([a, b, c]), time);
        var it = rr.Begin(null!);
        var tried = new List<string>();
        while (it.TryNext(out var p))
        {
            tried.Add(p.Name);
            it.Report(p, UpstreamFailure.Error);
        }

        Assert.Equal(["a", "b", "c"], tried);
        Assert.False(it.Busy);

        // max_fails=1: all three are out for fail_timeout: "no live upstreams".
        var next = rr.Begin(null!);
        Assert.False(next.TryNext(out _));
        Assert.True(next.Busy);
        Assert.Equal(3, next.Remaining);
    }

    [Fact]
    public void MaxFailsWithinFailTimeoutThenOneTrialRequest()
    {
        var a = Peer("a", maxFails: 2, failSeconds: 10);
        var b = Peer("b", maxFails: 2, failSeconds: 10);
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(1));
        var rr = new RoundRobinBalancer(new StaticPeers([a, b]), time);

        // Two failures of a within the window take it out.
        var it = rr.Begin(null!);
        Assert.True(it.TryNext(out var p) && p == a);
        it.Report(a, UpstreamFailure.Timeout);
        Assert.False(it.Disabled);
        it = rr.Begin(null!);
        Assert.True(it.TryNext(out p) && p == b);
        it.Report(b, UpstreamFailure.None);
        it = rr.Begin(null!);
        Assert.True(it.TryNext(out p) && p == a);
        it.Report(a, UpstreamFailure.Timeout);
        Assert.True(it.Disabled);

        Assert.Equal("b,b,b,b", Sequence(rr, 4));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal("b,b", Sequence(rr, 2));
        time.Advance(TimeSpan.FromMilliseconds(1));

        // fail_timeout passed: a gets a trial request; its success makes it a full member again.
        Assert.Contains("a", Sequence(rr, 2), StringComparison.Ordinal);
        Assert.Equal(0, a.State.Fails);
        Assert.Equal(2, Sequence(rr, 4).Split(',').Count(x => x == "a"));
    }

    [Fact]
    public void BackupOnlyWhenEveryPrimaryIsUnavailable()
    {
        var a = Peer("a");
        var b = Peer("b");
        var backup = Peer("c", backup: true);
        var time = new FakeTimeProvider();
        var rr = new RoundRobinBalancer(new StaticPeers([a, b, backup]), time);
        Assert.DoesNotContain("c", Sequence(rr, 20), StringComparison.Ordinal);

        a.State.Admin = AdminState.Down;
        Assert.Equal("b,b,b", Sequence(rr, 3));
        b.State.Admin = AdminState.Drain;
        Assert.Equal("c,c", Sequence(rr, 2));
        b.State.Admin = AdminState.Up;
        Assert.Equal("b,b", Sequence(rr, 2));
    }

    [Fact]
    public void FailedPrimaryFallsBackToBackupWithinOneRequest()
    {
        var a = Peer("a");
        var backup = Peer("c", backup: true);
        var rr = new RoundRobinBalancer(new StaticPeers([a, backup]), new FakeTimeProvider());
        var it = rr.Begin(null!);
        Assert.Equal(2, it.Remaining);
        Assert.True(it.TryNext(out var first));
        Assert.Same(a, first);
        it.Report(a, UpstreamFailure.Error);
        Assert.True(it.TryNext(out var second));
        Assert.Same(backup, second);
    }

    [Fact]
    public void SingleServerIsNeverTakenOutByMaxFails()
    {
        var a = Peer("a");
        var rr = new RoundRobinBalancer(new StaticPeers([a]), new FakeTimeProvider());
        Assert.Equal("a,a,a", Sequence(rr, 3, UpstreamFailure.Error));
    }

    [Fact]
    public void LeastConnUnderConcurrency()
    {
        var a = Peer("a");
        var b = Peer("b");
        var c = Peer("c", weight: 2);
        var lc = new LeastConnBalancer(new StaticPeers([a, b, c]), new FakeTimeProvider());
        var held = new List<(PeerIterator It, UpstreamPeer Peer)>();
        for (var i = 0; i < 8; i++)
        {
            var it = lc.Begin(null!);
            Assert.True(it.TryNext(out var p));
            held.Add((it, p));
        }

        // Weighted: c (weight 2) carries twice the requests of a and b.
        Assert.Equal(2, a.State.Active);
        Assert.Equal(2, b.State.Active);
        Assert.Equal(4, c.State.Active);

        // Finish b's requests: the next ones go to b until it catches up.
        foreach (var (it, p) in held.Where(h => h.Peer == b).ToList())
        {
            it.Report(p, UpstreamFailure.None);
        }

        Assert.Equal("b,b", Sequence2(lc, 2));

        // Concurrent picks from many threads keep the loads balanced.
        foreach (var (it, p) in held.Where(h => h.Peer != b))
        {
            it.Report(p, UpstreamFailure.None);
        }

        var picked = new System.Collections.Concurrent.ConcurrentBag<(PeerIterator, UpstreamPeer)>();
        Parallel.For(0, 400, _ =>
        {
            var it = lc.Begin(null!);
            Assert.True(it.TryNext(out var p));
            picked.Add((it, p));
        });
        Assert.InRange(a.State.Active, 95, 105);
        Assert.InRange(c.State.Active, 195, 205);
    }

    private static string Sequence2(IBalancer balancer, int count)
    {
        var picks = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var it = balancer.Begin(null!);
            Assert.True(it.TryNext(out var p));
            picks.Add(p.Name);
        }

        return string.Join(",", picks);
    }

    [Fact]
    public void IpHashUsesTheFirstThreeOctetsAndRehashesAroundUnavailablePeers()
    {
        var peers = new[] { Peer("a"), Peer("b"), Peer("c"), Peer("d") };
        var ip = new IpHashBalancer(new StaticPeers(peers), new FakeTimeProvider());
        string Pick(string client)
        {
            var it = ip.Begin(IPAddress.Parse(client));
            Assert.True(it.TryNext(out var p));
            it.Report(p, UpstreamFailure.None);
            return p.Name;
        }

        var seen = new HashSet<string>();
        for (var third = 0; third < 50; third++)
        {
            var first = Pick($"192.168.{third}.1");
            seen.Add(first);
            for (var last = 2; last < 255; last += 50)
            {
                Assert.Equal(first, Pick($"192.168.{third}.{last}"));
            }
        }

        Assert.Equal(4, seen.Count);

        // nginx's hash: 89, then (hash * 113 + octet) % 6271 per octet, modulo the total weight.
        uint h = 89;
        foreach (var o in new byte[] { 10, 1, 2 })
        {
            h = (h * 113 + o) % 6271;
        }

        Assert.Equal(peers[h % 4].Name, Pick("10.1.2.3"));

        // The chosen peer goes down: another peer, and back once it is up.
        var sticky = Pick("10.1.2.3");
        peers.First(p => p.Name == sticky).State.Admin = AdminState.Down;
        Assert.NotEqual(sticky, Pick("10.1.2.3"));
        peers.First(p => p.Name == sticky).State.Admin = AdminState.Config;
        Assert.Equal(sticky, Pick("10.1.2.3"));

        // IPv6: the whole address counts.
        Assert.Equal(16, IpHashBalancer.HashBytes(IPAddress.IPv6Loopback).Length);
        Assert.Equal(3, IpHashBalancer.HashBytes(IPAddress.Parse("::ffff:10.1.2.3")).Length);
    }

    [Fact]
    public void ConsistentHashMovesAboutOneNthOfTheKeysWhenAServerIsAdded()
    {
        var four = new[] { Peer("a", server: "10.0.0.1:80"), Peer("b", server: "10.0.0.2:80"), Peer("c", server: "10.0.0.3:80"), Peer("d", server: "10.0.0.4:80") };
        var five = four.Append(Peer("e", server: "10.0.0.5:80")).ToArray();
        var before = new HashBalancer(new StaticPeers(four), null, consistent: true, new FakeTimeProvider());
        var after = new HashBalancer(new StaticPeers(five), null, consistent: true, new FakeTimeProvider());
        string Pick(HashBalancer h, string key)
        {
            var it = h.Begin(key);
            Assert.True(it.TryNext(out var p));
            it.Report(p, UpstreamFailure.None);
            return p.Name;
        }

        var moved = 0;
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 10_000; i++)
        {
            var key = "/object/" + i;
            var x = Pick(before, key);
            var y = Pick(after, key);
            counts[y] = counts.GetValueOrDefault(y) + 1;
            if (x != y)
            {
                moved++;
                Assert.Equal("e", y);
            }
        }

        Assert.InRange(moved, 1_400, 2_600);
        Assert.All(counts.Values, n => Assert.InRange(n, 1_200, 2_800));

        // The ring is nginx's: crc32(host "\\0" port prev_hash) points, 160 per weight unit.
        var ring = HashBalancer.Ring.Build(new PeerList(four));
        Assert.Equal(640, ring.Hashes.Length);
        Assert.Equal(("10.0.0.1", "80"), HashBalancer.Ring.SplitServer("10.0.0.1:80"));
        Assert.Equal(("/run/x.sock", ""), HashBalancer.Ring.SplitServer("unix:/run/x.sock"));
        Assert.Equal(("backend.example", ""), HashBalancer.Ring.SplitServer("backend.example"));
    }

    [Fact]
    public void PlainHashIsCacheMemcachedCompatibleAndStable()
    {
        var peers = new[] { Peer("a"), Peer("b"), Peer("c") };
        var h = new HashBalancer(new StaticPeers(peers), null, consistent: false, new FakeTimeProvider());
        var it = h.Begin("some-key");
        Assert.True(it.TryNext(out var p));
        var expected = ((Crc32.Of("some-key") >> 16) & 0x7fff) % 3;
        Assert.Equal(peers[expected].Name, p.Name);
        Assert.Equal(0xCBF43926u, Crc32.Of("123456789"));
    }

    [Fact]
    public void RandomTwoTakesTheLessLoadedOfTwoDraws()
    {
        var a = Peer("a");
        var b = Peer("b");
        var busy = new RandomBalancer(new StaticPeers([a, b]), two: true, new FakeTimeProvider(), new Random(7));
        for (var i = 0; i < 5; i++)
        {
            a.State.TryAcquire(0);
        }

        // Two distinct peers are always drawn among two: b, with nothing in flight, wins every time.
        for (var i = 0; i < 20; i++)
        {
            var it = busy.Begin(null!);
            Assert.True(it.TryNext(out var p));
            Assert.Same(b, p);
            it.Report(p, UpstreamFailure.None);
        }

        // Plain random follows the weights (seeded: exact and repeatable).
        var c = Peer("c", weight: 3);
        var d = Peer("d", weight: 1);
        var weighted = new RandomBalancer(new StaticPeers([c, d]), two: false, new FakeTimeProvider(), new Random(42));
        var counts = Sequence(weighted, 4000).Split(',').GroupBy(x => x).ToDictionary(g => g.Key, g => g.Count());
        Assert.InRange(counts["c"], 2800, 3200);
        var again = new RandomBalancer(new StaticPeers([c, d]), two: false, new FakeTimeProvider(), new Random(42));
        Assert.Equal(Sequence(new RandomBalancer(new StaticPeers([c, d]), false, new FakeTimeProvider(), new Random(1)), 50),
            Sequence(new RandomBalancer(new StaticPeers([c, d]), false, new FakeTimeProvider(), new Random(1)), 50));
        Assert.NotNull(again);
    }

    [Fact]
    public void LeastTimePrefersTheFasterPeer()
    {
        var fast = Peer("a");
        var slow = Peer("b");
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(1));
        var lt = new LeastTimeBalancer(new StaticPeers([fast, slow]), lastByte: false, inflight: false, time);

        // No times yet: round robin.
        Assert.Equal("a,b", Sequence(lt, 2));
        fast.State.RecordTimes(10, 12);
        slow.State.RecordTimes(400, 420);
        Assert.Equal("a,a,a,a,a", Sequence(lt, 5));

        // Busy enough, the fast peer's estimate (time × (1 + active)) passes the slow one's.
        var held = new List<(PeerIterator, UpstreamPeer)>();
        for (var i = 0; i < 25; i++)
        {
            var it = lt.Begin(null!);
            Assert.True(it.TryNext(out var p));
            held.Add((it, p));
        }

        Assert.True(fast.State.Active > slow.State.Active * 5);
        Assert.True(slow.State.Active >= 1);
        Assert.Equal(20 * 26, lt.Eta(fast, time.GetUtcNow().ToUnixTimeMilliseconds()) / (1 + fast.State.Active) * 26);
    }

    [Fact]
    public void MaxConnsSlotsAreCountedPerPeer()
    {
        var a = Peer("a", maxConns: 1);
        var b = Peer("b", maxConns: 1);
        var rr = new RoundRobinBalancer(new StaticPeers([a, b]), new FakeTimeProvider());
        var one = rr.Begin(null!);
        Assert.True(one.TryNext(out var p1));
        var two = rr.Begin(null!);
        Assert.True(two.TryNext(out var p2));
        Assert.NotSame(p1, p2);
        var three = rr.Begin(null!);
        Assert.False(three.TryNext(out _));
        Assert.True(three.Busy);
        Assert.True(three.Full);
        one.Report(p1, UpstreamFailure.None);
        Assert.True(three.TryNext(out var p3));
        Assert.Same(p1, p3);
    }

    [Fact]
    public async Task QueueWakesAWaiterWhenASlotIsReleased()
    {
        var queue = new UpstreamQueue();
        var time = new FakeTimeProvider();
        var waiting = queue.WaitAsync(1, TimeSpan.FromSeconds(5), time, CancellationToken.None).AsTask();
        Assert.False(await queue.WaitAsync(1, TimeSpan.FromSeconds(5), time, CancellationToken.None));
        queue.Signal();
        Assert.True(await waiting);
        var timesOut = queue.WaitAsync(1, TimeSpan.FromSeconds(5), time, CancellationToken.None).AsTask();
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(await timesOut);
    }

    [Fact]
    public void SlowStartRampsTheWeightUp()
    {
        var a = Peer("a");
        var b = new UpstreamPeer(new IPEndPoint(IPAddress.Loopback, 2), "b", new PeerState(99)) { SlowStart = TimeSpan.FromSeconds(30) };
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(1));
        b.State.Recovered(time.GetUtcNow().ToUnixTimeMilliseconds());
        var rr = new RoundRobinBalancer(new StaticPeers([a, b]), time, new Random(3));
        var early = Sequence(rr, 200).Split(',').Count(x => x == "b");
        time.Advance(TimeSpan.FromSeconds(30));
        var later = Sequence(rr, 200).Split(',').Count(x => x == "b");
        Assert.True(early < 20, $"early {early}");
        Assert.Equal(100, later);
    }
}
