using Portico.Pipeline;

namespace Portico.Upstreams;

/// <summary>The peers one request may try, in the order the balancer chose.</summary>
public abstract class PeerIterator
{
    /// <summary>How many peers are left to try (nginx's peer.tries).</summary>
    public abstract int Remaining { get; }

    /// <summary>The next peer to try; false when every peer has been tried or none is available now.</summary>
    public abstract bool TryNext(out UpstreamPeer peer);

    /// <summary>Reports how the attempt at the peer ended (balancers and passive health read it).</summary>
    public virtual void Report(UpstreamPeer peer, UpstreamFailure failure) => peer.State.End(failure);

    /// <summary>Reports an attempt with its counters (status, bytes, times) for the API and least_time.</summary>
    public void Report(UpstreamPeer peer, UpstreamFailure failure, UpstreamAttemptState? attempt)
    {
        if (attempt is not null)
        {
            peer.State.Record(attempt);
        }

        Report(peer, failure);
    }

    /// <summary>The last <see cref="TryNext"/> found tries left but no available peer ("no live upstreams").</summary>
    public virtual bool Busy => false;

    /// <summary>Some peer was skipped only because its max_conns slots were taken (a queue may wait for one).</summary>
    public virtual bool Full => false;

    /// <summary>The last report made the peer unavailable ("upstream server temporarily disabled").</summary>
    public virtual bool Disabled => false;
}

/// <summary>What every balancing method shares: where the peers come from, time, randomness, backups.</summary>
public abstract class Balancer : IBalancer
{
    protected Balancer(IPeerSource source, TimeProvider? time, Random? random)
    {
        Source = source;
        Time = time ?? TimeProvider.System;
        Random = random ?? Random.Shared;
    }

    public IPeerSource Source { get; }
    public TimeProvider Time { get; }
    public Random Random { get; }

    /// <summary>Backup servers are tried once no primary is available (not for hash methods, as nginx).</summary>
    public virtual bool SupportsBackup => true;

    /// <summary>Called when a slot is released (the max_conns queue waits for it).</summary>
    public UpstreamQueue? Queue { get; init; }

    public long NowMs => Time.GetUtcNow().ToUnixTimeMilliseconds();

    public abstract PeerIterator Begin(RequestContext r);

    /// <summary>
    /// <see cref="Begin(RequestContext)"/>, restarting <paramref name="spare"/> (an iterator an earlier request
    /// finished with) instead of making a new one where the method can.
    /// </summary>
    public virtual PeerIterator Begin(RequestContext r, PeerIterator? spare) => Begin(r);
}

/// <summary>
/// The common part of every method's iterator: the tried set, nginx's tries, availability (down, draining,
/// unhealthy, max_fails within fail_timeout, max_conns), the switch to backups, slots and passive health.
/// A method only chooses among the candidates of one list (<see cref="Pick"/>).
/// </summary>
public abstract class BalancedIterator : PeerIterator
{
    private ulong _mask;
    private bool[]? _big;
    private int _remaining;
    private bool _onBackup;
    private bool _busy;
    private bool _full;
    private bool _disabled;
    private bool _started;
    private PeerList? _cycleList;
    private int _cyclePosition;

    protected BalancedIterator(Balancer owner)
    {
        Start(owner);
    }

    /// <summary>
    /// Makes this iterator a new one's for <paramref name="owner"/> (the peers current now). Only for methods
    /// whose iterator has no state of its own (round robin, least_conn): the others make a new one.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(Owner), nameof(Set), nameof(List))]
    protected internal BalancedIterator Start(Balancer owner)
    {
        Owner = owner;
        Set = owner.Source.Current;
        List = Set.Primary;
        _remaining = Set.Tries(owner.SupportsBackup);
        _mask = 0;
        _big = null;
        _onBackup = false;
        _busy = false;
        _full = false;
        _disabled = false;
        _started = false;
        _cycleList = null;
        _cyclePosition = 0;
        Now = 0;
        return this;
    }

    protected Balancer Owner { get; private set; }
    protected PeerSet Set { get; private set; }
    protected PeerList List { get; private set; }

    /// <summary>The clock in milliseconds, read once per <see cref="TryNext"/> (what <see cref="Pick"/> sees).</summary>
    protected long Now { get; private set; }

    public override int Remaining => _remaining;
    public override bool Busy => _busy;
    public override bool Full => _full;
    public override bool Disabled => _disabled;

    /// <summary>An index of <paramref name="list"/> whose peer <see cref="IsCandidate"/> accepts, or -1.</summary>
    protected abstract int Pick(PeerList list);

    public override bool TryNext(out UpstreamPeer peer)
    {
        _busy = false;
        _full = false;
        peer = null!;
        // nginx asks the balancer for the first peer whatever the tries (every server down: "no live upstreams").
        if (_remaining <= 0 && _started)
        {
            return false;
        }

        _started = true;
        Now = Owner.NowMs;
        for (var guard = 0; guard < 4 * (Set.All.Count + 2); guard++)
        {
            var index = List.Count == 0 ? -1 : Pick(List);
            if (index >= 0)
            {
                var p = List.Peers[index];
                MarkTried(index);
                if (!p.State.TryAcquire(p.MaxConns))
                {
                    _full = true;
                    continue;
                }

                _remaining--;
                p.State.Selected(Now, (long)p.FailTimeout.TotalMilliseconds);
                peer = p;
                return true;
            }

            if (!_onBackup && Owner.SupportsBackup && Set.Backup.Count > 0)
            {
                _onBackup = true;
                List = Set.Backup;
                _mask = 0;
                _big = null;
                continue;
            }

            break;
        }

        _busy = true;
        return false;
    }

    public override void Report(UpstreamPeer peer, UpstreamFailure failure)
    {
        peer.State.End(failure);
        _disabled = false;
        if (!Set.Single)
        {
            if (PeerState.IsFailure(failure))
            {
                _disabled = peer.State.PassiveFailure(peer.MaxFails, Owner.NowMs);
            }
            else if (peer.State.PassiveSuccess())
            {
                peer.State.Recovered(Owner.NowMs);
            }
        }

        Owner.Queue?.Signal();
    }

    protected bool Tried(int index) => _big is not null ? _big[index] : index < 64 && (_mask & (1UL << index)) != 0;

    private void MarkTried(int index)
    {
        if (_big is null && List.Count > 64)
        {
            _big = new bool[List.Count];
        }

        if (_big is not null)
        {
            _big[index] = true;
        }
        else
        {
            _mask |= 1UL << index;
        }
    }

    /// <summary>Not tried by this request and available now (nginx's checks in ngx_http_upstream_get_peer).</summary>
    protected bool IsCandidate(PeerList list, int index)
    {
        if (Tried(index))
        {
            return false;
        }

        var p = list.Peers[index];
        if (p.IsDown || p.IsDraining || p.State.Health != HealthState.Healthy)
        {
            return false;
        }

        if (!Set.Single && p.State.PassivelyFailed(p.MaxFails, (long)p.FailTimeout.TotalMilliseconds, Now))
        {
            return false;
        }

        if (p.MaxConns > 0 && p.State.Active >= p.MaxConns)
        {
            _full = true;
            return false;
        }

        return true;
    }

    /// <summary>slow_start: a recovering peer is admitted with the share of its weight it has regained.</summary>
    protected bool SlowStartAdmits(UpstreamPeer p)
    {
        if (p.SlowStart <= TimeSpan.Zero)
        {
            return true;
        }

        var factor = p.State.SlowStartFactor(p.SlowStart, Now);
        return factor >= 1 || Owner.Random.NextDouble() < factor;
    }

    /// <summary>The weight a peer counts with now (slow_start scales it down while the peer recovers).</summary>
    protected double EffectiveWeight(UpstreamPeer p) =>
        Math.Max(1, p.Weight) * (p.SlowStart > TimeSpan.Zero ? Math.Max(0.01, p.State.SlowStartFactor(p.SlowStart, Now)) : 1.0);

    /// <summary>Smooth weighted round robin: the first candidate at or after the shared cursor of the list.</summary>
    protected int RoundRobin(PeerList list, Func<int, bool>? also = null)
    {
        var schedule = list.Schedule;
        if (schedule.Length == 0)
        {
            return -1;
        }

        // A retry continues the cycle after this request's previous pick instead of taking a new
        // position: as with nginx, a failed attempt does not make the next request skip a peer.
        var start = ReferenceEquals(_cycleList, list)
            ? _cyclePosition
            : (int)((ulong)list.NextCursor() % (ulong)schedule.Length);
        var fallback = -1;
        var fallbackPosition = 0;
        for (var k = 0; k < schedule.Length; k++)
        {
            var position = (start + k) % schedule.Length;
            var index = schedule[position];
            if (!IsCandidate(list, index) || (also is not null && !also(index)))
            {
                continue;
            }

            if (SlowStartAdmits(list.Peers[index]))
            {
                return Picked(list, position, index);
            }

            if (fallback < 0)
            {
                fallback = index;
                fallbackPosition = position;
            }
        }

        return fallback < 0 ? -1 : Picked(list, fallbackPosition, fallback);
    }

    private int Picked(PeerList list, int position, int index)
    {
        _cycleList = list;
        _cyclePosition = (position + 1) % list.Schedule.Length;
        return index;
    }
}

/// <summary>
/// Requests waiting for a max_conns slot (nginx Plus's "queue"): a bounded count of waiters, woken one
/// by one as slots are released.
/// </summary>
public sealed class UpstreamQueue
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<TaskCompletionSource<bool>> _waiters = new();
    private int _count;

    public int Waiting => Volatile.Read(ref _count);

    /// <summary>Waits until a slot may be free; false when the queue is full or the timeout passed.</summary>
    public async ValueTask<bool> WaitAsync(int limit, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken, Func<bool>? ready = null)
    {
        if (Interlocked.Increment(ref _count) > limit)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }

        var tcs = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiters.Enqueue(tcs);
        try
        {
            // A slot freed between the failed pick and the enqueue would signal nobody.
            if (ready is not null && ready())
            {
                tcs.TrySetResult(true);
            }

            using var timer = time.CreateTimer(static s => ((TaskCompletionSource<bool>)s!).TrySetResult(false), tcs, timeout, Timeout.InfiniteTimeSpan);
            using var reg = cancellationToken.Register(static s => ((TaskCompletionSource<bool>)s!).TrySetResult(false), tcs);
            return await tcs.Task.ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _count);
        }
    }

    /// <summary>A slot was released: wake the oldest waiter still waiting.</summary>
    public void Signal()
    {
        if (Volatile.Read(ref _count) == 0)
        {
            return;
        }

        while (_waiters.TryDequeue(out var tcs))
        {
            if (tcs.TrySetResult(true))
            {
                return;
            }
        }
    }
}
