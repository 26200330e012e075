using System.Net;
using Portico.Config.Directives;

namespace Portico.Upstreams;

/// <summary>The "server" directive of an upstream block (ngx_http_upstream_server), with nginx's messages.</summary>
internal static class UpstreamServer
{
    public static void Bind(DirectiveCall c)
    {
        var spec = UpstreamModule.Spec(c);
        var server = new ServerSpec(c.Directive, c[0]);
        for (var i = 1; i < c.Count; i++)
        {
            var a = c[i];
            if (a.StartsWith("weight=", StringComparison.Ordinal))
            {
                Need(c, spec, ServerParameters.Weight, a);
                server.Weight = Int(c, a, 7, allowZero: false);
            }
            else if (a.StartsWith("max_conns=", StringComparison.Ordinal))
            {
                Need(c, spec, ServerParameters.MaxConns, a);
                server.MaxConns = Int(c, a, 10, allowZero: true);
            }
            else if (a.StartsWith("max_fails=", StringComparison.Ordinal))
            {
                Need(c, spec, ServerParameters.MaxFails, a);
                server.MaxFails = Int(c, a, 10, allowZero: true);
            }
            else if (a.StartsWith("fail_timeout=", StringComparison.Ordinal))
            {
                Need(c, spec, ServerParameters.FailTimeout, a);
                if (!ConfigValues.TryParseSeconds(a[13..], out var s))
                {
                    throw c.Emerg($"invalid parameter \"{a}\"");
                }

                server.FailTimeout = TimeSpan.FromSeconds(s);
            }
            else if (a.StartsWith("slow_start=", StringComparison.Ordinal))
            {
                if (!ConfigValues.TryParseSeconds(a[11..], out var s))
                {
                    throw c.Emerg($"invalid parameter \"{a}\"");
                }

                server.SlowStart = TimeSpan.FromSeconds(s);
            }
            else if (a == "backup")
            {
                Need(c, spec, ServerParameters.Backup, a);
                server.Backup = true;
            }
            else if (a == "down")
            {
                Need(c, spec, ServerParameters.Down, a);
                server.Down = true;
            }
            else if (a == "drain")
            {
                Need(c, spec, ServerParameters.Down, a);
                server.Drain = true;
            }
            else if (a == "resolve")
            {
                server.Resolve = true;
            }
            else
            {
                throw c.Emerg($"invalid parameter \"{a}\"");
            }
        }

        ParseAddress(c, server);
        spec.Servers.Add(server);
    }

    private static void Need(DirectiveCall c, UpstreamBlockSpec spec, ServerParameters p, string a)
    {
        if ((spec.Allowed & p) == 0)
        {
            throw c.Emerg($"balancing method does not support parameter \"{a}\"");
        }
    }

    private static int Int(DirectiveCall c, string a, int skip, bool allowZero)
    {
        if (!ConfigValues.TryParseNumber(a[skip..], out var n) || n > int.MaxValue || (!allowZero && n == 0))
        {
            throw c.Emerg($"invalid parameter \"{a}\"");
        }

        return (int)n;
    }

    /// <summary>ngx_parse_url for a server: "unix:/path", "[v6]:port", "host:port", "host" (port 80).</summary>
    private static void ParseAddress(DirectiveCall c, ServerSpec s)
    {
        var url = s.Address;
        if (url.StartsWith("unix:", StringComparison.OrdinalIgnoreCase))
        {
            var path = url[5..];
            if (path.Length == 0)
            {
                throw c.Emerg($"no path in the unix domain socket in upstream \"{url}\"");
            }

            s.UnixPath = path;
            s.Host = url;
            s.Port = 0;
            return;
        }

        if (url.Contains("://", StringComparison.Ordinal))
        {
            throw c.Emerg($"invalid host in upstream \"{url}\"");
        }

        string host;
        string? port = null;
        if (url.StartsWith('['))
        {
            var close = url.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || !IPAddress.TryParse(url[1..close], out _))
            {
                throw c.Emerg($"invalid IPv6 address in upstream \"{url}\"");
            }

            host = url[..(close + 1)];
            if (close + 1 < url.Length)
            {
                if (url[close + 1] != ':')
                {
                    throw c.Emerg($"invalid host in upstream \"{url}\"");
                }

                port = url[(close + 2)..];
            }
        }
        else
        {
            var colon = url.LastIndexOf(':');
            host = colon < 0 ? url : url[..colon];
            port = colon < 0 ? null : url[(colon + 1)..];
        }

        if (host.Length == 0)
        {
            throw c.Emerg($"no host in upstream \"{url}\"");
        }

        if (port is not null)
        {
            if (!int.TryParse(port, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p) || p is < 1 or > 65535)
            {
                throw c.Emerg($"invalid port in upstream \"{url}\"");
            }

            s.Port = p;
        }

        s.Host = host;
    }
}
