using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Portico.Config.Model;

namespace Portico.Tls;

/// <summary>
/// One server block's TLS, compiled from its merged ssl_* settings: certificates (loaded at configuration
/// time, so a reload re-reads them), protocols, client verification, ciphers and session resumption.
/// </summary>
public sealed class ServerTls
{
    public ServerTls(ServerBlock block)
    {
        Block = block;
    }

    public ServerBlock Block { get; }

    public LoadedCertificate[] Certificates { get; set; } = [];

    /// <summary>The certificate contexts SslStream serves, one per certificate (with the client CA list when verifying).</summary>
    public SslStreamCertificateContext[] Contexts { get; set; } = [];

    /// <summary>ssl_certificate / ssl_certificate_key with variables: loaded per handshake.</summary>
    public (ValueTemplate Cert, ValueTemplate Key)[]? VariableCertificates { get; set; }

    public IReadOnlyList<string>? Passwords { get; set; }

    /// <summary>Where relative certificate paths resolve (the configuration's directory).</summary>
    public string? ConfPrefix { get; set; }

    /// <summary>Certificates loaded for variable paths, by file names and modification times.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, Task<SslStreamCertificateContext>> VariableCache { get; } = new(StringComparer.Ordinal);
    public SslCertificateTrust? SentTrust { get; set; }
    public bool Stapling { get; set; }

    public SslProtocols Protocols { get; set; } = SslProtocols.Tls12 | SslProtocols.Tls13;
    public bool RejectHandshake { get; set; }
    public VerifyClient Verify { get; set; }
    public int VerifyDepth { get; set; } = 1;
    public OpenSsl.TrustStore? Trust { get; set; }

    /// <summary>ssl_client_certificate: the CA names sent in the CertificateRequest.</summary>
    public X509Certificate2Collection? ClientCaList { get; set; }

    /// <summary>The expanded ssl_ciphers, or null for nginx's default (the platform's default list).</summary>
    public CipherSuitesPolicy? Ciphers { get; set; }

    public bool AllowResume { get; set; } = true;
    public bool Http2 { get; set; }

    /// <summary>nginx creates an SSL context for a server with certificates or ssl_reject_handshake; others use the default server's.</summary>
    public bool HasContext => Certificates.Length > 0 || VariableCertificates is not null || RejectHandshake;
}

/// <summary>The TLS configuration of a snapshot: each server block's <see cref="ServerTls"/>.</summary>
public sealed class TlsRuntime
{
    private readonly Dictionary<ServerBlock, ServerTls> _servers = new(ReferenceEqualityComparer.Instance);

    public void Add(ServerTls tls) => _servers[tls.Block] = tls;

    public ServerTls For(ServerBlock block) => _servers[block];

    public IEnumerable<ServerTls> All => _servers.Values;
}
