namespace Portico.Upstreams;

/// <summary>What the API (or "down"/"drain" in the configuration) says about a peer.</summary>
public enum AdminState
{
    /// <summary>Not set through the API: the configuration decides.</summary>
    Config = 0,
    Up = 1,
    Down = 2,
    Drain = 3,
}

/// <summary>What active health checks say about a peer.</summary>
public enum HealthState
{
    /// <summary>Passed its checks, or not checked at all.</summary>
    Healthy = 0,

    /// <summary>Failed "fails" checks in a row; it takes no requests until "passes" checks succeed.</summary>
    Unhealthy = 1,

    /// <summary>A new peer of a "mandatory" check that has not passed its first check yet.</summary>
    Checking = 2,
}

/// <summary>
/// A peer's state that belongs to the peer, not to one configuration (kept by identity in the host's state
/// store): the connection slot counter (max_conns), passive health (nginx's fails/checked/accessed), the
/// API's down/drain, active health, and the counters the API reports. Every field is read and written with
/// Interlocked or Volatile: no lock is shared by requests.
/// </summary>
public sealed class PeerState
{
    private long _requests;
    private long _active;
    private long _fails;
    private long _checkedMs;
    private long _accessedMs;
    private long _totalFails;
    private long _unavail;
    private long _downtimeMs;
    private long _downStartMs = -1;
    private long _selectedMs;
    private long _sent;
    private long _received;
    private long _r1, _r2, _r3, _r4, _r5, _rTotal;
    private long _headerTime;
    private long _responseTime;
    private long _recoveredMs = -1;
    private int _admin;
    private int _health;
    private long _checks, _checkFails, _unhealthy;
    private int _lastPassed = -1;
    private int _consecutivePasses, _consecutiveFails;

    public PeerState(int id = 0)
    {
        Id = id;
    }

    /// <summary>The API's id of the peer within its upstream (stable while the peer stays).</summary>
    public int Id { get; }

    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Requests in flight to the peer (nginx's conns; the max_conns slot counter).</summary>
    public long Active => Interlocked.Read(ref _active);

    /// <summary>Failures within the current fail_timeout window (passive health).</summary>
    public long Fails => Interlocked.Read(ref _fails);

    /// <summary>Every failed attempt since the peer exists (the API's "fails").</summary>
    public long TotalFails => Interlocked.Read(ref _totalFails);

    /// <summary>How many times the peer became unavailable (max_fails reached).</summary>
    public long Unavail => Interlocked.Read(ref _unavail);

    public long SelectedMs => Interlocked.Read(ref _selectedMs);
    public long Sent => Interlocked.Read(ref _sent);
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Average header time (ms, nginx's moving average).</summary>
    public long HeaderTime => Interlocked.Read(ref _headerTime);

    /// <summary>Average full response time (ms).</summary>
    public long ResponseTime => Interlocked.Read(ref _responseTime);

    public AdminState Admin
    {
        get => (AdminState)Volatile.Read(ref _admin);
        set => Volatile.Write(ref _admin, (int)value);
    }

    public HealthState Health => (HealthState)Volatile.Read(ref _health);

    public (long C1xx, long C2xx, long C3xx, long C4xx, long C5xx, long Total) Responses =>
        (Interlocked.Read(ref _r1), Interlocked.Read(ref _r2), Interlocked.Read(ref _r3), Interlocked.Read(ref _r4), Interlocked.Read(ref _r5), Interlocked.Read(ref _rTotal));

    public (long Checks, long Fails, long Unhealthy, bool? LastPassed) HealthChecks
    {
        get
        {
            var last = Volatile.Read(ref _lastPassed);
            return (Interlocked.Read(ref _checks), Interlocked.Read(ref _checkFails), Interlocked.Read(ref _unhealthy), last < 0 ? null : last == 1);
        }
    }

    /// <summary>Milliseconds the peer was unavailable in total (the API's "downtime"), up to now.</summary>
    public long Downtime(long nowMs)
    {
        var start = Interlocked.Read(ref _downStartMs);
        return Interlocked.Read(ref _downtimeMs) + (start >= 0 ? Math.Max(0, nowMs - start) : 0);
    }

    public long DownStart => Interlocked.Read(ref _downStartMs);

    /// <summary>Takes a connection slot; false when max_conns slots are all taken.</summary>
    public bool TryAcquire(int maxConns)
    {
        if (maxConns <= 0)
        {
            Interlocked.Increment(ref _active);
            return true;
        }

        while (true)
        {
            var current = Interlocked.Read(ref _active);
            if (current >= maxConns)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _active, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    /// <summary>A request was sent to the peer (after its slot was taken).</summary>
    public void Selected(long nowMs, long failTimeoutMs)
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Exchange(ref _selectedMs, nowMs);
        // ngx_http_upstream_get_peer: once the fail_timeout window passed, a new one starts with this request.
        if (nowMs - Interlocked.Read(ref _checkedMs) > failTimeoutMs)
        {
            Interlocked.Exchange(ref _checkedMs, nowMs);
        }
    }

    /// <summary>Compatibility for iterators that take no slot through <see cref="TryAcquire"/>.</summary>
    public void Begin()
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Increment(ref _active);
    }

    /// <summary>Releases the slot after an attempt and records the failure for the API's counters.</summary>
    public void End(UpstreamFailure failure)
    {
        Interlocked.Decrement(ref _active);
        if (IsFailure(failure))
        {
            Interlocked.Increment(ref _totalFails);
        }
    }

    /// <summary>nginx's NGX_PEER_FAILED: every failure but http_403 and http_404 (NGX_PEER_NEXT).</summary>
    public static bool IsFailure(UpstreamFailure failure) =>
        failure != UpstreamFailure.None && (failure & ~(UpstreamFailure.Http403 | UpstreamFailure.Http404 | UpstreamFailure.NonIdempotent)) != 0;

    /// <summary>
    /// Passive health (ngx_http_upstream_free_round_robin_peer), a failed attempt: it counts towards max_fails
    /// and restarts the window. Returns true when this failure made the peer unavailable ("upstream server
    /// temporarily disabled").
    /// </summary>
    public bool PassiveFailure(int maxFails, long nowMs)
    {
        var fails = Interlocked.Increment(ref _fails);
        Interlocked.Exchange(ref _accessedMs, nowMs);
        Interlocked.Exchange(ref _checkedMs, nowMs);
        if (maxFails > 0 && fails == maxFails)
        {
            Interlocked.Increment(ref _unavail);
            Interlocked.CompareExchange(ref _downStartMs, nowMs, -1);
            return true;
        }

        return maxFails > 0 && fails >= maxFails;
    }

    /// <summary>
    /// Passive health, a successful attempt: once the window restarted after the last failure, the failure
    /// count is cleared. Returns true when that happened and the caller must report <see cref="Recovered"/>
    /// (the clock is read only then: a success costs no clock read).
    /// </summary>
    public bool PassiveSuccess() =>
        Interlocked.Read(ref _accessedMs) < Interlocked.Read(ref _checkedMs) && Interlocked.Exchange(ref _fails, 0) != 0;

    /// <summary>Whether passive health keeps the peer out: max_fails failures within fail_timeout.</summary>
    public bool PassivelyFailed(int maxFails, long failTimeoutMs, long nowMs) =>
        maxFails > 0 && Interlocked.Read(ref _fails) >= maxFails && nowMs - Interlocked.Read(ref _checkedMs) <= failTimeoutMs;

    /// <summary>The peer became available again: slow start begins, downtime stops counting.</summary>
    public void Recovered(long nowMs)
    {
        var start = Interlocked.Exchange(ref _downStartMs, -1);
        if (start >= 0)
        {
            Interlocked.Add(ref _downtimeMs, Math.Max(0, nowMs - start));
        }

        Interlocked.Exchange(ref _recoveredMs, nowMs);
    }

    /// <summary>Marks the start of an unavailable period (down through the API, unhealthy).</summary>
    public void WentDown(long nowMs) => Interlocked.CompareExchange(ref _downStartMs, nowMs, -1);

    /// <summary>slow_start: the share of its weight a recovering peer gets now (1 when not recovering).</summary>
    public double SlowStartFactor(TimeSpan slowStart, long nowMs)
    {
        if (slowStart <= TimeSpan.Zero)
        {
            return 1;
        }

        var recovered = Interlocked.Read(ref _recoveredMs);
        if (recovered < 0)
        {
            return 1;
        }

        var elapsed = nowMs - recovered;
        var total = (long)slowStart.TotalMilliseconds;
        return elapsed >= total ? 1 : Math.Max(0.0, (double)elapsed / total);
    }

    /// <summary>
    /// Plus's <c>DELETE /api/N/http/upstreams/NAME</c>: the statistics start again from zero (requests,
    /// responses, bytes, failures, unavailabilities, downtime, health-check counts). What the peer is doing
    /// now is kept: active requests, its state, the passive-health window, the times used by balancers.
    /// </summary>
    public void ResetStatistics(long nowMs)
    {
        Interlocked.Exchange(ref _requests, 0);
        Interlocked.Exchange(ref _sent, 0);
        Interlocked.Exchange(ref _received, 0);
        Interlocked.Exchange(ref _r1, 0);
        Interlocked.Exchange(ref _r2, 0);
        Interlocked.Exchange(ref _r3, 0);
        Interlocked.Exchange(ref _r4, 0);
        Interlocked.Exchange(ref _r5, 0);
        Interlocked.Exchange(ref _rTotal, 0);
        Interlocked.Exchange(ref _totalFails, 0);
        Interlocked.Exchange(ref _unavail, 0);
        Interlocked.Exchange(ref _downtimeMs, 0);
        // A peer down right now counts its downtime from the reset.
        if (Interlocked.Read(ref _downStartMs) >= 0)
        {
            Interlocked.Exchange(ref _downStartMs, nowMs);
        }

        Interlocked.Exchange(ref _checks, 0);
        Interlocked.Exchange(ref _checkFails, 0);
        Interlocked.Exchange(ref _unhealthy, 0);
    }

    /// <summary>Counts a response status and the bytes and times of an attempt (the API's counters).</summary>
    public void Record(UpstreamAttemptState attempt)
    {
        Interlocked.Add(ref _sent, attempt.BytesSent);
        Interlocked.Add(ref _received, attempt.BytesReceived);
        var status = attempt.Status;
        if (status >= 100 && status < 600 && attempt.HeaderTime >= 0)
        {
            _ = (status / 100) switch
            {
                1 => Interlocked.Increment(ref _r1),
                2 => Interlocked.Increment(ref _r2),
                3 => Interlocked.Increment(ref _r3),
                4 => Interlocked.Increment(ref _r4),
                _ => Interlocked.Increment(ref _r5),
            };
            Interlocked.Increment(ref _rTotal);
        }

        if (attempt.HeaderTime >= 0)
        {
            Average(ref _headerTime, attempt.HeaderTime);
        }

        if (attempt.ResponseTime >= 0)
        {
            Average(ref _responseTime, attempt.ResponseTime);
        }
    }

    /// <summary>Feeds a response time directly (tests, health checks).</summary>
    public void RecordTimes(long headerMs, long responseMs)
    {
        Average(ref _headerTime, headerMs);
        Average(ref _responseTime, responseMs);
    }

    /// <summary>nginx's ngx_http_upstream_response_time_avg: 5% of the new value, rounded.</summary>
    private static void Average(ref long avg, long value)
    {
        while (true)
        {
            var current = Interlocked.Read(ref avg);
            var next = current == 0 ? value : (long)(0.5 + value * 0.05 + current * 0.95);
            if (Interlocked.CompareExchange(ref avg, next, current) == current)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Records an active health check: "fails" failures in a row make the peer unhealthy, "passes" successes
    /// make it healthy again. Returns the state after the check.
    /// </summary>
    public HealthState Check(bool passed, int fails, int passes, long nowMs)
    {
        Interlocked.Increment(ref _checks);
        Volatile.Write(ref _lastPassed, passed ? 1 : 0);
        var state = Health;
        if (passed)
        {
            Volatile.Write(ref _consecutiveFails, 0);
            var n = Interlocked.Increment(ref _consecutivePasses);
            if (state == HealthState.Checking || (state == HealthState.Unhealthy && n >= passes))
            {
                Volatile.Write(ref _health, (int)HealthState.Healthy);
                if (state == HealthState.Unhealthy)
                {
                    Interlocked.Exchange(ref _fails, 0);
                    Recovered(nowMs);
                }

                return HealthState.Healthy;
            }

            return state;
        }

        Interlocked.Increment(ref _checkFails);
        Volatile.Write(ref _consecutivePasses, 0);
        var f = Interlocked.Increment(ref _consecutiveFails);
        if (state == HealthState.Checking || (state == HealthState.Healthy && f >= fails))
        {
            Volatile.Write(ref _health, (int)HealthState.Unhealthy);
            Interlocked.Increment(ref _unhealthy);
            WentDown(nowMs);
            return HealthState.Unhealthy;
        }

        return state;
    }

    /// <summary>A mandatory check watches a new peer: it takes no requests before its first check passes.</summary>
    public void StartChecking()
    {
        if (Interlocked.Read(ref _checks) == 0)
        {
            Volatile.Write(ref _health, (int)HealthState.Checking);
        }
    }

    /// <summary>Checks stopped watching the peer (the configuration dropped health_check): healthy again.</summary>
    public void StopChecking()
    {
        Volatile.Write(ref _health, (int)HealthState.Healthy);
        Volatile.Write(ref _consecutiveFails, 0);
        Volatile.Write(ref _consecutivePasses, 0);
    }
}
