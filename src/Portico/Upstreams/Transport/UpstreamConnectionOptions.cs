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
        int keepaliveConnections = 0, int keepaliveRequests = 1000, TimeSpan? keepaliveTime = null, int maxConns = 0)
    {
        Tls = tls;
        SocketKeepalive = socketKeepalive;
        BindTransparent = bindTransparent;
        MaxHeaderBytes = maxHeaderBytes;
        KeepaliveTimeout = keepaliveTimeout;
        KeepaliveConnections = keepaliveConnections;
        KeepaliveRequests = keepaliveRequests;
        KeepaliveTime = keepaliveTime ?? TimeSpan.FromHours(1);
        MaxConns = maxConns;
        Signature = BuildSignature();
    }

    /// <summary>TLS to the origin; null for plain HTTP.</summary>
    public UpstreamTlsOptions? Tls { get; }

    /// <summary>proxy_socket_keepalive: SO_KEEPALIVE on upstream sockets.</summary>
    public bool SocketKeepalive { get; }

    /// <summary>proxy_bind ... transparent: IP_TRANSPARENT on upstream sockets.</summary>
    public bool BindTransparent { get; }

    /// <summary>proxy_buffer_size: the largest response head accepted ("upstream sent too big header").</summary>
    public int MaxHeaderBytes { get; }

    /// <summary>How long idle connections are kept for reuse; null keeps none (nginx without upstream keepalive).</summary>
    public TimeSpan? KeepaliveTimeout { get; }

    /// <summary>keepalive N: idle connections kept per pool (the least recently used is closed beyond it); 0 with a timeout: no limit.</summary>
    public int KeepaliveConnections { get; }

    /// <summary>keepalive_requests: requests one connection serves before it is closed (nginx's default 1000).</summary>
    public int KeepaliveRequests { get; }

    /// <summary>keepalive_time: how long one connection may be reused from its opening (nginx's default 1h).</summary>
    public TimeSpan KeepaliveTime { get; }

    /// <summary>max_conns: connections in use at once to the peer through this pool; 0 is no limit.</summary>
    public int MaxConns { get; }

    /// <summary>A stable text of every setting: part of the connection pool's identity.</summary>
    public string Signature { get; }

    private string BuildSignature()
    {
        var sb = new StringBuilder();
        sb.Append(SocketKeepalive ? 'k' : '-').Append(BindTransparent ? 't' : '-').Append('|').Append(MaxHeaderBytes).Append('|')
            .Append(KeepaliveTimeout?.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none")
            .Append('|').Append(KeepaliveConnections).Append('|').Append(KeepaliveRequests).Append('|')
            .Append(KeepaliveTime.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('|').Append(MaxConns);
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
