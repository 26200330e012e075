using System.Security.Authentication;
using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Tls;

/// <summary>ssl_verify_client values, in nginx's numbering.</summary>
public enum VerifyClient
{
    Off = 0,
    On = 1,
    Optional = 2,
    OptionalNoCa = 3,
}

/// <summary>nginx's protocol bits for ssl_protocols.</summary>
[Flags]
public enum SslProtocolBits
{
    None = 0,
    SslV2 = 1,
    SslV3 = 2,
    TlsV1 = 4,
    TlsV11 = 8,
    TlsV12 = 16,
    TlsV13 = 32,
}

/// <summary>A path argument as written and where (ssl_certificate and friends).</summary>
public sealed record PathArg(string Value, Directive At);

/// <summary>
/// ngx_http_ssl_module's server configuration (http and server levels, merged http → server as nginx's
/// ngx_http_ssl_merge_srv_conf does: arrays are replaced, not merged).
/// </summary>
public sealed class SslServerSettings : Settings<SslServerSettings>
{
    public List<PathArg>? Certificates { get; set; }
    public List<PathArg>? CertificateKeys { get; set; }
    public List<string>? Passwords { get; set; }
    public bool PasswordsSet { get; set; }
    public SslProtocolBits? Protocols { get; set; }
    public Directive? ProtocolsAt { get; set; }
    public string? Ciphers { get; set; }
    public Directive? CiphersAt { get; set; }
    public bool? PreferServerCiphers { get; set; }
    public PathArg? Dhparam { get; set; }
    public PathArg? EcdhCurve { get; set; }
    public VerifyClient? Verify { get; set; }
    public long? VerifyDepth { get; set; }
    public PathArg? ClientCertificate { get; set; }
    public PathArg? TrustedCertificate { get; set; }
    public PathArg? Crl { get; set; }
    public bool? SessionTickets { get; set; }
    public List<PathArg>? SessionTicketKeys { get; set; }
    public long? SessionTimeout { get; set; }
    public Directive? SessionTimeoutAt { get; set; }

    /// <summary>ssl_session_cache: false for "off"/"none" only, true when a builtin or shared cache is named.</summary>
    public bool? SessionCache { get; set; }

    public bool? Stapling { get; set; }
    public Directive? StaplingAt { get; set; }
    public bool? StaplingVerify { get; set; }
    public bool? EarlyData { get; set; }
    public bool? RejectHandshake { get; set; }
    public long? BufferSize { get; set; }

    public override void MergeFrom(SslServerSettings parent)
    {
        SessionTimeout ??= parent.SessionTimeout ?? 300;
        SessionTimeoutAt ??= parent.SessionTimeoutAt;
        PreferServerCiphers ??= parent.PreferServerCiphers ?? false;
        EarlyData ??= parent.EarlyData ?? false;
        RejectHandshake ??= parent.RejectHandshake ?? false;
        if (Protocols is null)
        {
            Protocols = parent.Protocols ?? (SslProtocolBits.TlsV12 | SslProtocolBits.TlsV13);
            ProtocolsAt = parent.ProtocolsAt;
        }

        BufferSize ??= parent.BufferSize ?? 16 * 1024;
        Verify ??= parent.Verify ?? VerifyClient.Off;
        VerifyDepth ??= parent.VerifyDepth ?? 1;
        Certificates ??= parent.Certificates;
        CertificateKeys ??= parent.CertificateKeys;
        if (!PasswordsSet)
        {
            Passwords = parent.Passwords;
            PasswordsSet = parent.PasswordsSet;
        }

        Dhparam ??= parent.Dhparam;
        ClientCertificate ??= parent.ClientCertificate;
        TrustedCertificate ??= parent.TrustedCertificate;
        Crl ??= parent.Crl;
        EcdhCurve ??= parent.EcdhCurve;
        if (Ciphers is null)
        {
            Ciphers = parent.Ciphers;
            CiphersAt = parent.CiphersAt;
        }

        SessionCache ??= parent.SessionCache;
        SessionTickets ??= parent.SessionTickets ?? true;
        SessionTicketKeys ??= parent.SessionTicketKeys;
        Stapling ??= parent.Stapling ?? false;
        StaplingAt ??= parent.StaplingAt;
        StaplingVerify ??= parent.StaplingVerify ?? false;
    }

    /// <summary>nginx's default cipher string.</summary>
    public const string DefaultCiphers = "HIGH:!aNULL:!MD5";

    public static SslProtocols ToPlatform(SslProtocolBits bits)
    {
        var p = SslProtocols.None;
        if ((bits & SslProtocolBits.TlsV12) != 0)
        {
            p |= SslProtocols.Tls12;
        }

        if ((bits & SslProtocolBits.TlsV13) != 0)
        {
            p |= SslProtocols.Tls13;
        }

        return p;
    }
}

/// <summary>ngx_http_v2_module's server settings (http2 on|off, limits).</summary>
public sealed class Http2ServerSettings : Settings<Http2ServerSettings>
{
    public bool? Enable { get; set; }
    public long? MaxConcurrentStreams { get; set; }
    public long? BodyPrereadSize { get; set; }

    public override void MergeFrom(Http2ServerSettings parent)
    {
        Enable ??= parent.Enable ?? false;
        MaxConcurrentStreams ??= parent.MaxConcurrentStreams ?? 128;
        BodyPrereadSize ??= parent.BodyPrereadSize ?? 64 * 1024;
    }
}

/// <summary>ngx_http_v2_module's http-level settings.</summary>
public sealed class Http2MainSettings : Settings<Http2MainSettings>
{
    public long? RecvBufferSize { get; set; }

    public override void MergeFrom(Http2MainSettings parent)
    {
        RecvBufferSize ??= parent.RecvBufferSize ?? 256 * 1024;
    }
}
