using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portico.ClientSide;
using Portico.Compilation;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Upstreams;
using Portico.Upstreams.Transport;
using Portico.Upstreams.Transport.Http1;
using Portico.Variables;

namespace Portico.Proxy;

/// <summary>A proxy_set_header entry ready to evaluate; the fallback is sent when the value is empty (grpc_set_header Host).</summary>
public sealed record CompiledHeader(string Name, CompiledTemplate Value, CompiledTemplate? Fallback = null);

/// <summary>Parses the URL a proxy_pass (or grpc_pass) with variables built for one request; null with nginx's error text.</summary>
public delegate ProxyUrl? RuntimeUrlParser(string text, out string? error);

/// <summary>A compiled proxy_redirect / proxy_cookie_* rule.</summary>
public sealed record CompiledRule(RewriteRuleKind Kind, CompiledTemplate? Pattern, System.Text.RegularExpressions.Regex? Regex, CompiledTemplate Replacement);

public sealed record CompiledCookieFlags(CompiledTemplate? Name, System.Text.RegularExpressions.Regex? Regex, CompiledTemplate[] Flags);

/// <summary>
/// Everything the proxy handler of one location reads, compiled once per snapshot: the target, nginx's
/// header set, response rules, buffering, timeouts and the connection pools to the target's peers.
/// </summary>
public sealed class ProxyLocation
{
    /// <summary>nginx's default proxy_hide_header list.</summary>
    public static readonly string[] DefaultHiddenHeaders =
        ["Date", "Server", "X-Pad", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"];

    /// <summary>The proxy_pass this location was compiled from (null for other content handlers on the proxy core, as grpc_pass).</summary>
    public ProxyPassSpec? Pass { get; init; }

    /// <summary>How a URL built from variables is parsed (null: proxy_pass's http:// and https:// URLs).</summary>
    public RuntimeUrlParser? RuntimeUrlParser { get; init; }

    /// <summary>The request target follows the peer in the "upstream:" part of error lines (grpc's do not show it).</summary>
    public bool LogTarget { get; init; } = true;

    /// <summary>The static URL, or null when proxy_pass has variables.</summary>
    public ProxyUrl? Url { get; init; }

    public CompiledTemplate? UrlTemplate { get; init; }

    /// <summary>The group of a static URL.</summary>
    public UpstreamGroup? Group { get; init; }

    public required IReadOnlyDictionary<UpstreamPeer, TransportHandle> Pools { get; init; }

    /// <summary>The exchange seam the attempt loop calls.</summary>
    public required IUpstreamTransport Transport { get; init; }

    /// <summary>The snapshot's groups, for URLs built at run time.</summary>
    public required UpstreamRegistry Registry { get; init; }

    public required StateStore State { get; init; }

    public required string LocationName { get; init; }
    public required CompiledHeader[] Headers { get; init; }

    /// <summary>The names proxy_set_header sets (the client's headers of those names are not passed).</summary>
    public required HeaderNameSet HeaderNames { get; init; }

    /// <summary>The response headers not passed to the client (proxy_hide_header, proxy_pass_header).</summary>
    public required HeaderNameSet Hidden { get; init; }

    public required IgnoredHeaders Ignore { get; init; }
    public required CompiledRule[]? Redirects { get; init; }
    public required CompiledRule[]? CookieDomains { get; init; }
    public required CompiledRule[]? CookiePaths { get; init; }
    public required CompiledCookieFlags[]? CookieFlags { get; init; }
    public CompiledTemplate? Method { get; init; }
    public CompiledTemplate? SetBody { get; init; }
    public required UpstreamHttpVersion Version { get; init; }
    public required bool PassRequestHeaders { get; init; }
    public required bool PassRequestBody { get; init; }
    public required bool PassTrailers { get; init; }
    public required bool Buffering { get; init; }
    public required bool RequestBuffering { get; init; }
    public required bool IgnoreClientAbort { get; init; }
    public required bool InterceptErrors { get; init; }
    public required UpstreamTimeouts Timeouts { get; init; }
    public required UpstreamFailure NextUpstream { get; init; }

    /// <summary>proxy_next_upstream_tries (0: unlimited).</summary>
    public int NextUpstreamTries { get; init; }

    /// <summary>proxy_next_upstream_timeout (zero: unlimited).</summary>
    public TimeSpan NextUpstreamTimeout { get; init; }

    /// <summary>The host's clock (queue waits, next_upstream_timeout).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
    public required long MemoryBuffers { get; init; }
    public required long MaxTempFileSize { get; init; }
    public required long TempFileWriteSize { get; init; }
    public required TempPath TempPath { get; init; }
    public CompiledTemplate? LimitRate { get; init; }
    public CompiledTemplate? Bind { get; init; }
    public CompiledTemplate? SslName { get; init; }
    public required UpstreamConnectionOptions Connection { get; init; }

    /// <summary>Connection options for https:// targets of a proxy_pass with variables.</summary>
    public UpstreamConnectionOptions? TlsConnection { get; init; }

    public required bool UnderscoresInHeaders { get; init; }
    public required bool IgnoreInvalidHeaders { get; init; }
}

/// <summary>The *_ssl_* settings of a location that make the TLS client context to origins.</summary>
internal readonly record struct UpstreamTlsSettings(SslProtocols? SslProtocols, bool? SslVerify, long? SslVerifyDepth, string? SslTrustedCertificate,
    string? SslCertificate, string? SslCertificateKey, bool? SslServerName, bool? SslSessionReuse);

/// <summary>Compiles proxy_pass and the proxy_* settings of a location into a handler.</summary>
internal static class ProxyCompiler
{
    private static readonly (string Name, string Value)[] DefaultHeaders =
    [
        ("Host", "$proxy_host"),
        ("Connection", "close"),
        ("Content-Length", "$proxy_internal_body_length"),
        ("Transfer-Encoding", "$proxy_internal_chunked"),
        ("TE", string.Empty),
        ("Keep-Alive", string.Empty),
        ("Expect", string.Empty),
        ("Upgrade", string.Empty),
        // Hop-by-hop: nginx ≥ 1.29 drops it as well.
        ("Proxy-Connection", string.Empty),
    ];

    public static void Compile(LocationCompiler lc)
    {
        var s = lc.Settings<ProxySettings>();
        var own = s.Pass is not null;
        // nginx: "if" and limit_except blocks (noname locations) inherit proxy_pass from their location.
        var pass = lc.HandlerSetting<ProxySettings, ProxyPassSpec>(x => x.Pass);
        if (pass is null)
        {
            return;
        }

        var snapshot = lc.Snapshot;
        if (!CheckSizes(s, snapshot, pass.Source))
        {
            return;
        }

        var registry = snapshot.Snapshot.Feature<UpstreamRegistry>()!;
        var https = pass.Url?.Https ?? true;
        UpstreamTlsOptions? tls = null;
        if (https)
        {
            tls = CompileTls("proxy", new UpstreamTlsSettings(s.SslProtocols, s.SslVerify, s.SslVerifyDepth, s.SslTrustedCertificate, s.SslCertificate,
                s.SslCertificateKey, s.SslServerName, s.SslSessionReuse), snapshot, s.SslAt ?? pass.Source);
            if (tls is null)
            {
                return;
            }
        }

        var server = lc.Server.Block.Settings.Get<ClientServerSettings>();
        var plain = new UpstreamConnectionOptions(null, s.SocketKeepalive == true, s.Bind?.Transparent == true, (int)Math.Min(int.MaxValue, s.BufferSize ?? ProxySettings.PageSize), null);
        var secure = tls is null ? null : new UpstreamConnectionOptions(tls, s.SocketKeepalive == true, s.Bind?.Transparent == true, (int)Math.Min(int.MaxValue, s.BufferSize ?? ProxySettings.PageSize), null);

        UpstreamGroup? group = null;
        var pools = new Dictionary<UpstreamPeer, TransportHandle>(ReferenceEqualityComparer.Instance);
        if (pass.Url is { } url)
        {
            try
            {
                group = url.UnixPath is not null
                    ? registry.ForUnixSocket(url.UnixPath)
                    : registry.ForProxyPass(url.Host, url.Port, url.NoPort, pass.Source.File, pass.Source.Line);
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

        var (headers, names) = CompileHeaders(s, lc);
        var hidden = new HashSet<string>(ProxyLocation.DefaultHiddenHeaders, StringComparer.OrdinalIgnoreCase);
        foreach (var h in s.HideHeaders ?? [])
        {
            hidden.Add(h);
        }

        foreach (var h in s.PassHeaders ?? [])
        {
            hidden.Remove(h);
        }

        var tempPath = s.TempPath ?? new TempPath(snapshot.Model.Paths.FromPrefix("proxy_temp"), [1, 2]);
        if (s.TempPath is not null && TempFiles.Ensure(tempPath) is { } mkdir)
        {
            snapshot.Error(mkdir, pass.Source);
        }

        var buffers = s.Buffers ?? (8, ProxySettings.PageSize);
        var runtimePools = snapshot.Snapshot.Feature<RuntimePools>();
        if (runtimePools is null)
        {
            runtimePools = new RuntimePools(snapshot.Services.State);
            snapshot.Snapshot.SetFeature(runtimePools);
        }

        Func<UpstreamRequest, TransportHandle> poolOf = request => pools.TryGetValue(request.Peer, out var handle) ? handle : runtimePools.Get(request.Peer, request.Connection);
        var transport = Http1Transport.Select(s.HttpVersion ?? UpstreamHttpVersion.Http10, new YarpTransport(ProxyModule.Forwarder(snapshot.Services.Services), poolOf), poolOf);
        var config = new ProxyLocation
        {
            Transport = transport,
            Pass = pass,
            Url = pass.Url,
            UrlTemplate = pass.Template is null ? null : lc.Compile(pass.Template),
            Group = group,
            Pools = pools,
            Registry = registry,
            State = snapshot.Services.State,
            LocationName = pass.Location,
            Headers = headers,
            HeaderNames = new HeaderNameSet(names),
            Hidden = new HeaderNameSet(hidden),
            Ignore = s.Ignore ?? IgnoredHeaders.None,
            Redirects = CompileRules(lc, s.Redirects),
            CookieDomains = CompileRules(lc, s.CookieDomains),
            CookiePaths = CompileRules(lc, s.CookiePaths),
            CookieFlags = s.CookieFlags is { Count: > 0 } flags ? [.. flags.Select(f => new CompiledCookieFlags(f.Name is null ? null : lc.Compile(f.Name), f.Regex, [.. f.Flags.Select(lc.Compile)]))] : null,
            Method = s.Method is null ? null : lc.Compile(s.Method),
            SetBody = s.SetBody is null ? null : lc.Compile(s.SetBody),
            Version = s.HttpVersion ?? UpstreamHttpVersion.Http10,
            PassRequestHeaders = s.PassRequestHeaders != false,
            PassRequestBody = s.PassRequestBody != false,
            PassTrailers = s.PassTrailers == true,
            Buffering = s.Buffering != false,
            RequestBuffering = s.RequestBuffering != false,
            IgnoreClientAbort = s.IgnoreClientAbort == true,
            InterceptErrors = s.InterceptErrors == true,
            Timeouts = new UpstreamTimeouts(s.ConnectTimeout ?? TimeSpan.FromSeconds(60), s.SendTimeout ?? TimeSpan.FromSeconds(60), s.ReadTimeout ?? TimeSpan.FromSeconds(60)),
            NextUpstream = s.NextUpstream ?? UpstreamFailures.DefaultNextUpstream,
            NextUpstreamTries = (int)Math.Min(int.MaxValue, s.NextUpstreamTries ?? 0),
            NextUpstreamTimeout = s.NextUpstreamTimeout ?? TimeSpan.Zero,
            Time = snapshot.Services.Time,
            MemoryBuffers = buffers.Number * buffers.Size,
            MaxTempFileSize = s.EffectiveMaxTempFileSize,
            TempFileWriteSize = s.EffectiveTempFileWriteSize,
            TempPath = tempPath,
            LimitRate = s.LimitRate is null ? null : lc.Compile(s.LimitRate),
            Bind = s.Bind?.Address is { } bind ? lc.Compile(bind) : null,
            SslName = s.SslName is null ? null : lc.Compile(s.SslName),
            Connection = pass.Url?.Https == true ? secure! : plain,
            TlsConnection = secure,
            UnderscoresInHeaders = server.UnderscoresInHeaders == true,
            IgnoreInvalidHeaders = server.IgnoreInvalidHeaders != false,
        };

        lc.SetContent(new ProxyHandler(config), "proxy_pass", pass.Source);
        if (own && lc.Block is { Kind: not (LocationKind.If or LocationKind.LimitExcept) } block && block.Pattern.EndsWith('/'))
        {
            lc.Runtime.AutoRedirect = true;
        }
    }

    /// <summary>nginx's checks of proxy_buffer_size, proxy_buffers, proxy_busy_buffers_size and the temp file sizes.</summary>
    private static bool CheckSizes(ProxySettings s, SnapshotBuilder snapshot, Config.Syntax.Directive fallback)
    {
        var at = s.SizesAt ?? fallback;
        var buffers = s.Buffers ?? (8, ProxySettings.PageSize);
        if (buffers.Number < 2)
        {
            snapshot.Error("there must be at least 2 \"proxy_buffers\"", at);
            return false;
        }

        var size = s.UnitSize;
        var busy = s.EffectiveBusyBuffersSize;
        if (busy < size)
        {
            snapshot.Error("\"proxy_busy_buffers_size\" must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"", at);
            return false;
        }

        if (busy > (buffers.Number - 1) * buffers.Size)
        {
            snapshot.Error("\"proxy_busy_buffers_size\" must be less than the size of all \"proxy_buffers\" minus one buffer", at);
            return false;
        }

        if (s.EffectiveTempFileWriteSize < size)
        {
            snapshot.Error("\"proxy_temp_file_write_size\" must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"", at);
            return false;
        }

        var max = s.EffectiveMaxTempFileSize;
        if (max != 0 && max < size)
        {
            snapshot.Error("\"proxy_max_temp_file_size\" must be equal to zero to disable temporary files usage or must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"", at);
            return false;
        }

        return true;
    }

    /// <summary>ngx_http_proxy_init_headers: the level's proxy_set_header entries, then the defaults they do not name.</summary>
    private static (CompiledHeader[], HashSet<string>) CompileHeaders(ProxySettings s, LocationCompiler lc)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var list = new List<CompiledHeader>();
        foreach (var (name, value) in s.SetHeaders ?? [])
        {
            names.Add(name);
            if (value.IsConstant && value.ConstantValue.Length == 0)
            {
                continue;
            }

            list.Add(new CompiledHeader(name, lc.Compile(value)));
        }

        foreach (var (name, value) in DefaultHeaders)
        {
            if (!names.Add(name) || value.Length == 0)
            {
                continue;
            }

            list.Add(new CompiledHeader(name, lc.Snapshot.Variables.Compile(value, lc.Block?.Source.File ?? string.Empty, lc.Block?.Source.Line ?? 0)));
        }

        return ([.. list], names);
    }

    private static CompiledRule[]? CompileRules(LocationCompiler lc, List<RewriteRuleSpec>? rules)
    {
        if (rules is not { Count: > 0 })
        {
            return null;
        }

        var compiled = new CompiledRule[rules.Count];
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            compiled[i] = new CompiledRule(rule.Kind, rule.Pattern is null ? null : lc.Compile(rule.Pattern), rule.Regex, lc.Compile(rule.Replacement));
        }

        return compiled;
    }

    /// <summary>
    /// ngx_http_proxy_set_ssl (and grpc's): the TLS context of an https:// or grpcs:// target, with nginx's load-time
    /// errors naming the module's directives ("proxy_ssl_...", "grpc_ssl_...").
    /// </summary>
    internal static UpstreamTlsOptions? CompileTls(string module, UpstreamTlsSettings s, SnapshotBuilder snapshot, Config.Syntax.Directive at)
    {
        X509Certificate2? client = null;
        if (s.SslCertificate is { } certPath)
        {
            if (s.SslCertificateKey is not { } keyPath)
            {
                snapshot.Error($"no \"{module}_ssl_certificate_key\" is defined for certificate \"{certPath}\"", at);
                return null;
            }

            try
            {
                using var pem = X509Certificate2.CreateFromPemFile(certPath, keyPath);
                // Ephemeral keys cannot be used for TLS on every platform; a PKCS#12 round trip gives a usable one.
                client = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
            {
                snapshot.Error($"cannot load certificate \"{certPath}\": {e.Message.TrimEnd('.')}", at);
                return null;
            }
        }

        X509Certificate2Collection? trusted = null;
        if (s.SslVerify == true)
        {
            if (s.SslTrustedCertificate is not { } trustedPath)
            {
                snapshot.Error($"no {module}_ssl_trusted_certificate for {module}_ssl_verify", at);
                return null;
            }

            try
            {
                trusted = [];
                trusted.ImportFromPemFile(trustedPath);
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
            {
                var reason = e is FileNotFoundException or DirectoryNotFoundException ? "No such file or directory" : e.Message.TrimEnd('.');
                snapshot.Error($"SSL_CTX_load_verify_locations(\"{trustedPath}\") failed (SSL: {reason})", at);
                return null;
            }
        }

        return new UpstreamTlsOptions(s.SslProtocols ?? (System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13),
            s.SslVerify == true, (int)(s.SslVerifyDepth ?? 1), trusted, s.SslTrustedCertificate, client,
            s.SslCertificate is null ? null : s.SslCertificate + "|" + s.SslCertificateKey, s.SslServerName == true, s.SslSessionReuse != false);
    }
}
