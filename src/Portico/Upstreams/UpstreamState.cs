using System.Globalization;
using System.Text;
using Portico.Pipeline;

namespace Portico.Upstreams;

/// <summary>
/// What one attempt at an upstream peer did (nginx's ngx_http_upstream_state_t): the source of
/// $upstream_addr, $upstream_status, the timing and byte counter variables.
/// </summary>
public sealed class UpstreamAttemptState
{
    /// <summary>The peer name; null marks the boundary between two upstream exchanges of one request
    /// (an internal redirect that proxied again), printed as " : ".</summary>
    public string? Peer { get; set; }

    /// <summary>The upstream status, or 502/504 when the attempt failed; 0 when unknown ("-").</summary>
    public int Status { get; set; }

    /// <summary>Milliseconds; -1 prints "-".</summary>
    public long ConnectTime { get; set; } = -1;

    public long HeaderTime { get; set; } = -1;

    /// <summary>Milliseconds spent in the max_conns queue ($upstream_queue_time); -1 prints "-".</summary>
    public long QueueTime { get; set; } = -1;
    public long ResponseTime { get; set; } = -1;

    public long BytesSent { get; set; }
    public long BytesReceived { get; set; }

    /// <summary>Body bytes received ($upstream_response_length).</summary>
    public long ResponseLength { get; set; }

    /// <summary>Makes a used state serve another attempt: as a new one for the peer.</summary>
    internal UpstreamAttemptState Reset(string? peer)
    {
        Peer = peer;
        Status = 0;
        ConnectTime = -1;
        HeaderTime = -1;
        QueueTime = -1;
        ResponseTime = -1;
        BytesSent = 0;
        BytesReceived = 0;
        ResponseLength = 0;
        return this;
    }
}

/// <summary>The upstream attempts of one request and the last upstream response head.</summary>
public sealed class UpstreamStates : IReusableState
{
    private static readonly Pipeline.RequestKey Key = new();

    // Attempt states of the request this object served before, for the attempts of this one.
    private readonly Stack<UpstreamAttemptState> _spare = new();

    public List<UpstreamAttemptState> Attempts { get; } = [];

    /// <summary>Headers of the last upstream response, as received ($upstream_http_NAME, $upstream_cookie_NAME).</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? ResponseHeaders { get; set; }

    /// <summary>Trailers of the last upstream response ($upstream_trailer_NAME).</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? ResponseTrailers { get; set; }

    public static UpstreamStates? Of(RequestContext r) => r.GetItem<UpstreamStates>(Key);

    public static UpstreamStates For(RequestContext r)
    {
        var states = r.GetItem<UpstreamStates>(Key);
        if (states is null)
        {
            states = r.TakeReusable<UpstreamStates>(Key)?.Reset() ?? new UpstreamStates();
            r.SetItem(Key, states);
        }

        return states;
    }

    /// <summary>Empties a used object for another request (its attempt states serve again).</summary>
    internal UpstreamStates Reset()
    {
        foreach (var attempt in Attempts)
        {
            if (_spare.Count < 8)
            {
                _spare.Push(attempt);
            }
        }

        Attempts.Clear();
        ResponseHeaders = null;
        ResponseTrailers = null;
        return this;
    }

    private UpstreamAttemptState NewAttempt(string? peer) =>
        _spare.TryPop(out var used) ? used.Reset(peer) : new UpstreamAttemptState { Peer = peer };

    /// <summary>Starts a new upstream exchange for the request: a separator when it proxied before.</summary>
    public void BeginExchange()
    {
        if (Attempts.Count > 0)
        {
            Attempts.Add(NewAttempt(null));
        }

        ResponseHeaders = null;
        ResponseTrailers = null;
    }

    public UpstreamAttemptState Add(string peer)
    {
        var s = NewAttempt(peer);
        Attempts.Add(s);
        return s;
    }

    public string Format(Func<UpstreamAttemptState, string> value)
    {
        var sb = new StringBuilder();
        var i = 0;
        while (true)
        {
            sb.Append(value(Attempts[i]));
            if (++i == Attempts.Count)
            {
                break;
            }

            if (Attempts[i].Peer is not null)
            {
                sb.Append(", ");
            }
            else
            {
                sb.Append(" : ");
                if (++i == Attempts.Count)
                {
                    break;
                }
            }
        }

        return sb.ToString();
    }

    public static string Milliseconds(long ms)
    {
        if (ms == -1)
        {
            return "-";
        }

        ms = Math.Max(ms, 0);
        return (ms / 1000).ToString(CultureInfo.InvariantCulture) + "." + (ms % 1000).ToString("000", CultureInfo.InvariantCulture);
    }

    /// <summary>ngx_http_variable_unknown_header: the named header, "_" matching "-", several joined.</summary>
    public static string? Header(IReadOnlyList<KeyValuePair<string, string>>? headers, string name)
    {
        if (headers is null)
        {
            return null;
        }

        string? first = null;
        StringBuilder? joined = null;
        var cookie = name.Equals("cookie", StringComparison.OrdinalIgnoreCase);
        foreach (var (key, value) in headers)
        {
            if (!NameMatches(key, name))
            {
                continue;
            }

            if (first is null)
            {
                first = value;
                continue;
            }

            joined ??= new StringBuilder(first);
            joined.Append(cookie ? "; " : ", ").Append(value);
        }

        return joined?.ToString() ?? first;
    }

    /// <summary>Compares a header name with a variable suffix: case-insensitive, "-" in the header equals "_".</summary>
    public static bool NameMatches(string header, string variableSuffix)
    {
        if (header.Length != variableSuffix.Length)
        {
            return false;
        }

        for (var i = 0; i < header.Length; i++)
        {
            var h = char.ToLowerInvariant(header[i]);
            if (h == '-')
            {
                h = '_';
            }

            if (h != char.ToLowerInvariant(variableSuffix[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>$upstream_cookie_NAME: the value of the named cookie in the upstream's Set-Cookie lines.</summary>
    public static string? SetCookie(IReadOnlyList<KeyValuePair<string, string>>? headers, string name)
    {
        if (headers is null)
        {
            return null;
        }

        foreach (var (key, value) in headers)
        {
            if (!key.Equals("Set-Cookie", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var eq = value.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !value.AsSpan(0, eq).Trim().Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var end = value.IndexOf(';', eq + 1);
            return (end < 0 ? value[(eq + 1)..] : value[(eq + 1)..end]).Trim();
        }

        return null;
    }
}
