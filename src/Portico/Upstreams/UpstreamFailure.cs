namespace Portico.Upstreams;

/// <summary>
/// How one attempt at an upstream peer failed: nginx's NGX_HTTP_UPSTREAM_FT_* flags. Every attempt is
/// classified once, by the transport; <c>proxy_next_upstream</c>, stale cache use and passive health all
/// read this value and nothing else. The names parse from nginx's configuration words.
/// </summary>
[Flags]
public enum UpstreamFailure
{
    None = 0,

    /// <summary>Connecting, sending the request or reading the response header failed ("error").</summary>
    Error = 0x2,

    /// <summary>A connect, send or read timeout expired ("timeout").</summary>
    Timeout = 0x4,

    /// <summary>The peer answered with something that is not a valid HTTP response ("invalid_header").</summary>
    InvalidHeader = 0x8,

    Http500 = 0x10,
    Http502 = 0x20,
    Http503 = 0x40,
    Http504 = 0x80,
    Http403 = 0x100,
    Http404 = 0x200,
    Http429 = 0x400,

    /// <summary>A cache entry is being updated ("updating", cache use only).</summary>
    Updating = 0x800,

    /// <summary>A cache lock could not be acquired (cache use only).</summary>
    BusyLock = 0x1000,

    /// <summary>Too many requests wait for a cache lock (cache use only).</summary>
    MaxWaiting = 0x2000,

    /// <summary>The request was already sent and its method is POST, LOCK or PATCH ("non_idempotent").</summary>
    NonIdempotent = 0x4000,

    /// <summary>Every peer of the group is down ("no live upstreams").</summary>
    NoLive = 0x40000000,

    /// <summary>"off": never pass a request to the next peer.</summary>
    Off = unchecked((int)0x80000000),

    /// <summary>Every status flag (http_500 ... http_429).</summary>
    AnyStatus = Http500 | Http502 | Http503 | Http504 | Http403 | Http404 | Http429,
}

/// <summary>Maps between failure flags, response statuses and nginx's words.</summary>
public static class UpstreamFailures
{
    /// <summary>nginx's default proxy_next_upstream: error timeout.</summary>
    public const UpstreamFailure DefaultNextUpstream = UpstreamFailure.Error | UpstreamFailure.Timeout;

    /// <summary>The flag of an upstream response status nginx knows (ngx_http_upstream_next_errors), or None.</summary>
    public static UpstreamFailure ForStatus(int status) => status switch
    {
        500 => UpstreamFailure.Http500,
        502 => UpstreamFailure.Http502,
        503 => UpstreamFailure.Http503,
        504 => UpstreamFailure.Http504,
        403 => UpstreamFailure.Http403,
        404 => UpstreamFailure.Http404,
        429 => UpstreamFailure.Http429,
        _ => UpstreamFailure.None,
    };

    /// <summary>The status the client gets when the last attempt failed this way (ngx_http_upstream_next).</summary>
    public static int ClientStatus(UpstreamFailure failure)
    {
        var f = failure & ~UpstreamFailure.NonIdempotent;
        return f switch
        {
            UpstreamFailure.Timeout or UpstreamFailure.Http504 => 504,
            UpstreamFailure.Http500 => 500,
            UpstreamFailure.Http503 => 503,
            UpstreamFailure.Http403 => 403,
            UpstreamFailure.Http404 => 404,
            UpstreamFailure.Http429 => 429,
            _ => 502,
        };
    }

    /// <summary>Whether the method makes a sent request non-idempotent for retries (POST, LOCK, PATCH).</summary>
    public static bool IsNonIdempotent(string method) =>
        method is "POST" or "LOCK" or "PATCH";

    /// <summary>Parses one word of proxy_next_upstream / proxy_cache_use_stale; false when unknown.</summary>
    public static bool TryParse(string word, out UpstreamFailure flag)
    {
        flag = word switch
        {
            "error" => UpstreamFailure.Error,
            "timeout" => UpstreamFailure.Timeout,
            "invalid_header" => UpstreamFailure.InvalidHeader,
            "non_idempotent" => UpstreamFailure.NonIdempotent,
            "http_500" => UpstreamFailure.Http500,
            "http_502" => UpstreamFailure.Http502,
            "http_503" => UpstreamFailure.Http503,
            "http_504" => UpstreamFailure.Http504,
            "http_403" => UpstreamFailure.Http403,
            "http_404" => UpstreamFailure.Http404,
            "http_429" => UpstreamFailure.Http429,
            "updating" => UpstreamFailure.Updating,
            "off" => UpstreamFailure.Off,
            _ => UpstreamFailure.None,
        };
        return flag != UpstreamFailure.None;
    }

    /// <summary>
    /// nginx's test in ngx_http_upstream_next / test_next: may this failure go to the next peer under a policy?
    /// A request already sent with a non-idempotent method needs "non_idempotent" in the policy too.
    /// </summary>
    public static bool AllowsNext(UpstreamFailure policy, UpstreamFailure failure)
    {
        if ((policy & UpstreamFailure.Off) != 0 || failure == UpstreamFailure.None)
        {
            return false;
        }

        return (policy & failure) == failure;
    }
}

/// <summary>proxy_next_upstream (and grpc_/fastcgi_ twins): nginx's bitmask of failure words.</summary>
public static class NextUpstreamPolicy
{
    /// <summary>ngx_conf_set_bitmask_slot over ngx_http_proxy_next_upstream_masks; "off" wins over the rest.</summary>
    public static UpstreamFailure Parse(Config.Directives.DirectiveCall c)
    {
        var policy = UpstreamFailure.None;
        for (var i = 0; i < c.Count; i++)
        {
            var word = c[i];
            if (word is "updating" || !UpstreamFailures.TryParse(word, out var flag))
            {
                throw c.InvalidValue(i);
            }

            if ((policy & flag) != 0)
            {
                c.Warn($"duplicate value \"{word}\"");
            }

            policy |= flag;
        }

        return (policy & UpstreamFailure.Off) != 0 ? UpstreamFailure.Off : policy;
    }
}
