using System.Net;
using Portico.Config.Directives;
using Portico.Config.Model;

namespace Portico.Upstreams.Resolution;

/// <summary>resolver address ... [valid=time] [ipv4=on|off] [ipv6=on|off] [status_zone=zone].</summary>
public sealed class ResolverSpec
{
    public required IReadOnlyList<IPEndPoint> Servers { get; init; }

    /// <summary>valid=: overrides the records' TTL.</summary>
    public TimeSpan? Valid { get; init; }

    public bool Ipv4 { get; init; } = true;
    public bool Ipv6 { get; init; } = true;
    public string? StatusZone { get; init; }

    /// <summary>ngx_resolver_create's parsing and messages.</summary>
    public static ResolverSpec Parse(DirectiveCall c)
    {
        var servers = new List<IPEndPoint>();
        TimeSpan? valid = null;
        bool ipv4 = true, ipv6 = true;
        string? zone = null;
        for (var i = 0; i < c.Count; i++)
        {
            var a = c[i];
            if (a.StartsWith("valid=", StringComparison.Ordinal))
            {
                if (!ConfigValues.TryParseSeconds(a[6..], out var s))
                {
                    throw c.Emerg($"invalid parameter: {a}");
                }

                valid = TimeSpan.FromSeconds(s);
            }
            else if (a.StartsWith("ipv4=", StringComparison.Ordinal))
            {
                ipv4 = OnOff(c, a, 5);
            }
            else if (a.StartsWith("ipv6=", StringComparison.Ordinal))
            {
                ipv6 = OnOff(c, a, 5);
            }
            else if (a.StartsWith("status_zone=", StringComparison.Ordinal))
            {
                zone = a[12..];
            }
            else
            {
                servers.Add(ParseAddress(c, a));
            }
        }

        if (!ipv4 && !ipv6)
        {
            throw c.Emerg("\"ipv4\" and \"ipv6\" cannot both be \"off\"");
        }

        if (servers.Count == 0)
        {
            throw c.Error("invalid number of arguments");
        }

        return new ResolverSpec { Servers = servers, Valid = valid, Ipv4 = ipv4, Ipv6 = ipv6, StatusZone = zone };
    }

    private static bool OnOff(DirectiveCall c, string a, int skip) => a[skip..] switch
    {
        "on" => true,
        "off" => false,
        _ => throw c.Emerg($"invalid parameter: {a}"),
    };

    private static IPEndPoint ParseAddress(DirectiveCall c, string a)
    {
        var host = a;
        var port = 53;
        if (a.StartsWith('['))
        {
            var close = a.IndexOf(']', StringComparison.Ordinal);
            if (close > 0)
            {
                host = a[1..close];
                if (close + 1 < a.Length && a[close + 1] == ':' && int.TryParse(a[(close + 2)..], System.Globalization.CultureInfo.InvariantCulture, out var p6))
                {
                    port = p6;
                }
            }
        }
        else if (a.IndexOf(':', StringComparison.Ordinal) is var colon and > 0 && a.IndexOf(':', colon + 1) < 0)
        {
            host = a[..colon];
            if (!int.TryParse(a[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
            {
                throw c.Emerg($"invalid port in \"{a}\"");
            }
        }

        if (IPAddress.TryParse(host, out var ip))
        {
            return new IPEndPoint(ip, port);
        }

        var resolved = UpstreamRegistry.ResolveHost(host);
        if (resolved is null || resolved.Count == 0)
        {
            throw c.Emerg($"host not found in resolver \"{a}\"");
        }

        return new IPEndPoint(resolved[0], port);
    }
}

/// <summary>resolver and resolver_timeout at http, server and location level.</summary>
public sealed class ResolverSettings : Settings<ResolverSettings>
{
    public ResolverSpec? Resolver { get; set; }
    public TimeSpan? Timeout { get; set; }

    public override void MergeFrom(ResolverSettings parent)
    {
        Resolver ??= parent.Resolver;
        Timeout ??= parent.Timeout ?? TimeSpan.FromSeconds(30);
    }
}
