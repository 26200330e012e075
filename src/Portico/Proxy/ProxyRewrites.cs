using System.Text;
using Portico.Pipeline;

namespace Portico.Proxy;

/// <summary>
/// proxy_redirect and proxy_cookie_domain / _path / _flags applied to upstream response headers, as
/// ngx_http_proxy_rewrite_redirect and ngx_http_proxy_rewrite_cookie do.
/// </summary>
public static class ProxyRewrites
{
    /// <summary>
    /// Applies the first matching rule to value[prefix..]; null when no rule matched (nginx's NGX_DECLINED).
    /// </summary>
    public static string? Apply(RequestContext r, CompiledRule[] rules, string value, int prefix)
    {
        var len = value.Length - prefix;
        foreach (var rule in rules)
        {
            switch (rule.Kind)
            {
                case RewriteRuleKind.Prefix:
                {
                    var pattern = rule.Pattern!.Evaluate(r);
                    if (pattern.Length > len || string.CompareOrdinal(value, prefix, pattern, 0, pattern.Length) != 0)
                    {
                        continue;
                    }

                    return Replace(value, prefix, pattern.Length, rule.Replacement.Evaluate(r));
                }

                case RewriteRuleKind.Regex:
                {
                    var m = rule.Regex!.Match(value, prefix, len);
                    if (!m.Success)
                    {
                        continue;
                    }

                    r.SetCaptures(rule.Regex, m, value);
                    return Replace(value, prefix, len, rule.Replacement.Evaluate(r));
                }

                default:
                {
                    var p = prefix;
                    var l = len;
                    if (l > 0 && value[p] == '.')
                    {
                        p++;
                        l--;
                    }

                    var pattern = rule.Pattern!.Evaluate(r);
                    if (pattern.Length != l || string.Compare(value, p, pattern, 0, l, StringComparison.OrdinalIgnoreCase) != 0)
                    {
                        continue;
                    }

                    return Replace(value, p, l, rule.Replacement.Evaluate(r));
                }
            }
        }

        return null;
    }

    private static string Replace(string value, int prefix, int len, string replacement) =>
        len == value.Length ? replacement : string.Concat(value.AsSpan(0, prefix), replacement, value.AsSpan(prefix + len));

    /// <summary>The Refresh header's "url=" part, rewritten by proxy_redirect; null when unchanged.</summary>
    public static string? Refresh(RequestContext r, CompiledRule[] rules, string value)
    {
        var i = value.IndexOf("url=", StringComparison.OrdinalIgnoreCase);
        return i < 0 ? null : Apply(r, rules, value, i + 4);
    }

    /// <summary>ngx_http_proxy_rewrite_cookie: a Set-Cookie value with domain, path and flags rewritten; null when unchanged.</summary>
    public static string? Cookie(RequestContext r, ProxyLocation loc, string value)
    {
        var attrs = Parse(value);
        if (attrs[0].Value is null)
        {
            return null;
        }

        var changed = false;
        for (var i = 1; i < attrs.Count; i++)
        {
            var (key, v) = attrs[i];
            if (v is null || key is null)
            {
                continue;
            }

            CompiledRule[]? rules = null;
            if (loc.CookieDomains is not null && key.Equals("domain", StringComparison.OrdinalIgnoreCase))
            {
                rules = loc.CookieDomains;
            }
            else if (loc.CookiePaths is not null && key.Equals("path", StringComparison.OrdinalIgnoreCase))
            {
                rules = loc.CookiePaths;
            }

            if (rules is not null && Apply(r, rules, v, 0) is { } rewritten)
            {
                attrs[i] = (key, rewritten);
                changed = true;
            }
        }

        if (loc.CookieFlags is not null && EditFlags(r, loc.CookieFlags, attrs))
        {
            changed = true;
        }

        if (!changed)
        {
            return null;
        }

        var sb = new StringBuilder(value.Length + 32);
        for (var i = 0; i < attrs.Count; i++)
        {
            var (key, v) = attrs[i];
            if (key is null)
            {
                continue;
            }

            if (i > 0)
            {
                sb.Append("; ");
            }

            sb.Append(key);
            if (v is not null)
            {
                sb.Append('=').Append(v);
            }
        }

        return sb.ToString();
    }

    /// <summary>ngx_http_proxy_parse_cookie: "name=value; attr; attr=value" into trimmed pairs (value null when no "=").</summary>
    public static List<(string? Key, string? Value)> Parse(string value)
    {
        var attrs = new List<(string?, string?)>();
        var start = 0;
        while (true)
        {
            var last = value.IndexOf(';', start);
            if (last < 0)
            {
                last = value.Length;
            }

            while (start < last && value[start] == ' ')
            {
                start++;
            }

            var p = start;
            while (p < last && value[p] != '=')
            {
                p++;
            }

            var name = value[start..p].TrimEnd(' ');
            string? val = null;
            if (p < last)
            {
                p++;
                while (p < last && value[p] == ' ')
                {
                    p++;
                }

                val = value[p..last].TrimEnd(' ');
            }

            attrs.Add((name, val));
            if (last == value.Length)
            {
                break;
            }

            start = last + 1;
        }

        return attrs;
    }

    [Flags]
    private enum Flag
    {
        None = 0,
        SecureOn = 1,
        SecureOff = 2,
        HttpOnlyOn = 4,
        HttpOnlyOff = 8,
        Strict = 16,
        Lax = 32,
        SameSiteNone = 64,
        SameSiteOff = 128,
    }

    private static bool EditFlags(RequestContext r, CompiledCookieFlags[] rules, List<(string? Key, string? Value)> attrs)
    {
        var name = attrs[0].Key ?? string.Empty;
        CompiledCookieFlags? match = null;
        foreach (var rule in rules)
        {
            if (rule.Regex is not null)
            {
                var m = rule.Regex.Match(name);
                if (m.Success)
                {
                    r.SetCaptures(rule.Regex, m, name);
                    match = rule;
                    break;
                }

                continue;
            }

            if (string.Equals(rule.Name!.Evaluate(r), name, StringComparison.OrdinalIgnoreCase))
            {
                match = rule;
                break;
            }
        }

        if (match is null)
        {
            return false;
        }

        var flags = Flag.None;
        foreach (var t in match.Flags)
        {
            flags |= t.Evaluate(r).ToLowerInvariant() switch
            {
                "secure" => Flag.SecureOn,
                "nosecure" => Flag.SecureOff,
                "httponly" => Flag.HttpOnlyOn,
                "nohttponly" => Flag.HttpOnlyOff,
                "samesite=strict" => Flag.Strict,
                "samesite=lax" => Flag.Lax,
                "samesite=none" => Flag.SameSiteNone,
                "nosamesite" => Flag.SameSiteOff,
                _ => Flag.None,
            };
        }

        if (flags == Flag.None)
        {
            return false;
        }

        for (var i = 1; i < attrs.Count; i++)
        {
            var key = attrs[i].Key;
            if (key is null)
            {
                continue;
            }

            if (key.Equals("secure", StringComparison.OrdinalIgnoreCase))
            {
                if ((flags & Flag.SecureOn) != 0)
                {
                    flags &= ~Flag.SecureOn;
                }
                else if ((flags & Flag.SecureOff) != 0)
                {
                    attrs[i] = (null, null);
                }
            }
            else if (key.Equals("httponly", StringComparison.OrdinalIgnoreCase))
            {
                if ((flags & Flag.HttpOnlyOn) != 0)
                {
                    flags &= ~Flag.HttpOnlyOn;
                }
                else if ((flags & Flag.HttpOnlyOff) != 0)
                {
                    attrs[i] = (null, null);
                }
            }
            else if (key.Equals("samesite", StringComparison.OrdinalIgnoreCase))
            {
                var v = attrs[i].Value ?? string.Empty;
                if ((flags & Flag.Strict) != 0)
                {
                    flags &= ~Flag.Strict;
                    if (!v.Equals("strict", StringComparison.OrdinalIgnoreCase))
                    {
                        attrs[i] = ("SameSite", "Strict");
                    }
                }
                else if ((flags & Flag.Lax) != 0)
                {
                    flags &= ~Flag.Lax;
                    if (!v.Equals("lax", StringComparison.OrdinalIgnoreCase))
                    {
                        attrs[i] = ("SameSite", "Lax");
                    }
                }
                else if ((flags & Flag.SameSiteNone) != 0)
                {
                    flags &= ~Flag.SameSiteNone;
                    if (!v.Equals("none", StringComparison.OrdinalIgnoreCase))
                    {
                        attrs[i] = ("SameSite", "None");
                    }
                }
                else if ((flags & Flag.SameSiteOff) != 0)
                {
                    attrs[i] = (null, null);
                }
            }
        }

        if ((flags & Flag.SecureOn) != 0)
        {
            attrs.Add(("Secure", null));
        }

        if ((flags & Flag.HttpOnlyOn) != 0)
        {
            attrs.Add(("HttpOnly", null));
        }

        if ((flags & (Flag.Strict | Flag.Lax | Flag.SameSiteNone)) != 0)
        {
            attrs.Add(("SameSite", (flags & Flag.Strict) != 0 ? "Strict" : (flags & Flag.Lax) != 0 ? "Lax" : "None"));
        }

        return true;
    }
}
