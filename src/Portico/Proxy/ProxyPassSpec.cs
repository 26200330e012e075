using System.Globalization;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Proxy;

/// <summary>
/// The parts of a proxy_pass URL (ngx_parse_url with uri_part): scheme, host or unix socket, port and the
/// optional URI part, plus the values of $proxy_host and $proxy_port.
/// </summary>
public sealed class ProxyUrl
{
    /// <summary>The scheme as written, with "://": "http://" or "https://" (nginx keeps its case).</summary>
    public required string Schema { get; init; }

    public bool Https { get; init; }

    /// <summary>The host as written (without brackets for IPv6 literals? no: as written), or the unix path.</summary>
    public required string Host { get; init; }

    public int Port { get; init; }
    public bool NoPort { get; init; }
    public string? UnixPath { get; init; }

    /// <summary>The URI part ("/", "/new/", "/x?y"), null when proxy_pass has none.</summary>
    public string? Uri { get; init; }

    /// <summary>$proxy_host: host[:port] (the port only when not the scheme's default), "localhost" for unix sockets.</summary>
    public required string HostHeader { get; init; }

    /// <summary>$proxy_port: the port, empty for unix sockets.</summary>
    public required string PortText { get; init; }

    /// <summary>
    /// Parses "http://host[:port][/uri]" or "https://unix:/path[:/uri]". Returns null with nginx's error text
    /// ("invalid URL prefix", "invalid port in upstream \"x\"", ...).
    /// </summary>
    public static ProxyUrl? Parse(string url, out string? error, bool runtime = false)
    {
        error = null;
        string schema;
        bool https;
        int defaultPort;
        if (url.Length > (runtime ? 7 : 6) && url.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            schema = url[..7];
            https = false;
            defaultPort = 80;
        }
        else if (url.Length > (runtime ? 8 : 7) && url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            schema = url[..8];
            https = true;
            defaultPort = 443;
        }
        else
        {
            error = runtime ? $"invalid URL prefix in \"{url}\"" : "invalid URL prefix";
            return null;
        }

        var rest = url[schema.Length..];
        if (rest.Length >= 5 && rest.StartsWith("unix:", StringComparison.OrdinalIgnoreCase))
        {
            var path = rest[5..];
            string? unixUri = null;
            var colon = path.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0)
            {
                unixUri = path[(colon + 1)..];
                path = path[..colon];
            }

            if (path.Length == 0)
            {
                error = $"no path in the unix domain socket in upstream \"{rest}\"";
                return null;
            }

            return new ProxyUrl
            {
                Schema = schema,
                Https = https,
                Host = path,
                UnixPath = path,
                Uri = string.IsNullOrEmpty(unixUri) ? null : unixUri,
                HostHeader = "localhost",
                PortText = string.Empty,
                NoPort = true,
            };
        }

        string host;
        string? portText = null;
        string? uri = null;
        if (rest.StartsWith('['))
        {
            var close = rest.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                error = $"invalid host in upstream \"{rest}\"";
                return null;
            }

            host = rest[..(close + 1)];
            var after = rest[(close + 1)..];
            if (after.StartsWith(':'))
            {
                var end = IndexOfUri(after);
                portText = end < 0 ? after[1..] : after[1..end];
                uri = end < 0 ? null : after[end..];
            }
            else if (after.Length > 0)
            {
                if (after[0] is not ('/' or '?'))
                {
                    error = $"invalid host in upstream \"{rest}\"";
                    return null;
                }

                uri = after;
            }
        }
        else
        {
            var uriStart = IndexOfUri(rest);
            var hostPort = uriStart < 0 ? rest : rest[..uriStart];
            uri = uriStart < 0 ? null : rest[uriStart..];
            var colon = hostPort.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0)
            {
                host = hostPort[..colon];
                portText = hostPort[(colon + 1)..];
            }
            else
            {
                host = hostPort;
            }
        }

        var port = defaultPort;
        if (portText is not null)
        {
            if (!ConfigValues.TryParseNumber(portText, out var p) || p < 1 || p > 65535)
            {
                error = $"invalid port in upstream \"{rest}\"";
                return null;
            }

            port = (int)p;
        }

        if (host.Length == 0)
        {
            error = $"no host in upstream \"{rest}\"";
            return null;
        }

        if (uri is { Length: > 0 } && uri[0] == '?')
        {
            // nginx makes "?args" a URI: "/?args" (at run time; at load time it keeps the URI as written).
            uri = runtime ? "/" + uri : uri;
        }

        var defaultOrNone = portText is null || port == defaultPort;
        return new ProxyUrl
        {
            Schema = schema,
            Https = https,
            Host = host,
            Port = port,
            NoPort = portText is null,
            Uri = string.IsNullOrEmpty(uri) ? null : uri,
            HostHeader = defaultOrNone ? host : host + ":" + portText,
            PortText = defaultOrNone ? defaultPort.ToString(CultureInfo.InvariantCulture) : portText!,
        };
    }

    private static int IndexOfUri(string s)
    {
        var slash = s.IndexOf('/', StringComparison.Ordinal);
        var q = s.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0 && (slash < 0 || q < slash))
        {
            return q;
        }

        return slash;
    }
}

/// <summary>proxy_pass as bound: a constant URL already parsed, or a template evaluated per request.</summary>
public sealed class ProxyPassSpec
{
    private ProxyPassSpec(Directive source, string url, ProxyUrl? parsed, ValueTemplate? template, string location)
    {
        Source = source;
        Text = url;
        Url = parsed;
        Template = template;
        Location = location;
    }

    public Directive Source { get; }

    /// <summary>The argument as written.</summary>
    public string Text { get; }

    /// <summary>The parsed URL when it holds no variables.</summary>
    public ProxyUrl? Url { get; }

    /// <summary>The URL template when it holds variables (then the request URI is passed as built).</summary>
    public ValueTemplate? Template { get; }

    /// <summary>nginx's plcf->location: the location name replaced by the URI part (empty in regex/named/if blocks).</summary>
    public string Location { get; }

    /// <summary>Binds proxy_pass: nginx's ngx_http_proxy_pass checks, in its words.</summary>
    public static ProxyPassSpec Bind(DirectiveCall c)
    {
        var url = c[0];
        var location = c.Scope.Location;
        var noLocationUri = location is null || location.Kind is LocationKind.Regex or LocationKind.RegexCaseless or LocationKind.Named
            or LocationKind.If or LocationKind.LimitExcept;
        if (url.Contains('$', StringComparison.Ordinal))
        {
            var template = c.Template(0);
            if (!template.IsConstant)
            {
                return new ProxyPassSpec(c.Directive, url, null, template, string.Empty);
            }
        }

        if (!url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            throw c.Emerg("invalid URL prefix");
        }

        var parsed = ProxyUrl.Parse(url, out var error) ?? throw c.Emerg(error!);
        if (parsed.Uri is not null && noLocationUri)
        {
            throw c.Emerg("\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, "
                + "or inside \"if\" statement, or inside \"limit_except\" block");
        }

        return new ProxyPassSpec(c.Directive, url, parsed, null, noLocationUri ? string.Empty : location!.Pattern);
    }

    /// <summary>"proxy_redirect default": the URL (with "/" when it has no URI part) replaced by the location.</summary>
    public RewriteRuleSpec DefaultRedirect()
    {
        var url = Url!;
        var file = Source.File;
        var line = Source.Line;
        return url.Uri is not null
            ? new RewriteRuleSpec(RewriteRuleKind.Prefix, ValueTemplate.Constant(Text, file, line), null, ValueTemplate.Constant(Location, file, line), Source)
            : new RewriteRuleSpec(RewriteRuleKind.Prefix, ValueTemplate.Constant(Text + "/", file, line), null, ValueTemplate.Constant("/", file, line), Source);
    }
}
