using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Variables;

namespace Portico.Pipeline;

public enum ServerTokens
{
    Off,
    On,
    Build,
}

/// <summary>ngx_http_core_module settings that shape every response, per location.</summary>
public sealed class HttpCoreSettings : Settings<HttpCoreSettings>
{
    public string? DefaultType { get; set; }
    public ServerTokens? ServerTokens { get; set; }
    public bool? AbsoluteRedirect { get; set; }
    public bool? ServerNameInRedirect { get; set; }
    public bool? PortInRedirect { get; set; }
    public bool? MsiePadding { get; set; }
    public bool? MsieRefresh { get; set; }

    public override void MergeFrom(HttpCoreSettings parent)
    {
        DefaultType ??= parent.DefaultType ?? "text/plain";
        ServerTokens ??= parent.ServerTokens ?? Pipeline.ServerTokens.On;
        AbsoluteRedirect ??= parent.AbsoluteRedirect ?? true;
        ServerNameInRedirect ??= parent.ServerNameInRedirect ?? false;
        PortInRedirect ??= parent.PortInRedirect ?? true;
        MsiePadding ??= parent.MsiePadding ?? true;
        MsieRefresh ??= parent.MsieRefresh ?? false;
    }
}

/// <summary>ngx_http_core_module settings of a server block.</summary>
public sealed class HttpCoreServerSettings : Settings<HttpCoreServerSettings>
{
    public bool? MergeSlashes { get; set; }

    public override void MergeFrom(HttpCoreServerSettings parent)
    {
        MergeSlashes ??= parent.MergeSlashes ?? true;
    }
}

/// <summary>
/// The request-level core of ngx_http_core_module: response-shaping directives and the variables every
/// other module and log format relies on.
/// </summary>
public sealed class HttpCoreModule : PorticoModule
{
    public override string Name => "http_core";

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<HttpCoreSettings>(SettingsScope.Location);
        r.AddSettings<HttpCoreServerSettings>(SettingsScope.Server);
        const Ctx loc = Ctx.HttpServerLocation;
        r.Add(new DirectiveSpec("default_type", loc, Arity.One, c => c.Loc<HttpCoreSettings>().DefaultType = c[0]) { Module = Name });
        r.Add(new DirectiveSpec("server_tokens", loc, Arity.One, ServerTokensDirective) { Module = Name });
        r.Add(new DirectiveSpec("absolute_redirect", loc, Arity.Flag, c => c.Loc<HttpCoreSettings>().AbsoluteRedirect = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("server_name_in_redirect", loc, Arity.Flag, c => c.Loc<HttpCoreSettings>().ServerNameInRedirect = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("port_in_redirect", loc, Arity.Flag, c => c.Loc<HttpCoreSettings>().PortInRedirect = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("msie_padding", loc, Arity.Flag, c => c.Loc<HttpCoreSettings>().MsiePadding = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("msie_refresh", loc, Arity.Flag, c => c.Loc<HttpCoreSettings>().MsieRefresh = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("merge_slashes", Ctx.HttpServer, Arity.Flag, c => c.Loc<HttpCoreServerSettings>().MergeSlashes = c.Flag(0)) { Module = Name });
    }

    private static void ServerTokensDirective(DirectiveCall c)
    {
        c.Loc<HttpCoreSettings>().ServerTokens = c[0] switch
        {
            "on" => ServerTokens.On,
            "off" => ServerTokens.Off,
            "build" => ServerTokens.Build,
            _ => throw c.Emerg($"invalid value \"{c[0]}\""),
        };
    }

    /// <summary>Rejects listen parameters no module serves (until the TLS/HTTP/2 module registers them).</summary>
    public override void CompleteSnapshot(SnapshotBuilder snapshot)
    {
        foreach (var listener in snapshot.Snapshot.Listeners.Values)
        {
            foreach (var address in listener.Socket.Addresses)
            {
                foreach (var server in address.Servers)
                {
                    foreach (var listen in server.Listens)
                    {
                        if (listen.SocketName != address.Key)
                        {
                            continue;
                        }

                        if (listen.Ssl && !snapshot.SupportedListenParameters.Contains("ssl"))
                        {
                            snapshot.Error("the \"ssl\" parameter requires ngx_http_ssl_module", listen.Source);
                        }

                        if (listen.Http2 && !snapshot.SupportedListenParameters.Contains("http2"))
                        {
                            snapshot.Error("the \"http2\" parameter requires ngx_http_v2_module", listen.Source);
                        }

                        if (listen.Quic && !snapshot.SupportedListenParameters.Contains("quic"))
                        {
                            snapshot.Error("the \"quic\" parameter requires ngx_http_v3_module", listen.Source);
                        }
                    }
                }
            }
        }
    }

    public override void RegisterVariables(VariableRegistry v, SnapshotBuilder snapshot)
    {
        var hostname = Dns.GetHostName();
        var pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);

        v.Register("host", r => r.Host ?? r.Server.Name);
        v.Register("hostname", _ => hostname);
        v.Register("pid", _ => pid);
        v.Register("nginx_version", _ => Product.Version);
        v.Register("portico_version", _ => Product.Version);
        v.Register("uri", r => r.Uri, cacheable: false);
        v.Register("document_uri", r => r.Uri, cacheable: false);
        v.Register("request_uri", r => r.RawTarget);
        v.Register("args", r => r.Args, cacheable: false, setter: (r, value) => r.Args = value);
        v.Register("query_string", r => r.Args, cacheable: false, setter: (r, value) => r.Args = value);
        v.Register("is_args", r => r.Args.Length > 0 ? "?" : string.Empty, cacheable: false);
        v.Register("request_method", r => r.Method, cacheable: false);
        v.Register("request", r => r.RequestLine);
        v.Register("request_id", _ => NewRequestId());
        v.Register("scheme", r => r.Http.Request.IsHttps ? "https" : "http");
        v.Register("https", r => r.Http.Request.IsHttps ? "on" : string.Empty);
        v.Register("server_name", r => r.Server.Name);
        v.Register("server_addr", r => r.Connection.LocalAddressText);
        v.Register("server_port", r => r.Connection.LocalPort.ToString(CultureInfo.InvariantCulture));
        v.Register("server_protocol", r => r.Protocol);
        v.Register("remote_addr", r => r.Connection.RemoteAddressText);
        v.Register("remote_port", r => r.Connection.RemotePort.ToString(CultureInfo.InvariantCulture));
        v.Register("binary_remote_addr", r => r.Connection.BinaryRemoteAddress);
        v.Register("content_type", r => r.Http.Request.Headers.ContentType is { Count: > 0 } ct ? ct.ToString() : null);
        v.Register("content_length", r => r.Http.Request.Headers.ContentLength?.ToString(CultureInfo.InvariantCulture));
        v.Register("connection", r => r.Connection.Serial.ToString(CultureInfo.InvariantCulture));
        v.Register("connection_requests", r => r.Connection.Requests.ToString(CultureInfo.InvariantCulture), cacheable: false);
        v.Register("status", r => (r.Status == 0 ? r.Http.Response.StatusCode : SpecialResponse.WireStatus(r.Status)).ToString("000", CultureInfo.InvariantCulture), cacheable: false);
        v.Register("request_time", r => r.ElapsedSeconds.ToString("0.000", CultureInfo.InvariantCulture), cacheable: false);
        v.Register("msec", _ => FormatMsec(DateTimeOffset.UtcNow), cacheable: false);
        v.Register("time_local", _ => FormatTimeLocal(DateTimeOffset.Now), cacheable: false);
        v.Register("time_iso8601", _ => DateTimeOffset.Now.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture), cacheable: false);

        v.RegisterPrefix("http_", (r, name) => RequestHeader(r.Http.Request, name));
        v.RegisterPrefix("cookie_", (r, name) => Cookie(r.Http.Request, name));
        v.RegisterPrefix("arg_", (r, name) => Arg(r.Args, name), cacheable: false);
    }

    public static string NewRequestId()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    public static string FormatMsec(DateTimeOffset t)
    {
        var ms = t.ToUnixTimeMilliseconds();
        return (ms / 1000).ToString(CultureInfo.InvariantCulture) + "." + (ms % 1000).ToString("000", CultureInfo.InvariantCulture);
    }

    /// <summary>nginx's $time_local: "30/Nov/2026:08:55:54 +0000".</summary>
    public static string FormatTimeLocal(DateTimeOffset t)
    {
        var offset = t.Offset;
        var sign = offset < TimeSpan.Zero ? '-' : '+';
        var abs = offset.Duration();
        return t.ToString("dd'/'MMM'/'yyyy':'HH':'mm':'ss", CultureInfo.InvariantCulture)
            + " " + sign + abs.Hours.ToString("00", CultureInfo.InvariantCulture) + abs.Minutes.ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>$http_NAME: "_" in the name matches "-"; several headers are joined as nginx ≥ 1.23 does.</summary>
    public static string? RequestHeader(HttpRequest request, string name)
    {
        var headerName = name.Replace('_', '-');
        if (!request.Headers.TryGetValue(headerName, out var values) || values.Count == 0)
        {
            return null;
        }

        if (values.Count == 1)
        {
            return values[0];
        }

        var separator = headerName.Equals("cookie", StringComparison.OrdinalIgnoreCase) ? "; " : ", ";
        return string.Join(separator, values.ToArray());
    }

    /// <summary>$cookie_NAME: the value of the first cookie with that name.</summary>
    public static string? Cookie(HttpRequest request, string name)
    {
        foreach (var header in request.Headers.Cookie)
        {
            if (header is null)
            {
                continue;
            }

            var span = header.AsSpan();
            while (!span.IsEmpty)
            {
                var semi = span.IndexOf(';');
                var part = (semi < 0 ? span : span[..semi]).Trim();
                span = semi < 0 ? default : span[(semi + 1)..];
                var eq = part.IndexOf('=');
                if (eq > 0 && part[..eq].Trim().Equals(name, StringComparison.OrdinalIgnoreCase))
                {
                    return part[(eq + 1)..].Trim().ToString();
                }
            }
        }

        return null;
    }

    /// <summary>$arg_NAME: the raw value of the first argument with that name (case-insensitive, as nginx).</summary>
    public static string? Arg(string args, string name)
    {
        var span = args.AsSpan();
        while (!span.IsEmpty)
        {
            var amp = span.IndexOf('&');
            var part = amp < 0 ? span : span[..amp];
            span = amp < 0 ? default : span[(amp + 1)..];
            var eq = part.IndexOf('=');
            var key = eq < 0 ? part : part[..eq];
            if (key.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return eq < 0 ? string.Empty : part[(eq + 1)..].ToString();
            }
        }

        return null;
    }

    internal static string BinaryAddress(IPAddress? address)
    {
        if (address is null)
        {
            return string.Empty;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        var bytes = address.GetAddressBytes();
        return string.Create(bytes.Length, bytes, static (span, b) =>
        {
            for (var i = 0; i < b.Length; i++)
            {
                span[i] = (char)b[i];
            }
        });
    }

    internal static uint Ipv4Value(IPAddress a) => BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes());
}
