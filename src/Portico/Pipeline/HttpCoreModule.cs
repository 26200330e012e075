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
        var hostname = Dns.GetHostName().ToLowerInvariant();
        var pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);

        v.Register("host", r => r.Host ?? r.Server.Name);
        v.Register("hostname", _ => hostname);
        v.Register("pid", _ => pid);
        v.Register("nginx_version", _ => Product.Version);
        v.Register("portico_version", _ => Product.Version);
        v.Register("uri", r => r.Uri, cacheable: false);
        v.Register("document_uri", r => r.Uri, cacheable: false);
        v.Register("request_uri", r => RequestUri(r.RawTarget));
        v.Register("args", r => r.Args, cacheable: false, setter: (r, value) => r.Args = value);
        v.Register("query_string", r => r.Args, cacheable: false);
        v.Register("is_args", r => r.Args.Length > 0 ? "?" : string.Empty, cacheable: false);
        v.Register("request_method", r => r.Method, cacheable: false);
        v.Register("request", r => r.RequestLine);
        v.Register("request_id", _ => NewRequestId());
        v.Register("scheme", r => r.Http.Request.IsHttps ? "https" : "http");
        v.Register("https", r => r.Http.Request.IsHttps ? "on" : string.Empty);
        v.Register("server_name", r => r.Server.Name);
        v.Register("server_addr", r => r.Connection.LocalAddressText);
        v.Register("server_port", r => Port(r.Connection.LocalPort));
        v.Register("server_protocol", r => r.Protocol);
        v.Register("remote_addr", r => r.Connection.RemoteAddressText);
        v.Register("remote_port", r => Port(r.Connection.RemotePort));
        v.Register("binary_remote_addr", r => r.Connection.BinaryRemoteAddress);
        v.Register("content_type", r => r.Http.Request.Headers.ContentType is { Count: > 0 } ct ? ct.ToString() : null);
        v.Register("content_length", r => r.Http.Request.Headers[Microsoft.Net.Http.Headers.HeaderNames.ContentLength] is { Count: > 0 } cl ? cl[0] : null);
        v.Register("connection", r => r.Connection.Serial.ToString(CultureInfo.InvariantCulture));
        v.Register("connection_requests", r => r.Connection.Requests.ToString(CultureInfo.InvariantCulture), cacheable: false);
        v.Register("status", r => Status(r).ToString("000", CultureInfo.InvariantCulture), cacheable: false);
        v.Register("request_time", r => FormatSeconds((long)(r.ElapsedSeconds * 1000)), cacheable: false);
        v.Register("msec", _ => FormatMsec(DateTimeOffset.UtcNow), cacheable: false);
        v.Register("time_local", _ => FormatTimeLocal(DateTimeOffset.Now), cacheable: false);
        v.Register("time_iso8601", _ => DateTimeOffset.Now.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture), cacheable: false);

        // nginx's dedicated header variables: exact names, so "set" or "map" cannot redefine them.
        foreach (var header in (string[])["host", "user_agent", "referer", "via", "x_forwarded_for", "cookie"])
        {
            v.Register("http_" + header, r => RequestHeader(r.Http.Request, header));
        }

        v.RegisterPrefix("http_", (r, name) => RequestHeader(r.Http.Request, name));
        v.RegisterPrefix("cookie_", (r, name) => Cookie(r.Http.Request, name));
        v.RegisterPrefix("arg_", (r, name) => Arg(r.Args, name), cacheable: false);
    }

    /// <summary>
    /// $request_id: 16 bytes from the system's CSPRNG in hexadecimal, as nginx takes them from RAND_bytes.
    /// The bytes are drawn 4 KiB at a time per thread: one call into the runtime's CSPRNG for 256 ids instead
    /// of one per id (a call cost about 1.3 µs on this machine; it is not a system call: strace shows one
    /// getrandom() in 20 requests either way). Each id still uses bytes no other id used.
    /// </summary>
    public static string NewRequestId()
    {
        var pool = t_randomPool ??= new byte[RandomPoolSize];
        var offset = t_randomOffset;
        if (offset == 0 || offset >= RandomPoolSize)
        {
            RandomNumberGenerator.Fill(pool);
            offset = 0;
        }

        t_randomOffset = offset + 16;
        var id = Convert.ToHexStringLower(pool.AsSpan(offset, 16));
        // Used bytes are not kept around.
        pool.AsSpan(offset, 16).Clear();
        return id;
    }

    private const int RandomPoolSize = 4096;

    [ThreadStatic]
    private static byte[]? t_randomPool;

    [ThreadStatic]
    private static int t_randomOffset;

    public static string FormatMsec(DateTimeOffset t) => FormatSeconds(t.ToUnixTimeMilliseconds());

    /// <summary>nginx's "%T.%03M": whole seconds, a dot, milliseconds (truncated, never rounded).</summary>
    public static string FormatSeconds(long ms)
    {
        ms = Math.Max(ms, 0);
        return (ms / 1000).ToString(CultureInfo.InvariantCulture) + "." + (ms % 1000).ToString("000", CultureInfo.InvariantCulture);
    }

    /// <summary>$status: error_page's status, else the response's, else "000" before there is one.</summary>
    public static int Status(RequestContext r)
    {
        if (r.StatusOverride > 0)
        {
            return r.StatusOverride;
        }

        if (r.Status != 0)
        {
            return SpecialResponse.WireStatus(r.Status);
        }

        return r.Http.Response.HasStarted ? r.Http.Response.StatusCode : 0;
    }

    /// <summary>A port as nginx prints it: empty when there is none (unix sockets).</summary>
    private static string Port(int port) => port is > 0 and < 65536 ? port.ToString(CultureInfo.InvariantCulture) : string.Empty;

    /// <summary>$request_uri: the request target as sent, without the scheme and host of an absolute-form target.</summary>
    public static string RequestUri(string target)
    {
        if (target.Length == 0 || target[0] == '/')
        {
            return target;
        }

        var scheme = target.IndexOf("://", StringComparison.Ordinal);
        if (scheme <= 0)
        {
            return target;
        }

        var start = scheme + 3;
        var end = target.AsSpan(start).IndexOfAny('/', '?');
        if (end < 0)
        {
            return "/";
        }

        end += start;
        return target[end] == '/' ? target[end..] : "/" + target[end..];
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

    /// <summary>
    /// $cookie_NAME: ngx_http_parse_multi_header_lines over every Cookie header: a pair whose name matches
    /// without regard to case, spaces allowed around "=", the value up to ";".
    /// </summary>
    public static string? Cookie(HttpRequest request, string name)
    {
        foreach (var header in request.Headers.Cookie)
        {
            if (header is null || name.Length > header.Length)
            {
                continue;
            }

            var s = header.AsSpan();
            var i = 0;
            while (i < s.Length)
            {
                if (s.Length - i >= name.Length && s.Slice(i, name.Length).Equals(name, StringComparison.OrdinalIgnoreCase))
                {
                    var j = i + name.Length;
                    while (j < s.Length && s[j] == ' ')
                    {
                        j++;
                    }

                    if (j < s.Length && s[j] == '=')
                    {
                        j++;
                        while (j < s.Length && s[j] == ' ')
                        {
                            j++;
                        }

                        var end = s[j..].IndexOf(';');
                        return (end < 0 ? s[j..] : s.Slice(j, end)).ToString();
                    }

                    i = j;
                }

                // Skip to the next pair.
                while (i < s.Length)
                {
                    var ch = s[i++];
                    if (ch is ';' or ',')
                    {
                        break;
                    }
                }

                while (i < s.Length && s[i] == ' ')
                {
                    i++;
                }
            }
        }

        return null;
    }

    /// <summary>ngx_http_arg: the first "name=value" argument (name without regard to case) at the start or after "&amp;".</summary>
    public static string? Arg(string args, string name)
    {
        if (name.Length == 0)
        {
            return null;
        }

        var span = args.AsSpan();
        var from = 0;
        while (from < span.Length)
        {
            var at = span[from..].IndexOf(name, StringComparison.OrdinalIgnoreCase);
            if (at < 0)
            {
                return null;
            }

            at += from;
            var after = at + name.Length;
            if ((at == 0 || span[at - 1] == '&') && after < span.Length && span[after] == '=')
            {
                var value = span[(after + 1)..];
                var amp = value.IndexOf('&');
                return (amp < 0 ? value : value[..amp]).ToString();
            }

            from = at + 1;
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
