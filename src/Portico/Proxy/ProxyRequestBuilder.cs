using System.Text;
using Portico.ClientSide;
using Portico.Config.Syntax;
using Portico.Logging;
using Portico.Pipeline;
using Portico.Routing;

namespace Portico.Proxy;

/// <summary>The proxy's per-request state (nginx's ngx_http_proxy_ctx_t): the URL in use and the body framing.</summary>
public sealed class ProxyRun : IReusableState
{
    private static readonly Pipeline.RequestKey Key = new();

    public ProxyRun(ProxyUrl url)
    {
        Url = url;
    }

    /// <summary>The URL of this request ($proxy_host, $proxy_port).</summary>
    public ProxyUrl Url { get; private set; }

    /// <summary>A new run for the request (from the one an earlier request left, when there is one), set as its state.</summary>
    public static ProxyRun Start(RequestContext r, ProxyUrl url)
    {
        var run = r.TakeReusable<ProxyRun>(Key);
        if (run is null)
        {
            run = new ProxyRun(url);
        }
        else
        {
            run.Url = url;
            run.InternalBodyLength = -1;
            run.InternalChunked = false;
            run._logPrefix = null;
            run._logPeer = null;
            run._logSuffix = null;
            run._logText = null;
        }

        Set(r, run);
        return run;
    }

    private string? _logPrefix;
    private string? _logPeer;
    private string? _logSuffix;
    private string? _logText;

    /// <summary>Sets the error log's upstream part ("http://peer/uri") to the peer now tried; built when a line needs it.</summary>
    public void SetLogUpstream(RequestContext r, string prefix, string peer, string suffix)
    {
        _logPrefix = prefix;
        _logPeer = peer;
        _logSuffix = suffix;
        _logText = null;
        r.SetItem(RequestLogFormat.UpstreamLogKey, this);
    }

    /// <summary>The error log's upstream part.</summary>
    public override string ToString() => _logText ??= _logPrefix + _logPeer + _logSuffix;

    /// <summary>$proxy_internal_body_length: -1 when unknown (streamed chunked) or absent.</summary>
    public long InternalBodyLength { get; set; } = -1;

    /// <summary>$proxy_internal_chunked: the body is streamed without a length.</summary>
    public bool InternalChunked { get; set; }

    public static ProxyRun? Of(RequestContext r) => r.GetItem<ProxyRun>(Key);

    public static void Set(RequestContext r, ProxyRun run) => r.SetItem(Key, run);
}

/// <summary>nginx's ngx_http_proxy_create_request: the request target and the headers sent to the origin.</summary>
public static class ProxyRequestBuilder
{
    /// <summary>The request target: the client's unparsed URI, the URI with the location prefix replaced, or the URL built from variables.</summary>
    public static string Target(RequestContext r, ProxyLocation loc, ProxyUrl url)
    {
        if (loc.UrlTemplate is not null && url.Uri is not null)
        {
            return url.Uri;
        }

        if (url.Uri is null && r.ValidUnparsedUri)
        {
            return UnparsedUri(r.RawTarget);
        }

        var validLocation = ClientModule.ValidLocation(r);
        var uri = r.Uri;
        var locLen = validLocation && url.Uri is not null ? Math.Min(loc.LocationName.Length, uri.Length) : 0;
        var escape = r.Internal || !r.ValidUnparsedUri || RawPathQuoted(r.RawTarget);
        var sb = new StringBuilder(uri.Length + (url.Uri?.Length ?? 0) + r.Args.Length + 8);
        if (validLocation && url.Uri is not null)
        {
            sb.Append(url.Uri);
        }

        if (escape)
        {
            EscapeUri(sb, uri.AsSpan(locLen));
        }
        else
        {
            sb.Append(uri, locLen, uri.Length - locLen);
        }

        if (r.Args.Length > 0)
        {
            sb.Append('?').Append(r.Args);
        }

        return sb.ToString();
    }

    /// <summary>The request target as received, without scheme and host of an absolute-form target.</summary>
    public static string UnparsedUri(string raw)
    {
        if (raw.StartsWith('/'))
        {
            return raw;
        }

        UriNormalizer.SplitTarget(raw, out var path, out var query, out _);
        return raw.Contains('?', StringComparison.Ordinal) ? path + "?" + query : path;
    }

    private static bool RawPathQuoted(string raw)
    {
        var q = raw.IndexOf('?', StringComparison.Ordinal);
        return (q < 0 ? raw.AsSpan() : raw.AsSpan(0, q)).Contains('%');
    }

    /// <summary>ngx_escape_uri with NGX_ESCAPE_URI: controls, space, " # % &lt; &gt; ? \ ^ ` { | } and non-ASCII as %XX.</summary>
    public static void EscapeUri(StringBuilder sb, ReadOnlySpan<char> uri)
    {
        var clean = true;
        foreach (var c in uri)
        {
            if (NeedsEscape(c))
            {
                clean = false;
                break;
            }
        }

        if (clean)
        {
            sb.Append(uri);
            return;
        }

        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < uri.Length; i++)
        {
            var c = uri[i];
            if (!NeedsEscape(c))
            {
                sb.Append(c);
                continue;
            }

            if (c < 0x80)
            {
                AppendHex(sb, (byte)c);
                continue;
            }

            var len = char.IsHighSurrogate(c) && i + 1 < uri.Length
                ? Encoding.UTF8.GetBytes(uri.Slice(i++, 2), utf8)
                : Encoding.UTF8.GetBytes(uri.Slice(i, 1), utf8);
            for (var k = 0; k < len; k++)
            {
                AppendHex(sb, utf8[k]);
            }
        }
    }

    private static bool NeedsEscape(char c) =>
        c <= ' ' || c >= 0x7F || c is '"' or '#' or '%' or '<' or '>' or '?' or '\\' or '^' or '`' or '{' or '|' or '}';

    private static void AppendHex(StringBuilder sb, byte b)
    {
        const string hex = "0123456789ABCDEF";
        sb.Append('%').Append(hex[b >> 4]).Append(hex[b & 0xF]);
    }

    /// <summary>
    /// The headers sent to the origin: the compiled proxy_set_header list (empty values skipped), then the
    /// client's headers nginx passes (those not named by proxy_set_header, not hop-by-hop, valid names).
    /// </summary>
    public static List<KeyValuePair<string, string>> Headers(RequestContext r, ProxyLocation loc, List<KeyValuePair<string, string>>? reuse = null)
    {
        var capacity = loc.Headers.Length + r.Http.Request.Headers.Count;
        List<KeyValuePair<string, string>> headers;
        if (reuse is null)
        {
            headers = new List<KeyValuePair<string, string>>(capacity);
        }
        else
        {
            headers = reuse;
            headers.Clear();
            headers.EnsureCapacity(capacity);
        }

        foreach (var h in loc.Headers)
        {
            var value = h.Value.Evaluate(r);
            if (value.Length == 0 && h.Fallback is { } fallback)
            {
                value = fallback.Evaluate(r);
            }

            if (value.Length > 0)
            {
                headers.Add(new KeyValuePair<string, string>(h.Name, value));
            }
        }

        if (!loc.PassRequestHeaders)
        {
            return headers;
        }

        var client = r.Http.Request.Headers;
        HashSet<string>? connectionTokens = null;
        if (client.Connection is { Count: > 0 } connection)
        {
            foreach (var line in connection)
            {
                if (line is null)
                {
                    continue;
                }

                foreach (var token in line.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    (connectionTokens ??= new HashSet<string>(StringComparer.OrdinalIgnoreCase)).Add(token);
                }
            }
        }

        foreach (var (name, values) in client)
        {
            if (loc.HeaderNames.Contains(name) || connectionTokens?.Contains(name) == true)
            {
                continue;
            }

            if (!ClientModule.IsValidHeaderName(name, loc.UnderscoresInHeaders))
            {
                if (loc.IgnoreInvalidHeaders)
                {
                    r.LogError(LogLevel.Info, $"client sent invalid header line: \"{name}: {values}\"");
                    continue;
                }
            }

            foreach (var value in values)
            {
                if (value is not null)
                {
                    headers.Add(new KeyValuePair<string, string>(name, value));
                }
            }
        }

        return headers;
    }
}
