using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portico.Upstreams.Transport;

/// <summary>
/// How connections to a peer are made and kept: TLS settings, socket options, keepalive and header limits.
/// Together with the peer it names one connection pool (one SocketsHttpHandler), shared by every location
/// with the same settings and kept across reloads while they do not change.
/// </summary>
public sealed class UpstreamConnectionOptions
{
    public UpstreamConnectionOptions(UpstreamTlsOptions? tls, bool socketKeepalive, bool bindTransparent, int maxHeaderBytes, TimeSpan? keepaliveTimeout,
        int? keepaliveConnections = null, long keepaliveRequests = 1000, TimeSpan? keepaliveTime = null, string? poolScope = null)
    {
        Tls = tls;
        SocketKeepalive = socketKeepalive;
        BindTransparent = bindTransparent;
        MaxHeaderBytes = maxHeaderBytes;
        KeepaliveTimeout = keepaliveTimeout;
        KeepaliveConnections = keepaliveTimeout is null ? null : keepaliveConnections;
        KeepaliveRequests = keepaliveRequests;
        KeepaliveTime = keepaliveTime ?? TimeSpan.FromHours(1);
        PoolScope = poolScope;
        Signature = BuildSignature();
    }

    /// <summary>
    /// The same options with an upstream block's keepalive directives (ngx_http_upstream_keepalive_module):
    /// keepalive N [local], keepalive_timeout, keepalive_requests, keepalive_time. "keepalive 0" keeps none.
    /// </summary>
    public UpstreamConnectionOptions WithKeepalive(int connections, TimeSpan timeout, long requests, TimeSpan time, string? poolScope) =>
        connections <= 0
            ? new UpstreamConnectionOptions(Tls, SocketKeepalive, BindTransparent, MaxHeaderBytes, null)
            : new UpstreamConnectionOptions(Tls, SocketKeepalive, BindTransparent, MaxHeaderBytes, timeout, connections, requests, time, poolScope);

    /// <summary>
    /// The same options with the keepalive of the upstream block <paramref name="pass"/> names: as nginx 1.28's
    /// ngx_http_upstream_keepalive_module, idle connections are kept only when the block says "keepalive N"
    /// (defaults: keepalive_timeout 60s, keepalive_requests 1000, keepalive_time 1h); "local" gives each
    /// proxy_pass/grpc_pass its own pool.
    /// </summary>
    public UpstreamConnectionOptions WithKeepalive(UpstreamBlockSpec? upstream, Portico.Config.Syntax.Directive pass) =>
        upstream is { Keepalive: { } n }
            ? WithKeepalive(n, upstream.KeepaliveTimeout ?? TimeSpan.FromSeconds(60), upstream.KeepaliveRequests ?? 1000,
                upstream.KeepaliveTime ?? TimeSpan.FromHours(1), upstream.KeepaliveLocal ? pass.File + ":" + pass.Line : null)
            : this;

    /// <summary>TLS to the origin; null for plain HTTP.</summary>
    public UpstreamTlsOptions? Tls { get; }

    /// <summary>proxy_socket_keepalive: SO_KEEPALIVE on upstream sockets.</summary>
    public bool SocketKeepalive { get; }

    /// <summary>proxy_bind ... transparent: IP_TRANSPARENT on upstream sockets.</summary>
    public bool BindTransparent { get; }

    /// <summary>proxy_buffer_size: the largest response head accepted ("upstream sent too big header").</summary>
    public int MaxHeaderBytes { get; }

    /// <summary>keepalive_timeout: how long idle connections are kept for reuse; null keeps none (no keepalive).</summary>
    public TimeSpan? KeepaliveTimeout { get; }

    /// <summary>keepalive N: idle connections kept per peer (null when <see cref="KeepaliveTimeout"/> is null).</summary>
    public int? KeepaliveConnections { get; }

    /// <summary>keepalive_requests: requests served through one connection before it is closed (default 1000).</summary>
    public long KeepaliveRequests { get; }

    /// <summary>keepalive_time: how long one connection may be used for requests (default 1h).</summary>
    public TimeSpan KeepaliveTime { get; }

    /// <summary>"keepalive N local": the location that owns the pool (connections are not shared with other locations); null shares.</summary>
    public string? PoolScope { get; }

    /// <summary>A stable text of every setting: part of the connection pool's identity.</summary>
    public string Signature { get; }

    private string BuildSignature()
    {
        var sb = new StringBuilder();
        sb.Append(SocketKeepalive ? 'k' : '-').Append(BindTransparent ? 't' : '-').Append('|').Append(MaxHeaderBytes).Append('|')
            .Append(KeepaliveTimeout?.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none");
        if (KeepaliveTimeout is not null)
        {
            sb.Append('|').Append(KeepaliveConnections).Append('|').Append(KeepaliveRequests).Append('|')
                .Append(KeepaliveTime.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('|').Append(PoolScope);
        }
        if (Tls is not null)
        {
            sb.Append("|tls|").Append(Tls.Signature);
        }

        return sb.ToString();
    }
}

/// <summary>proxy_ssl_*: how Portico speaks TLS to an https:// origin.</summary>
public sealed class UpstreamTlsOptions
{
    public UpstreamTlsOptions(SslProtocols protocols, bool verify, int verifyDepth, X509Certificate2Collection? trusted, string? trustedPath,
        X509Certificate2? clientCertificate, string? clientCertificatePath, bool serverName, bool sessionReuse)
    {
        Protocols = protocols;
        Verify = verify;
        VerifyDepth = verifyDepth;
        Trusted = trusted;
        TrustedPath = trustedPath;
        ClientCertificate = clientCertificate;
        ClientCertificatePath = clientCertificatePath;
        ServerName = serverName;
        SessionReuse = sessionReuse;
        Signature = $"{(int)protocols}|{verify}|{verifyDepth}|{trustedPath}|{clientCertificatePath}|{serverName}|{sessionReuse}";
    }

    public SslProtocols Protocols { get; }
    public bool Verify { get; }
    public int VerifyDepth { get; }
    public X509Certificate2Collection? Trusted { get; }
    public string? TrustedPath { get; }
    public X509Certificate2? ClientCertificate { get; }
    public string? ClientCertificatePath { get; }

    /// <summary>proxy_ssl_server_name: send SNI.</summary>
    public bool ServerName { get; }

    public bool SessionReuse { get; }
    public string Signature { get; }
}
