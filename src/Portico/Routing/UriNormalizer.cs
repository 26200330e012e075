using System.Text;

namespace Portico.Routing;

/// <summary>
/// nginx's ngx_http_parse_complex_uri: percent-decoding, "//" merging (merge_slashes), "/./" and "/../"
/// resolution; a URI that climbs above the root, or holds a NUL, is invalid (400).
/// </summary>
public static class UriNormalizer
{
    /// <summary>Splits a request target into its path and query (without "?"); absolute-form targets lose scheme and authority.</summary>
    public static void SplitTarget(string target, out string path, out string query, out string? host)
    {
        host = null;
        var p = target;
        if (!p.StartsWith('/') && (p.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || p.StartsWith("https://", StringComparison.OrdinalIgnoreCase)))
        {
            var start = p.IndexOf("//", StringComparison.Ordinal) + 2;
            var slash = p.IndexOf('/', start);
            var q0 = p.IndexOf('?', start);
            var end = slash < 0 ? (q0 < 0 ? p.Length : q0) : (q0 >= 0 && q0 < slash ? q0 : slash);
            host = p[start..end];
            p = end < p.Length ? (p[end] == '/' ? p[end..] : "/" + p[end..]) : "/";
        }

        var q = p.IndexOf('?');
        if (q < 0)
        {
            path = p;
            query = string.Empty;
        }
        else
        {
            path = p[..q];
            query = p[(q + 1)..];
        }
    }

    /// <summary>Decodes and normalizes a path. Returns false for a URI nginx answers with 400.</summary>
    public static bool TryNormalize(string rawPath, bool mergeSlashes, out string result)
    {
        result = rawPath;
        if (rawPath.Length == 0 || rawPath[0] != '/')
        {
            // "*" (OPTIONS *) and anything else without a leading slash is not a path we route.
            return false;
        }

        // Fast path: nothing to decode or resolve.
        if (!NeedsWork(rawPath, mergeSlashes))
        {
            return true;
        }

        // Decode percent-escapes into bytes, then interpret them as UTF-8 (Latin-1 when not valid UTF-8).
        var bytes = new byte[rawPath.Length];
        var n = 0;
        for (var i = 0; i < rawPath.Length; i++)
        {
            var c = rawPath[i];
            if (c == '%')
            {
                // ngx_http_parse_complex_uri: "%" must be followed by two hex digits, or the request is invalid.
                if (i + 2 >= rawPath.Length || !IsHex(rawPath[i + 1]) || !IsHex(rawPath[i + 2]))
                {
                    return false;
                }

                var b = (byte)((Hex(rawPath[i + 1]) << 4) | Hex(rawPath[i + 2]));
                if (b == 0)
                {
                    return false;
                }

                bytes[n++] = b;
                i += 2;
                continue;
            }

            if (c == '\0')
            {
                return false;
            }

            if (c > 0xFF)
            {
                var extra = Encoding.UTF8.GetBytes(c.ToString());
                if (n + extra.Length > bytes.Length)
                {
                    Array.Resize(ref bytes, bytes.Length + extra.Length + 16);
                }

                foreach (var e in extra)
                {
                    bytes[n++] = e;
                }

                continue;
            }

            bytes[n++] = (byte)c;
        }

        string decoded;
        try
        {
            decoded = StrictUtf8.GetString(bytes, 0, n);
        }
        catch (DecoderFallbackException)
        {
            decoded = Encoding.Latin1.GetString(bytes, 0, n);
        }

        // Resolve segments ("%2F" was decoded first, so it separates segments too, as in nginx).
        var parts = decoded.Split('/');
        var stack = new List<string>(parts.Length);
        var trailingSlash = false;
        for (var i = 1; i < parts.Length; i++)
        {
            var seg = parts[i];
            var isLast = i == parts.Length - 1;
            switch (seg)
            {
                case ".":
                    trailingSlash = isLast;
                    break;
                case "..":
                    if (stack.Count == 0)
                    {
                        return false;
                    }

                    stack.RemoveAt(stack.Count - 1);
                    trailingSlash = isLast;
                    break;
                case "":
                    if (isLast)
                    {
                        trailingSlash = true;
                    }
                    else if (!mergeSlashes)
                    {
                        stack.Add(string.Empty);
                    }

                    break;
                default:
                    stack.Add(seg);
                    trailingSlash = false;
                    break;
            }
        }

        var sb = new StringBuilder(decoded.Length);
        sb.Append('/');
        sb.AppendJoin('/', stack);
        if (trailingSlash && stack.Count > 0)
        {
            sb.Append('/');
        }

        result = sb.ToString();
        return true;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private static bool NeedsWork(string path, bool mergeSlashes)
    {
        for (var i = 0; i < path.Length; i++)
        {
            var c = path[i];
            if (c == '%' || c == '\0' || c > 0x7F)
            {
                return true;
            }

            if (c == '/' && i + 1 < path.Length)
            {
                var d = path[i + 1];
                if (d == '/' && mergeSlashes)
                {
                    return true;
                }

                if (d == '.' && (i + 2 == path.Length || path[i + 2] == '/' || (path[i + 2] == '.' && (i + 3 == path.Length || path[i + 3] == '/'))))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static bool IsHex(char c) => c is (>= '0' and <= '9') or (>= 'a' and <= 'f') or (>= 'A' and <= 'F');

    private static int Hex(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>ngx_http_validate_host: lower case, no port, no trailing dot; false when invalid (400).</summary>
    public static bool TryNormalizeHost(string host, out string result)
    {
        result = string.Empty;
        var dotPos = host.Length;
        var hostLen = host.Length;
        var port = 0;
        var lower = false;
        var state = 0; // 0 start, 1 host, 2 ip literal, 3 after literal, 4 port
        for (var i = 0; i < host.Length; i++)
        {
            var ch = host[i];
            switch (state)
            {
                case 0:
                    if (ch == '[')
                    {
                        state = 2;
                        break;
                    }

                    state = 1;
                    goto case 1;
                case 1:
                case 2:
                    if (ch is >= 'A' and <= 'Z')
                    {
                        lower = true;
                        break;
                    }

                    if (ch is (>= 'a' and <= 'z') or (>= '0' and <= '9'))
                    {
                        break;
                    }

                    switch (ch)
                    {
                        case ':':
                            if (state == 1)
                            {
                                hostLen = i;
                                state = 4;
                            }

                            break;
                        case ']':
                            if (state != 2)
                            {
                                return false;
                            }

                            hostLen = i + 1;
                            state = 3;
                            break;
                        case '.':
                            if (dotPos == i - 1)
                            {
                                return false;
                            }

                            dotPos = i;
                            break;
                        case '-' or '_' or '~' or '!' or '$' or '&' or '\'' or '(' or ')' or '*' or '+' or ',' or ';' or '=':
                            break;
                        case '%' when state == 1:
                            break;
                        default:
                            return false;
                    }

                    break;
                case 3:
                    if (ch != ':')
                    {
                        return false;
                    }

                    state = 4;
                    break;
                default:
                    if (ch is < '0' or > '9')
                    {
                        return false;
                    }

                    port = port * 10 + (ch - '0');
                    if (port > 65535)
                    {
                        return false;
                    }

                    break;
            }
        }

        if (state == 2)
        {
            return false;
        }

        if (dotPos == hostLen - 1)
        {
            hostLen--;
        }

        if (hostLen <= 0)
        {
            return false;
        }

        var span = host.AsSpan(0, hostLen);
        result = lower ? span.ToString().ToLowerInvariant() : (hostLen == host.Length ? host : span.ToString());
        return true;
    }
}
