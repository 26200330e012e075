using System.Security.Authentication;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Pipeline;
using Portico.Proxy;
using Portico.Upstreams;
using Portico.Variables;

namespace Portico.Grpc;

/// <summary>
/// ngx_http_grpc_module: grpc_pass and the grpc_* directives. A gRPC location runs on the proxy core (the
/// attempt loop, failure classification, header rules and the YARP exchange) with nginx's gRPC rules: HTTP/2
/// to the origin (h2c with prior knowledge for grpc://, ALPN h2 for grpcs://), the client's URI as :path, no
/// response buffering, the request body streamed, and trailers passed.
/// </summary>
public sealed class GrpcModule : PorticoModule
{
    public override string Name => "grpc";

    private const Ctx Loc = Ctx.HttpServerLocation;

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<GrpcSettings>(SettingsScope.Location);
        Add(r, "grpc_pass", Ctx.Location | Ctx.LocationIf, Arity.One, GrpcPass);
        Add(r, "grpc_set_header", Loc, Arity.Two, c => (c.Loc<GrpcSettings>().SetHeaders ??= []).Add((c[0], c.Template(1))), repeatable: true);
        Add(r, "grpc_hide_header", Loc, Arity.One, c => (c.Loc<GrpcSettings>().HideHeaders ??= []).Add(c[0]), repeatable: true);
        Add(r, "grpc_pass_header", Loc, Arity.One, c => (c.Loc<GrpcSettings>().PassHeaders ??= []).Add(c[0]), repeatable: true);
        Add(r, "grpc_ignore_headers", Loc, Arity.OneOrMore, IgnoreHeaders, repeatable: true);
        Add(r, "grpc_next_upstream", Loc, Arity.OneOrMore, NextUpstream, repeatable: true);
        Add(r, "grpc_next_upstream_tries", Loc, Arity.One, NextUpstreamTries);
        Add(r, "grpc_next_upstream_timeout", Loc, Arity.One, c => c.Loc<GrpcSettings>().NextUpstreamTimeout = c.Time(0));
        Add(r, "grpc_bind", Loc, Arity.Range(1, 2), Bind);
        Add(r, "grpc_socket_keepalive", Loc, Arity.Flag, c => c.Loc<GrpcSettings>().SocketKeepalive = c.Flag(0));
        Add(r, "grpc_connect_timeout", Loc, Arity.One, c => c.Loc<GrpcSettings>().ConnectTimeout = c.Time(0));
        Add(r, "grpc_send_timeout", Loc, Arity.One, c => c.Loc<GrpcSettings>().SendTimeout = c.Time(0));
        Add(r, "grpc_read_timeout", Loc, Arity.One, c => c.Loc<GrpcSettings>().ReadTimeout = c.Time(0));
        Add(r, "grpc_intercept_errors", Loc, Arity.Flag, c => c.Loc<GrpcSettings>().InterceptErrors = c.Flag(0));
        Add(r, "grpc_buffer_size", Loc, Arity.One, c => c.Loc<GrpcSettings>().BufferSize = c.Size(0));
        Add(r, "grpc_ssl_protocols", Loc, Arity.OneOrMore, SslProtocolsDirective, repeatable: true);
        Add(r, "grpc_ssl_verify", Loc, Arity.Flag, c => Ssl(c).SslVerify = c.Flag(0));
        Add(r, "grpc_ssl_verify_depth", Loc, Arity.One, c => Ssl(c).SslVerifyDepth = c.Number(0));
        Add(r, "grpc_ssl_trusted_certificate", Loc, Arity.One, c => Ssl(c).SslTrustedCertificate = c.Model.Paths.FromConfPrefix(c[0]));
        Add(r, "grpc_ssl_certificate", Loc, Arity.One, c => Ssl(c).SslCertificate = CertificatePath(c));
        Add(r, "grpc_ssl_certificate_key", Loc, Arity.One, c => Ssl(c).SslCertificateKey = CertificatePath(c));
        Add(r, "grpc_ssl_server_name", Loc, Arity.Flag, c => Ssl(c).SslServerName = c.Flag(0));
        Add(r, "grpc_ssl_name", Loc, Arity.One, c => Ssl(c).SslName = c.Template(0));
        Add(r, "grpc_ssl_session_reuse", Loc, Arity.Flag, c => Ssl(c).SslSessionReuse = c.Flag(0));

        // nginx's grpc_ssl_* that the TLS client to origins cannot express: refused with a clear message rather than ignored.
        Unsupported(r, "grpc_ssl_ciphers", Arity.One, "the TLS client to origins uses the platform's cipher suites");
        Unsupported(r, "grpc_ssl_crl", Arity.One, "origin certificates are not checked against revocation lists");
        Unsupported(r, "grpc_ssl_password_file", Arity.One, "encrypted grpc_ssl_certificate_key files are not read");
        Unsupported(r, "grpc_ssl_conf_command", Arity.Two, "there are no OpenSSL configuration commands");
        Unsupported(r, "grpc_ssl_certificate_cache", Arity.Range(1, 3), "grpc_ssl_certificate takes no variables, so there is nothing to cache");
        Unsupported(r, "grpc_ssl_key_log", Arity.One, "TLS keys to origins are not logged");
    }

    private void Add(DirectiveRegistry r, string name, Ctx contexts, Arity arity, DirectiveHandler handler, bool repeatable = false) =>
        r.Add(new DirectiveSpec(name, contexts, arity, handler) { Module = Name, Repeatable = repeatable });

    private void Unsupported(DirectiveRegistry r, string name, Arity arity, string why) =>
        Add(r, name, Loc, arity, c => throw c.Emerg($"\"{name}\" directive is not supported by Portico: {why}"));

    private static GrpcSettings Ssl(DirectiveCall c)
    {
        var s = c.Loc<GrpcSettings>();
        s.SslAt ??= c.Directive;
        return s;
    }

    private static void GrpcPass(DirectiveCall c)
    {
        var s = c.Loc<GrpcSettings>();
        if (s.Pass is not null)
        {
            throw c.Error("is duplicate");
        }

        s.Pass = GrpcPassSpec.Bind(c);
    }

    /// <summary>grpc_ignore_headers: ngx_http_upstream_ignore_headers_masks, compared case-insensitively; levels add up.</summary>
    private static void IgnoreHeaders(DirectiveCall c)
    {
        var s = c.Loc<GrpcSettings>();
        s.Ignore = IgnoredHeadersDirective.Parse(c, s.Ignore);
    }

    /// <summary>grpc_next_upstream: ngx_http_grpc_next_upstream_masks (no "updating", which is for caches).</summary>
    private static void NextUpstream(DirectiveCall c)
    {
        var s = c.Loc<GrpcSettings>();
        var flags = s.NextUpstream ?? UpstreamFailure.None;
        for (var i = 0; i < c.Count; i++)
        {
            var word = c[i].ToLowerInvariant();
            if (word == "updating" || !UpstreamFailures.TryParse(word, out var f))
            {
                throw c.Emerg($"invalid value \"{c[i]}\"");
            }

            if ((flags & f) != 0)
            {
                c.Warn($"duplicate value \"{c[i]}\"");
            }

            flags |= f;
        }

        s.NextUpstream = flags;
    }

    private static void NextUpstreamTries(DirectiveCall c)
    {
        var n = c.Number(0);
        c.Loc<GrpcSettings>().NextUpstreamTries = Math.Min(n, int.MaxValue);
    }

    /// <summary>grpc_bind address [transparent] | off (ngx_http_upstream_bind_set_slot).</summary>
    private static void Bind(DirectiveCall c)
    {
        var s = c.Loc<GrpcSettings>();
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
        if (t.IsConstant && ProxyModule.ParseBindAddress(t.ConstantValue) is null)
        {
            throw c.Emerg($"invalid address \"{c[0]}\"");
        }

        s.Bind = new BindSpec(t, transparent);
    }

    private static void SslProtocolsDirective(DirectiveCall c)
    {
        var s = Ssl(c);
        var protocols = s.SslProtocols ?? SslProtocols.None;
        for (var i = 0; i < c.Count; i++)
        {
            var p = ProtocolOf(c[i]) ?? throw c.Emerg($"invalid value \"{c[i]}\"");
            if (p != SslProtocols.None && (protocols & p) != 0)
            {
                c.Warn($"duplicate value \"{c[i]}\"");
            }

            protocols |= p;
        }

        s.SslProtocols = protocols;
    }

    /// <summary>A grpc_ssl_protocols word (ngx_http_grpc_ssl_protocols, compared case-insensitively); SSLv2/SSLv3 enable nothing here.</summary>
    private static SslProtocols? ProtocolOf(string word)
    {
#pragma warning disable SYSLIB0039, CA5397, CS0618 // nginx accepts the old protocols; whether they work is the platform's call.
        foreach (var (name, protocol) in new[]
        {
            ("SSLv2", SslProtocols.None), ("SSLv3", SslProtocols.None), ("TLSv1", SslProtocols.Tls), ("TLSv1.1", SslProtocols.Tls11),
            ("TLSv1.2", SslProtocols.Tls12), ("TLSv1.3", SslProtocols.Tls13),
        })
#pragma warning restore SYSLIB0039, CA5397, CS0618
        {
            if (word.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return protocol;
            }
        }

        return null;
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
        v.Register("grpc_internal_trailers", InternalTrailers);
    }

    /// <summary>$grpc_internal_trailers: "trailers" when the client's TE header asks for them (the TE sent to the origin).</summary>
    private static string? InternalTrailers(RequestContext r)
    {
        foreach (var te in r.Http.Request.Headers.TE)
        {
            if (te is not null && te.Contains("trailers", StringComparison.OrdinalIgnoreCase))
            {
                return "trailers";
            }
        }

        return null;
    }

    public override void CompileLocation(LocationCompiler location) => GrpcCompiler.Compile(location);
}
