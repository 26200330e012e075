namespace Portico.Upstreams;

/// <summary>
/// The peers of a group at one moment: primaries and backups, each a <see cref="PeerList"/> with what the
/// balancers precompute from it (the smooth weighted round robin schedule, the consistent hash ring).
/// Immutable; a change publishes a new set.
/// </summary>
public sealed class PeerSet
{
    public PeerSet(IReadOnlyList<UpstreamPeer> peers, bool resolving)
    {
        var primary = new List<UpstreamPeer>();
        var backup = new List<UpstreamPeer>();
        foreach (var p in peers)
        {
            (p.Backup ? backup : primary).Add(p);
        }

        Primary = new PeerList([.. primary]);
        Backup = new PeerList([.. backup]);
        All = [.. primary, .. backup];
        // ngx_http_upstream_init_round_robin: one server without backups (and nothing resolved at run time)
        // is "single": it is never taken out by max_fails.
        Single = primary.Count == 1 && backup.Count == 0 && !resolving;
        Resolving = resolving;
    }

    public PeerList Primary { get; }
    public PeerList Backup { get; }
    public IReadOnlyList<UpstreamPeer> All { get; }
    public bool Single { get; }
    public bool Resolving { get; }

    /// <summary>nginx's peer.tries: the servers that are not down, primaries and backups.</summary>
    public int Tries(bool withBackup)
    {
        var n = 0;
        foreach (var p in Primary.Peers)
        {
            if (!p.IsDown)
            {
                n++;
            }
        }

        if (withBackup)
        {
            foreach (var p in Backup.Peers)
            {
                if (!p.IsDown)
                {
                    n++;
                }
            }
        }

        return n;
    }

    public UpstreamPeer? FindById(int id)
    {
        foreach (var p in All)
        {
            if (p.State.Id == id)
            {
                return p;
            }
        }

        return null;
    }

    /// <summary>A copy with one peer replaced, added (null old) or removed (null replacement).</summary>
    public PeerSet Replace(UpstreamPeer? old, UpstreamPeer? replacement)
    {
        var list = new List<UpstreamPeer>(All.Count + 1);
        var done = false;
        foreach (var p in All)
        {
            if (old is not null && ReferenceEquals(p, old))
            {
                if (replacement is not null)
                {
                    list.Add(replacement);
                }

                done = true;
                continue;
            }

            list.Add(p);
        }

        if (!done && replacement is not null)
        {
            list.Add(replacement);
        }

        list.Sort((a, b) => a.State.Id.CompareTo(b.State.Id));
        return new PeerSet(list, Resolving);
    }
}

/// <summary>Primaries or backups of a set, with the balancers' precomputed tables.</summary>
public sealed class PeerList
{
    private int[]? _schedule;
    private long _cursor = -1;
    private object? _ring;

    public PeerList(UpstreamPeer[] peers)
    {
        Peers = peers;
        var total = 0;
        foreach (var p in peers)
        {
            total += p.Weight;
        }

        TotalWeight = total;
    }

    public UpstreamPeer[] Peers { get; }
    public int Count => Peers.Length;
    public int TotalWeight { get; }

    /// <summary>
    /// nginx's smooth weighted round robin over one full cycle (total weight picks) with every peer
    /// available: weights 5,1,1 give a,a,b,a,c,a,a. Requests walk it with one Interlocked cursor.
    /// </summary>
    public int[] Schedule => _schedule ??= BuildSchedule(Peers);

    /// <summary>The next position of the shared cursor (the start of one pick).</summary>
    public long NextCursor() => Interlocked.Increment(ref _cursor);

    /// <summary>A table a balancer builds once per list (the consistent hash ring).</summary>
    public T Table<T>(Func<PeerList, T> build) where T : class
    {
        if (Volatile.Read(ref _ring) is T t)
        {
            return t;
        }

        var created = build(this);
        Interlocked.CompareExchange(ref _ring, created, null);
        return (T)Volatile.Read(ref _ring)!;
    }

    public static int[] BuildSchedule(UpstreamPeer[] peers)
    {
        if (peers.Length == 0)
        {
            return [];
        }

        long total = 0;
        foreach (var p in peers)
        {
            total += Math.Max(1, p.Weight);
        }

        // Very large weights: the cycle is scaled down (the proportions stay).
        var scale = total > 1 << 16 ? (double)(1 << 16) / total : 1.0;
        var weights = new long[peers.Length];
        total = 0;
        for (var i = 0; i < peers.Length; i++)
        {
            weights[i] = Math.Max(1, (long)(Math.Max(1, peers[i].Weight) * scale));
            total += weights[i];
        }

        var current = new long[peers.Length];
        var schedule = new int[total];
        for (var step = 0; step < total; step++)
        {
            var best = -1;
            for (var i = 0; i < peers.Length; i++)
            {
                current[i] += weights[i];
                if (best < 0 || current[i] > current[best])
                {
                    best = i;
                }
            }

            current[best] -= total;
            schedule[step] = best;
        }

        return schedule;
    }
}

/// <summary>Per-group state kept by identity across reloads: peer ids and the max_conns queue.</summary>
public sealed class GroupState
{
    private int _nextId;

    /// <summary>The id of a new peer (the API's "id"; never reused within the group).</summary>
    public int NextId() => Interlocked.Increment(ref _nextId) - 1;

    public UpstreamQueue Queue { get; } = new();
}
