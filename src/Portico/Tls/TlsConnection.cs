using System.Globalization;
using System.Net.Security;
using System.Reflection;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Portico.Compilation;
using Portico.Routing;

namespace Portico.Tls;

/// <summary>
/// What Portico knows about one client connection's TLS (or its absence on an ssl port): the snapshot and
/// address it was accepted on, the server SNI chose, the ClientHello, and the client certificate with
/// nginx's verification result. Kept in the connection's items; request variables and checks read it.
/// </summary>
public sealed class TlsConnectionState
{
    /// <summary>The key in the connection's items.</summary>
    public static readonly object Key = new();

    private static readonly FieldInfo? SecurityContextField =
        typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic);

    public TlsConnectionState(RuntimeSnapshot snapshot, AddressRuntime address)
    {
        Snapshot = snapshot;
        Address = address;
    }

    public RuntimeSnapshot Snapshot { get; }
    public AddressRuntime Address { get; }

    /// <summary>A plain HTTP request arrived on an ssl port (nginx's 497).</summary>
    public bool PlainOnSslPort { get; set; }

    /// <summary>The connection speaks HTTP/2 without TLS (prior knowledge).</summary>
    public bool H2c { get; set; }

    public ClientHello? Hello { get; set; }

    /// <summary>The SNI name as sent ($ssl_server_name), null without SNI.</summary>
    public string? ServerName { get; set; }

    /// <summary>The normalized SNI name when it selected a server (nginx's hc->ssl_servername).</summary>
    public string? MatchedServerName { get; set; }

    /// <summary>The TLS configuration the handshake used.</summary>
    public ServerTls? Negotiated { get; set; }

    public SslStream? Stream { get; set; }

    public X509Certificate2? ClientCertificate { get; private set; }

    /// <summary>OpenSSL's X509_V_* result for the client certificate (0: ok); meaningless without one.</summary>
    public int VerifyResult { get; private set; }

    private string? _subject;
    private string? _issuer;

    /// <summary>SslStream's RemoteCertificateValidationCallback: records nginx's verdict and always accepts,
    /// because nginx completes the handshake and answers 400 (495/496) at the HTTP level.</summary>
    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null)
        {
            ClientCertificate = null;
            return true;
        }

        var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        ClientCertificate = leaf;
        var untrusted = new List<X509Certificate2>();
        if (chain is not null)
        {
            foreach (var c in chain.ChainPolicy.ExtraStore)
            {
                if (!c.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span))
                {
                    untrusted.Add(c);
                }
            }
        }

        var tls = Negotiated;
        if (tls?.Trust is { } trust)
        {
            VerifyResult = trust.Verify(leaf, untrusted, tls.VerifyDepth);
        }
        else
        {
            // No CA at all (optional_no_ca without certificates): OpenSSL cannot find an issuer.
            VerifyResult = leaf.SubjectName.RawData.AsSpan().SequenceEqual(leaf.IssuerName.RawData) ? 18 : 20;
        }

        return true;
    }

    /// <summary>$ssl_client_verify: SUCCESS, FAILED:reason or NONE.</summary>
    public string ClientVerify => ClientCertificate is null
        ? "NONE"
        : VerifyResult == 0 ? "SUCCESS" : "FAILED:" + OpenSsl.VerifyErrorString(VerifyResult);

    public string? ClientSubject => ClientCertificate is null ? null : _subject ??= DistinguishedName.Rfc2253(ClientCertificate.SubjectName);

    public string? ClientIssuer => ClientCertificate is null ? null : _issuer ??= DistinguishedName.Rfc2253(ClientCertificate.IssuerName);

    /// <summary>SSL_session_reused through the SslStream's OpenSSL handle ("r" or ".").</summary>
    public bool SessionReused()
    {
        if (Stream is null || SecurityContextField?.GetValue(Stream) is not System.Runtime.InteropServices.SafeHandle handle || handle.IsInvalid)
        {
            return false;
        }

        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return OpenSsl.SessionReused(handle.DangerousGetHandle());
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }
}

/// <summary>Formats names as OpenSSL's X509_NAME_print_ex with XN_FLAG_RFC2253 (nginx's $ssl_client_s_dn).</summary>
public static class DistinguishedName
{
    private static readonly Dictionary<string, string> ShortNames = new(StringComparer.Ordinal)
    {
        ["2.5.4.3"] = "CN",
        ["2.5.4.4"] = "SN",
        ["2.5.4.5"] = "serialNumber",
        ["2.5.4.6"] = "C",
        ["2.5.4.7"] = "L",
        ["2.5.4.8"] = "ST",
        ["2.5.4.9"] = "street",
        ["2.5.4.10"] = "O",
        ["2.5.4.11"] = "OU",
        ["2.5.4.12"] = "title",
        ["2.5.4.42"] = "GN",
        ["2.5.4.43"] = "initials",
        ["2.5.4.46"] = "dnQualifier",
        ["2.5.4.65"] = "pseudonym",
        ["0.9.2342.19200300.100.1.1"] = "UID",
        ["0.9.2342.19200300.100.1.25"] = "DC",
        ["1.2.840.113549.1.9.1"] = "emailAddress",
    };

    public static string Rfc2253(X500DistinguishedName name)
    {
        var rdns = new List<X500RelativeDistinguishedName>(name.EnumerateRelativeDistinguishedNames(reversed: true));
        var sb = new StringBuilder(64);
        for (var i = 0; i < rdns.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            var rdn = rdns[i];
            if (rdn.HasMultipleElements)
            {
                // Multi-valued RDNs are rare; print what .NET decodes of them.
                sb.Append(new X500DistinguishedName(rdn.RawData.ToArray()).Name);
                continue;
            }

            var oid = rdn.GetSingleElementType().Value ?? string.Empty;
            var value = rdn.GetSingleElementValue();
            sb.Append(ShortNames.TryGetValue(oid, out var sn) ? sn : oid).Append('=');
            if (value is null)
            {
                sb.Append('#').Append(Convert.ToHexStringLower(rdn.RawData.Span));
                continue;
            }

            Escape(sb, value);
        }

        return sb.ToString();
    }

    private static void Escape(StringBuilder sb, string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c is ',' or '+' or '"' or '\\' or '<' or '>' or ';'
                || (i == 0 && (c == '#' || c == ' '))
                || (i == value.Length - 1 && c == ' '))
            {
                sb.Append('\\').Append(c);
            }
            else if (c < ' ' || c == 0x7F)
            {
                sb.Append('\\').Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }
    }

    /// <summary>i2a_ASN1_INTEGER of the serial number: upper-case hex without the DER sign byte.</summary>
    public static string Serial(X509Certificate2 cert)
    {
        var hex = cert.SerialNumber;
        while (hex.Length > 2 && hex.StartsWith("00", StringComparison.Ordinal) && hex[2] >= '8')
        {
            hex = hex[2..];
        }

        return hex;
    }
}
