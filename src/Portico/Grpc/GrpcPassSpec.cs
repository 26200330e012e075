using System.Globalization;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Proxy;

namespace Portico.Grpc;

/// <summary>
/// grpc_pass as bound (ngx_http_grpc_pass): a constant address already parsed, or a template evaluated per
/// request. The URL is "grpc://" or "grpcs://" (or no scheme: grpc://), then host:port, an upstream name, or
/// unix:/path. There is never a URI part: the client's URI is passed as received.
/// </summary>
public sealed class GrpcPassSpec
{
    private GrpcPassSpec(Directive source, string text, ProxyUrl? url, ValueTemplate? template)
    {
        Source = source;
        Text = text;
        Url = url;
        Template = template;
    }

    public Directive Source { get; }

    /// <summary>The argument as written.</summary>
    public string Text { get; }

    /// <summary>The parsed address when grpc_pass holds no variables.</summary>
    public ProxyUrl? Url { get; }

    /// <summary>The URL template when grpc_pass has variables.</summary>
    public ValueTemplate? Template { get; }

    public static GrpcPassSpec Bind(DirectiveCall c)
    {
        var text = c[0];
        if (text.Contains('$', StringComparison.Ordinal))
        {
            var template = c.Template(0);
            if (!template.IsConstant)
            {
                return new GrpcPassSpec(c.Directive, text, null, template);
            }
        }

        var url = Parse(text, out var error, runtime: false) ?? throw c.Emerg(error!);
        return new GrpcPassSpec(c.Directive, text, url, null);
    }

    /// <summary>
    /// Parses a grpc_pass URL the way ngx_http_grpc_pass (at load time) and ngx_http_grpc_eval (at run time) do.
    /// Errors are nginx's: "invalid host in upstream \"...\"", "invalid port in upstream \"...\"",
    /// "no host in upstream \"\"", "no path in the unix domain socket in upstream \"unix:\"".
    /// </summary>
    public static ProxyUrl? Parse(string text, out string? error, bool runtime)
    {
        error = null;
        string schema;
        var tls = false;
        var add = 0;
        if ((!runtime || text.Length > 7) && text.StartsWith("grpc://", StringComparison.OrdinalIgnoreCase))
        {
            add = 7;
        }
        else if ((!runtime || text.Length > 8) && text.StartsWith("grpcs://", StringComparison.OrdinalIgnoreCase))
        {
            add = 8;
            tls = true;
        }

        // At load time nginx shows its own scheme in logs; a URL built at run time keeps the scheme as written.
        schema = add == 0 ? "grpc://" : runtime ? text[..add] : tls ? "grpcs://" : "grpc://";
        var rest = text[add..];
        if (rest.Length >= 5 && rest.StartsWith("unix:", StringComparison.OrdinalIgnoreCase))
        {
            var path = rest[5..];
            if (path.Length == 0)
            {
                error = $"no path in the unix domain socket in upstream \"{rest}\"";
                return null;
            }

            return new ProxyUrl
            {
                Schema = schema,
                Https = tls,
                Host = path,
                UnixPath = path,
                NoPort = true,
                HostHeader = "localhost",
                PortText = string.Empty,
            };
        }

        string host;
        string? portText = null;
        if (rest.StartsWith('['))
        {
            var close = rest.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || rest.IndexOf('/', close) >= 0)
            {
                error = $"invalid host in upstream \"{rest}\"";
                return null;
            }

            host = rest[..(close + 1)];
            var after = rest[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':')
                {
                    error = $"invalid host in upstream \"{rest}\"";
                    return null;
                }

                portText = after[1..];
            }
        }
        else
        {
            if (rest.Contains('/', StringComparison.Ordinal) || rest.Contains('?', StringComparison.Ordinal))
            {
                error = $"invalid host in upstream \"{rest}\"";
                return null;
            }

            var colon = rest.IndexOf(':', StringComparison.Ordinal);
            host = colon < 0 ? rest : rest[..colon];
            portText = colon < 0 ? null : rest[(colon + 1)..];
        }

        var port = 0;
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

        return new ProxyUrl
        {
            Schema = schema,
            Https = tls,
            Host = host,
            Port = port,
            NoPort = portText is null,
            // nginx's :authority: the host as written, with the port as written when there is one.
            HostHeader = portText is null ? host : host + ":" + portText,
            PortText = portText is null ? string.Empty : port.ToString(CultureInfo.InvariantCulture),
        };
    }
}
