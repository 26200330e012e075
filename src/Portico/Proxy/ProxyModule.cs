using System.Globalization;
using System.Net;
using System.Security.Authentication;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Portico.ClientSide;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Hosting;
using Portico.Pipeline;
using Portico.Upstreams;
using Portico.Upstreams.Transport;
using Portico.Variables;
using Yarp.ReverseProxy.Forwarder;

namespace Portico.Proxy;

/// <summary>
/// ngx_http_proxy_module: proxy_pass and the proxy_* directives. The exchange is YARP's forwarder behind
/// <see cref="IUpstreamTransport"/>; URIs, headers, redirects, cookies, buffering and the attempt loop are
/// nginx's rules implemented here.
/// </summary>
public sealed class ProxyModule : PorticoModule, IServiceModule
{
    public override string Name => "proxy";

    private const Ctx Loc = Ctx.HttpServerLocation;

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<ProxySettings>(SettingsScope.Location);
        Add(r, "proxy_pass", Ctx.Location | Ctx.LocationIf | Ctx.LimitExcept, Arity.One, ProxyPass);
        Add(r, "proxy_redirect", Loc, Arity.Range(1, 2), ProxyRedirect, repeatable: true);
        Add(r, "proxy_cookie_domain", Loc, Arity.Range(1, 2), c => CookieRewrite(c, domain: true), repeatable: true);
        Add(r, "proxy_cookie_path", Loc, Arity.Range(1, 2), c => CookieRewrite(c, domain: false), repeatable: true);
        Add(r, "proxy_cookie_flags", Loc, Arity.Range(1, 4), CookieFlags, repeatable: true);
        Add(r, "proxy_set_header", Loc, Arity.Two, SetHeader, repeatable: true);
        Add(r, "proxy_hide_header", Loc, Arity.One, c => (c.Loc<ProxySettings>().HideHeaders ??= []).Add(c[0]), repeatable: true);
        Add(r, "proxy_pass_header", Loc, Arity.One, c => (c.Loc<ProxySettings>().PassHeaders ??= []).Add(c[0]), repeatable: true);
        Add(r, "proxy_ignore_headers", Loc, Arity.OneOrMore, IgnoreHeaders, repeatable: true);
        Add(r, "proxy_pass_request_headers", Loc, Arity.Flag, c => c.Loc<ProxySettings>().PassRequestHeaders = c.Flag(0));
        Add(r, "proxy_pass_request_body", Loc, Arity.Flag, c => c.Loc<ProxySettings>().PassRequestBody = c.Flag(0));
        Add(r, "proxy_pass_trailers", Loc, Arity.Flag, c => c.Loc<ProxySettings>().PassTrailers = c.Flag(0));
        Add(r, "proxy_method", Loc, Arity.One, c => c.Loc<ProxySettings>().Method = c.Template(0));
        Add(r, "proxy_set_body", Loc, Arity.One, c => c.Loc<ProxySettings>().SetBody = c.Template(0));
        Add(r, "proxy_http_version", Loc, Arity.One, HttpVersion);
        Add(r, "proxy_buffering", Loc, Arity.Flag, c => c.Loc<ProxySettings>().Buffering = c.Flag(0));
        Add(r, "proxy_request_buffering", Loc, Arity.Flag, c => c.Loc<ProxySettings>().RequestBuffering = c.Flag(0));
        Add(r, "proxy_ignore_client_abort", Loc, Arity.Flag, c => c.Loc<ProxySettings>().IgnoreClientAbort = c.Flag(0));
        Add(r, "proxy_bind", Loc, Arity.Range(1, 2), Bind);
        Add(r, "proxy_socket_keepalive", Loc, Arity.Flag, c => c.Loc<ProxySettings>().SocketKeepalive = c.Flag(0));
        Add(r, "proxy_connect_timeout", Loc, Arity.One, c => c.Loc<ProxySettings>().ConnectTimeout = c.Time(0));
        Add(r, "proxy_send_timeout", Loc, Arity.One, c => c.Loc<ProxySettings>().SendTimeout = c.Time(0));
        Add(r, "proxy_read_timeout", Loc, Arity.One, c => c.Loc<ProxySettings>().ReadTimeout = c.Time(0));
        Add(r, "proxy_send_lowat", Loc, Arity.One, c => c.Loc<ProxySettings>().SendLowat = c.Size(0));
        Add(r, "proxy_intercept_errors", Loc, Arity.Flag, c => c.Loc<ProxySettings>().InterceptErrors = c.Flag(0));
        Add(r, "proxy_headers_hash_max_size", Loc, Arity.One, c => c.Loc<ProxySettings>().HeadersHashMaxSize = c.Number(0));
        Add(r, "proxy_headers_hash_bucket_size", Loc, Arity.One, c => c.Loc<ProxySettings>().HeadersHashBucketSize = c.Number(0));
        Add(r, "proxy_buffer_size", Loc, Arity.One, c => Sizes(c).BufferSize = c.Size(0));
        Add(r, "proxy_buffers", Loc, Arity.Two, Buffers);
        Add(r, "proxy_busy_buffers_size", Loc, Arity.One, c => Sizes(c).BusyBuffersSize = c.Size(0));
        Add(r, "proxy_max_temp_file_size", Loc, Arity.One, c => Sizes(c).MaxTempFileSize = c.Size(0));
        Add(r, "proxy_temp_file_write_size", Loc, Arity.One, c => Sizes(c).TempFileWriteSize = c.Size(0));
        Add(r, "proxy_limit_rate", Loc, Arity.One, LimitRate);
        Add(r, "proxy_temp_path", Loc, Arity.Range(1, 4), c => c.Loc<ProxySettings>().TempPath = TempFiles.Parse(c));
        Add(r, "proxy_ssl_protocols", Loc, Arity.OneOrMore, SslProtocolsDirective);
        Add(r, "proxy_ssl_verify", Loc, Arity.Flag, c => Ssl(c).SslVerify = c.Flag(0));
        Add(r, "proxy_ssl_verify_depth", Loc, Arity.One, c => Ssl(c).SslVerifyDepth = c.Number(0));
        Add(r, "proxy_ssl_trusted_certificate", Loc, Arity.One, c => Ssl(c).SslTrustedCertificate = c.Model.Paths.FromConfPrefix(c[0]));
        Add(r, "proxy_ssl_certificate", Loc, Arity.One, c => Ssl(c).SslCertificate = CertificatePath(c));
        Add(r, "proxy_ssl_certificate_key", Loc, Arity.One, c => Ssl(c).SslCertificateKey = CertificatePath(c));
        Add(r, "proxy_ssl_server_name", Loc, Arity.Flag, c => Ssl(c).SslServerName = c.Flag(0));
        Add(r, "proxy_ssl_name", Loc, Arity.One, c => Ssl(c).SslName = c.Template(0));
        Add(r, "proxy_ssl_session_reuse", Loc, Arity.Flag, c => Ssl(c).SslSessionReuse = c.Flag(0));
        Add(r, "proxy_next_upstream", Loc, Arity.OneOrMore, c => c.Loc<ProxySettings>().NextUpstream = NextUpstreamPolicy.Parse(c));
        Add(r, "proxy_next_upstream_tries", Loc, Arity.One, c => c.Loc<ProxySettings>().NextUpstreamTries = c.Number(0));
        Add(r, "proxy_next_upstream_timeout", Loc, Arity.One, c => c.Loc<ProxySettings>().NextUpstreamTimeout = c.Time(0));
    }

    private void Add(DirectiveRegistry r, string name, Ctx contexts, Arity arity, DirectiveHandler handler, bool repeatable = false) =>
        r.Add(new DirectiveSpec(name, contexts, arity, handler) { Module = Name, Repeatable = repeatable });

    private static ProxySettings Sizes(DirectiveCall c)
    {
        var s = c.Loc<ProxySettings>();
        s.SizesAt = c.Directive;
        return s;
    }

    private static ProxySettings Ssl(DirectiveCall c)
    {
        var s = c.Loc<ProxySettings>();
        s.SslAt ??= c.Directive;
        return s;
    }

    private static void ProxyPass(DirectiveCall c)
    {
        var s = c.Loc<ProxySettings>();
        if (s.Pass is not null)
        {
            throw c.Error("is duplicate");
        }

        s.Pass = ProxyPassSpec.Bind(c);
    }

    /// <summary>proxy_redirect default | off | redirect replacement (ngx_http_proxy_redirect).</summary>
    private static void ProxyRedirect(DirectiveCall c)
    {
        var s = c.Loc<ProxySettings>();
        if (s.RedirectEnabled == false)
        {
            throw c.Error("is duplicate");
        }

        if (c.Count == 1)
        {
            if (c[0] == "off")
            {
                if (s.Redirects is not null)
                {
                    throw c.Error("is duplicate");
                }

                s.RedirectEnabled = false;
                return;
            }

            if (c[0] != "default")
            {
                throw c.Emerg($"invalid parameter \"{c[0]}\"");
            }

            if (s.Pass?.Template is not null)
            {
                throw c.Emerg("\"proxy_redirect default\" cannot be used with \"proxy_pass\" directive with variables");
            }

            if (s.Pass is null)
            {
                throw c.Emerg("\"proxy_redirect default\" should be placed after the \"proxy_pass\" directive");
            }

            s.RedirectEnabled = true;
            (s.Redirects ??= []).Add(s.Pass.DefaultRedirect());
            return;
        }

        s.RedirectEnabled = true;
        (s.Redirects ??= []).Add(Rule(c, c[0], c[1], allowCaseless: true, domain: false));
    }

    private static RewriteRuleSpec Rule(DirectiveCall c, string pattern, string replacement, bool allowCaseless, bool domain)
    {
        var file = c.Directive.File;
        var line = c.Directive.Line;
        if (pattern.StartsWith('~'))
        {
            var source = pattern[1..];
            var caseless = domain;
            if (allowCaseless && source.StartsWith('*'))
            {
                caseless = true;
                source = source[1..];
            }

            var regex = NginxRegex.Compile(source, caseless, c.Directive, c.Model);
            return new RewriteRuleSpec(RewriteRuleKind.Regex, null, regex, ValueTemplate.Parse(replacement, file, line), c.Directive);
        }

        if (domain)
        {
            pattern = pattern.StartsWith('.') ? pattern[1..] : pattern;
            replacement = replacement.StartsWith('.') ? replacement[1..] : replacement;
            return new RewriteRuleSpec(RewriteRuleKind.Domain, ValueTemplate.Parse(pattern, file, line), null, ValueTemplate.Parse(replacement, file, line), c.Directive);
        }

        return new RewriteRuleSpec(RewriteRuleKind.Prefix, ValueTemplate.Parse(pattern, file, line), null, ValueTemplate.Parse(replacement, file, line), c.Directive);
    }

    /// <summary>proxy_cookie_domain / proxy_cookie_path: off | pattern replacement.</summary>
    private static void CookieRewrite(DirectiveCall c, bool domain)
    {
        var s = c.Loc<ProxySettings>();
        var list = domain ? s.CookieDomains : s.CookiePaths;
        if (list is { Count: 0 })
        {
            throw c.Error("is duplicate");
        }

        if (c.Count == 1)
        {
            if (c[0] != "off")
            {
                throw c.Emerg($"invalid parameter \"{c[0]}\"");
            }

            if (list is not null)
            {
                throw c.Error("is duplicate");
            }

            if (domain)
            {
                s.CookieDomains = [];
            }
            else
            {
                s.CookiePaths = [];
            }

            return;
        }

        var rule = Rule(c, c[0], c[1], allowCaseless: !domain, domain);
        if (domain)
        {
            (s.CookieDomains ??= []).Add(rule);
        }
        else
        {
            (s.CookiePaths ??= []).Add(rule);
        }
    }

    /// <summary>proxy_cookie_flags off | cookie [flag ...].</summary>
    private static void CookieFlags(DirectiveCall c)
    {
        var s = c.Loc<ProxySettings>();
        if (s.CookieFlags is { Count: 0 })
        {
            throw c.Error("is duplicate");
        }

        if (c.Count == 1)
        {
            if (c[0] != "off")
            {
                throw c.Emerg($"invalid parameter \"{c[0]}\"");
            }

            if (s.CookieFlags is not null)
            {
                throw c.Error("is duplicate");
            }

            s.CookieFlags = [];
            return;
        }

        System.Text.RegularExpressions.Regex? regex = null;
        ValueTemplate? name = null;
        if (c[0].StartsWith('~'))
        {
            regex = NginxRegex.Compile(c[0][1..], caseless: true, c.Directive, c.Model);
        }
        else
        {
            name = c.Template(0);
        }

        var flags = new List<ValueTemplate>();
        for (var i = 1; i < c.Count; i++)
        {
            flags.Add(c.Template(i));
        }

        (s.CookieFlags ??= []).Add(new CookieFlagsSpec(name, regex, flags));
    }

    private static void SetHeader(DirectiveCall c)
    {
        var s = c.Loc<ProxySettings>();
        (s.SetHeaders ??= []).Add((c[0], c.Template(1)));
    }

    private static void IgnoreHeaders(DirectiveCall c)
    {
        var s = c.Loc<ProxySettings>();
        s.Ignore = IgnoredHeadersDirective.Parse(c, s.Ignore);
    }

    private static void HttpVersion(DirectiveCall c)
    {
        c.Loc<ProxySettings>().HttpVersion = c[0] switch
        {
            "1.0" => UpstreamHttpVersion.Http10,
            "1.1" => UpstreamHttpVersion.Http11,
            "2" => UpstreamHttpVersion.Http2,
            _ => throw c.Emerg($"invalid value \"{c[0]}\""),
        };
    }

    private static void Buffers(DirectiveCall c)
    {
        if (!ConfigValues.TryParseNumber(c[0], out var n) || n == 0 || n > int.MaxValue
            || !ConfigValues.TryParseSize(c[1], out var size) || size == 0)
        {
            throw c.Error("invalid value");
        }

        Sizes(c).Buffers = ((int)n, size);
    }

    private static void LimitRate(DirectiveCall c)
    {
        var t = c.Template(0);
        if (t.IsConstant && !ConfigValues.TryParseSize(t.ConstantValue, out _))
        {
            throw c.Error("invalid value");
        }

        c.Loc<ProxySettings>().LimitRate = t;
    }

    /// <summary>proxy_bind address [transparent] | off (ngx_http_upstream_bind_set_slot).</summary>
    private static void Bind(DirectiveCall c)
    {
        var s = c.Loc<ProxySettings>();
        if (s.BindSet)
        {
            throw c.Error("is duplicate");
        }

        s.BindSet = true;
        if (c[0] == "off")
        {
            s.Bind = null;
            return;
        }

        var transparent = false;
        if (c.Count == 2)
        {
            if (c[1] != "transparent")
            {
                throw c.Emerg($"invalid parameter \"{c[1]}\"");
            }

            transparent = true;
        }

        var t = c.Template(0);
        if (t.IsConstant && ParseBindAddress(t.ConstantValue) is null)
        {
            throw c.Emerg($"invalid address \"{c[0]}\"");
        }

        s.Bind = new BindSpec(t, transparent);
    }

    /// <summary>An address for proxy_bind: "1.2.3.4", "[::1]", optionally with a port (ignored by the kernel choice).</summary>
    public static IPAddress? ParseBindAddress(string text)
    {
        var s = text;
        if (s.StartsWith('['))
        {
            var close = s.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                return null;
            }

            s = s[1..close];
        }
        else if (s.IndexOf(':', StringComparison.Ordinal) is var colon and >= 0 && s.IndexOf(':', colon + 1) < 0)
        {
            s = s[..colon];
        }

        return IPAddress.TryParse(s, out var ip) ? ip : null;
    }

    private static void SslProtocolsDirective(DirectiveCall c)
    {
        var protocols = SslProtocols.None;
        for (var i = 0; i < c.Count; i++)
        {
#pragma warning disable SYSLIB0039, CA5397, CS0618 // nginx accepts the old protocols; whether they work is OpenSSL's call.
            protocols |= c[i] switch
            {
                "SSLv2" => SslProtocols.None,
                "SSLv3" => SslProtocols.None,
                "TLSv1" => SslProtocols.Tls,
                "TLSv1.1" => SslProtocols.Tls11,
                "TLSv1.2" => SslProtocols.Tls12,
                "TLSv1.3" => SslProtocols.Tls13,
                _ => throw c.Emerg($"invalid value \"{c[i]}\""),
            };
#pragma warning restore SYSLIB0039, CA5397, CS0618
        }

        Ssl(c).SslProtocols = protocols;
    }

    private static string CertificatePath(DirectiveCall c)
    {
        if (c[0].Contains('$', StringComparison.Ordinal))
        {
            throw c.Emerg($"variables in \"{c.Name}\" are not supported by Portico");
        }

        return c.Model.Paths.FromConfPrefix(c[0]);
    }

    public override void RegisterVariables(VariableRegistry v, SnapshotBuilder snapshot)
    {
        v.Register("proxy_host", r => ProxyRun.Of(r)?.Url.HostHeader, cacheable: false);
        v.Register("proxy_port", r => ProxyRun.Of(r)?.Url.PortText, cacheable: false);
        v.Register("proxy_add_x_forwarded_for", AddXForwardedFor);
        v.Register("proxy_internal_body_length", r => ProxyRun.Of(r)?.InternalBodyLength is { } l and >= 0 ? l.ToString(CultureInfo.InvariantCulture) : null, cacheable: false);
        v.Register("proxy_internal_chunked", r => ProxyRun.Of(r)?.InternalChunked == true ? "chunked" : null, cacheable: false);
    }

    /// <summary>$proxy_add_x_forwarded_for: the client's X-Forwarded-For lines with ", $remote_addr" appended.</summary>
    private static string? AddXForwardedFor(RequestContext r)
    {
        var xff = r.Http.Request.Headers["X-Forwarded-For"];
        if (xff.Count == 0)
        {
            return r.Connection.RemoteAddressText;
        }

        // One string made: the lines and the address joined at once.
        return xff.Count == 1
            ? string.Concat(xff[0], ", ", r.Connection.RemoteAddressText)
            : string.Concat(string.Join(", ", xff.ToArray()), ", ", r.Connection.RemoteAddressText);
    }

    public override void CompileLocation(LocationCompiler location) => ProxyCompiler.Compile(location);

    private static readonly Lazy<IHttpForwarder> FallbackForwarder = new(() =>
    {
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        new ProxyModule().ConfigureServices(services);
        return services.BuildServiceProvider().GetRequiredService<IHttpForwarder>();
    });

    /// <summary>The host's forwarder (a private one when the host's container has none, as in unit tests).</summary>
    public static IHttpForwarder Forwarder(IServiceProvider services) =>
        services.GetService(typeof(IHttpForwarder)) as IHttpForwarder ?? FallbackForwarder.Value;

    /// <summary>
    /// YARP's forwarder. Its own logging is off (the host's logger factory gives "Yarp.*" categories no
    /// logger): Portico writes nginx's error lines itself.
    /// </summary>
    public void ConfigureServices(IServiceCollection services) => services.AddHttpForwarder();
}
