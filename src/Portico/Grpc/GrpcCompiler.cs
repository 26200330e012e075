using Portico.ClientSide;
using Portico.Compilation;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Proxy;
using Portico.Upstreams;
using Portico.Upstreams.Transport;

namespace Portico.Grpc;

/// <summary>
/// Compiles grpc_pass and the grpc_* settings of a location into the proxy core's handler: a
/// <see cref="ProxyLocation"/> with nginx's gRPC rules, run by <see cref="ProxyHandler"/>.
/// </summary>
internal static class GrpcCompiler
{
    /// <summary>ngx_http_grpc_headers: what is sent unless grpc_set_header names it (Host becomes :authority).</summary>
    private static readonly (string Name, string Value)[] DefaultHeaders =
    [
        ("Content-Length", "$content_length"),
        ("TE", "$grpc_internal_trailers"),
        ("Host", string.Empty),
        ("Connection", string.Empty),
        ("Proxy-Connection", string.Empty),
        ("Transfer-Encoding", string.Empty),
        ("Keep-Alive", string.Empty),
        ("Expect", string.Empty),
        ("Upgrade", string.Empty),
    ];

    /// <summary>ngx_http_grpc_hide_headers (no X-Pad, unlike the proxy's list).</summary>
    private static readonly string[] DefaultHiddenHeaders =
        ["Date", "Server", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"];

    public static void Compile(LocationCompiler lc)
    {
        var s = lc.Settings<GrpcSettings>();
        var own = s.Pass is not null;
        // nginx: "if" and limit_except blocks (noname locations) inherit grpc_pass from their location.
        var pass = lc.HandlerSetting<GrpcSettings, GrpcPassSpec>(x => x.Pass);
        if (pass is null)
        {
            return;
        }

        var snapshot = lc.Snapshot;
        var registry = snapshot.Snapshot.Feature<UpstreamRegistry>()!;

        // A grpc_pass with variables may reach a grpcs:// URL: nginx prepares the TLS context for it too.
        UpstreamTlsOptions? tls = null;
        if (pass.Url?.Https ?? true)
        {
            tls = ProxyCompiler.CompileTls("grpc", new UpstreamTlsSettings(s.SslProtocols, s.SslVerify, s.SslVerifyDepth, s.SslTrustedCertificate,
                s.SslCertificate, s.SslCertificateKey, s.SslServerName, s.SslSessionReuse), snapshot, s.SslAt ?? pass.Source);
            if (tls is null)
            {
                return;
            }
        }

        var bufferSize = (int)Math.Min(int.MaxValue, s.BufferSize ?? ProxySettings.PageSize);
        var keepalive = s.SocketKeepalive == true;
        var transparent = s.Bind?.Transparent == true;
        var plain = new UpstreamConnectionOptions(null, keepalive, transparent, bufferSize, null);
        var secure = tls is null ? null : new UpstreamConnectionOptions(tls, keepalive, transparent, bufferSize, null);

        UpstreamGroup? group = null;
        var pools = new Dictionary<UpstreamPeer, TransportHandle>(ReferenceEqualityComparer.Instance);
        if (pass.Url is { } url)
        {
            try
            {
                group = Group(registry, url, pass.Source);
            }
            catch (ConfigException e)
            {
                snapshot.Error(e);
                return;
            }

            plain = plain.WithKeepalive(group.Spec, pass.Source);
            secure = secure?.WithKeepalive(group.Spec, pass.Source);

            var options = url.Https ? secure! : plain;
            foreach (var peer in group.Peers)
            {
                pools[peer] = TransportPool.Get(snapshot.Services.State, registry, peer, options);
            }
        }

        var runtimePools = snapshot.Snapshot.Feature<RuntimePools>();
        if (runtimePools is null)
        {
            runtimePools = new RuntimePools(snapshot.Services.State);
            snapshot.Snapshot.SetFeature(runtimePools);
        }

        var (headers, names) = CompileHeaders(s, lc);
        var hidden = new HashSet<string>(DefaultHiddenHeaders, StringComparer.OrdinalIgnoreCase);
        foreach (var h in s.HideHeaders ?? [])
        {
            hidden.Add(h);
        }

        foreach (var h in s.PassHeaders ?? [])
        {
            hidden.Remove(h);
        }

        var server = lc.Server.Block.Settings.Get<ClientServerSettings>();
        var transport = new YarpTransport(ProxyModule.Forwarder(snapshot.Services.Services),
            request => pools.TryGetValue(request.Peer, out var handle) ? handle : runtimePools.Get(request.Peer, request.Connection));
        var config = new ProxyLocation
        {
            Transport = transport,
            Url = pass.Url,
            UrlTemplate = pass.Template is null ? null : lc.Compile(pass.Template),
            RuntimeUrlParser = ParseRuntime,
            LogTarget = false,
            Group = group,
            Pools = pools,
            Registry = registry,
            State = snapshot.Services.State,
            LocationName = string.Empty,
            Headers = headers,
            HeaderNames = new HeaderNameSet(names),
            Hidden = new HeaderNameSet(hidden),
            // nginx's grpc module never changes buffering (no change_buffering): X-Accel-Buffering is not obeyed.
            Ignore = (s.Ignore ?? IgnoredHeaders.None) | IgnoredHeaders.XAccelBuffering,
            Redirects = null,
            CookieDomains = null,
            CookiePaths = null,
            CookieFlags = null,
            Version = UpstreamHttpVersion.Http2,
            // What ngx_http_grpc_create_loc_conf hard-codes.
            PassRequestHeaders = true,
            PassRequestBody = true,
            PassTrailers = true,
            Buffering = false,
            RequestBuffering = false,
            IgnoreClientAbort = false,
            InterceptErrors = s.InterceptErrors == true,
            Timeouts = new UpstreamTimeouts(s.ConnectTimeout ?? TimeSpan.FromSeconds(60), s.SendTimeout ?? TimeSpan.FromSeconds(60), s.ReadTimeout ?? TimeSpan.FromSeconds(60)),
            NextUpstream = s.NextUpstream ?? UpstreamFailures.DefaultNextUpstream,
            NextUpstreamTries = (int)(s.NextUpstreamTries ?? 0),
            NextUpstreamTimeout = s.NextUpstreamTimeout ?? TimeSpan.Zero,
            Time = snapshot.Services.Time,
            MemoryBuffers = bufferSize,
            MaxTempFileSize = 0,
            TempFileWriteSize = bufferSize,
            TempPath = new TempPath(snapshot.Model.Paths.FromPrefix("proxy_temp"), [1, 2]),
            Bind = s.Bind?.Address is { } bind ? lc.Compile(bind) : null,
            SslName = s.SslName is null ? null : lc.Compile(s.SslName),
            Connection = pass.Url?.Https == true ? secure! : plain,
            TlsConnection = secure,
            UnderscoresInHeaders = server.UnderscoresInHeaders == true,
            IgnoreInvalidHeaders = server.IgnoreInvalidHeaders != false,
        };

        lc.SetContent(new ProxyHandler(config), "grpc_pass", pass.Source);
        if (own && lc.Block is { Kind: not (LocationKind.If or LocationKind.LimitExcept) } block && block.Pattern.EndsWith('/'))
        {
            lc.Runtime.AutoRedirect = true;
        }
    }

    /// <summary>
    /// ngx_http_upstream_add for grpc_pass: an upstream block of that name, a unix socket, or an implicit group
    /// of the addresses the host resolves to. Without a port only an upstream block will do.
    /// </summary>
    private static UpstreamGroup Group(UpstreamRegistry registry, ProxyUrl url, Directive at)
    {
        if (url.UnixPath is not null)
        {
            return registry.ForUnixSocket(url.UnixPath);
        }

        if (url.NoPort)
        {
            return registry.FindExplicit(url.Host)
                ?? throw new ConfigException($"no port in upstream \"{url.Host}\"", at.File, at.Line);
        }

        return registry.ForProxyPass(url.Host, url.Port, noPort: false, at.File, at.Line);
    }

    /// <summary>ngx_http_grpc_eval: a URL built at run time; a bad one is logged ("... in upstream \"...\"") and answered with 500.</summary>
    private static ProxyUrl? ParseRuntime(string text, out string? error) => GrpcPassSpec.Parse(text, out error, runtime: true);

    /// <summary>
    /// ngx_http_grpc_init_headers: the level's grpc_set_header entries, then the defaults they do not name. Host is
    /// the :authority: grpc_set_header Host when it is not empty, otherwise the grpc_pass host[:port].
    /// </summary>
    private static (CompiledHeader[], HashSet<string>) CompileHeaders(GrpcSettings s, LocationCompiler lc)
    {
        var file = lc.Block?.Source.File ?? string.Empty;
        var line = lc.Block?.Source.Line ?? 0;
        var passHost = lc.Snapshot.Variables.Compile("$proxy_host", file, line);
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "Host" };
        var list = new List<CompiledHeader>();
        CompiledHeader host = new("Host", passHost);
        foreach (var (name, value) in s.SetHeaders ?? [])
        {
            if (name.Equals("Host", StringComparison.OrdinalIgnoreCase))
            {
                host = new CompiledHeader("Host", lc.Compile(value), passHost);
                continue;
            }

            names.Add(name);
            if (value.IsConstant && value.ConstantValue.Length == 0)
            {
                continue;
            }

            list.Add(new CompiledHeader(name, lc.Compile(value)));
        }

        list.Insert(0, host);
        foreach (var (name, value) in DefaultHeaders)
        {
            if (!names.Add(name) || value.Length == 0)
            {
                continue;
            }

            list.Add(new CompiledHeader(name, lc.Snapshot.Variables.Compile(value, file, line)));
        }

        return ([.. list], names);
    }
}
