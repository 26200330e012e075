using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Portico.IntegrationTests.Infrastructure;

/// <summary>Certificates made at test time: a CA, server and client certificates it signs, CRLs, PEM files.</summary>
public sealed class TestCa : IDisposable
{
    private readonly RSA _key;
    private long _serial = 0x1000;

    public TestCa(string name = "Portico Test CA")
    {
        _key = RSA.Create(2048);
        var req = new CertificateRequest($"CN={name}, O=Portico Tests", _key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        Certificate = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    public X509Certificate2 Certificate { get; }

    public string CertificatePem => Certificate.ExportCertificatePem() + "\n";

    /// <summary>A server certificate for the names (DNS SANs; 127.0.0.1 always added), RSA or ECDSA.</summary>
    public X509Certificate2 IssueServer(string cn, bool ecdsa = false, params string[] names) =>
        Issue($"CN={cn}", ecdsa, serverAuth: true, names.Length == 0 ? [cn] : names);

    /// <summary>A client certificate with the given subject.</summary>
    public X509Certificate2 IssueClient(string subject, bool expired = false) =>
        Issue(subject, false, serverAuth: false, [], expired);

    private X509Certificate2 Issue(string subject, bool ecdsa, bool serverAuth, string[] names, bool expired = false)
    {
        AsymmetricAlgorithm key = ecdsa ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : RSA.Create(2048);
        var req = key is ECDsa ec
            ? new CertificateRequest(subject, ec, HashAlgorithmName.SHA256)
            : new CertificateRequest(subject, (RSA)key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(
            ecdsa ? X509KeyUsageFlags.DigitalSignature : X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        if (names.Length > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var n in names)
            {
                san.AddDnsName(n);
            }

            san.AddIpAddress(IPAddress.Loopback);
            req.CertificateExtensions.Add(san.Build());
        }

        var serial = BitConverter.GetBytes(Interlocked.Increment(ref _serial));
        Array.Reverse(serial);
        var notBefore = expired ? DateTimeOffset.UtcNow.AddDays(-10) : DateTimeOffset.UtcNow.AddDays(-1);
        var notAfter = expired ? DateTimeOffset.UtcNow.AddDays(-5) : DateTimeOffset.UtcNow.AddDays(20);
        using var signed = req.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForRSA(_key, RSASignaturePadding.Pkcs1), notBefore, notAfter, serial);
        return key is ECDsa e2 ? signed.CopyWithPrivateKey(e2) : signed.CopyWithPrivateKey((RSA)key);
    }

    /// <summary>A CRL of this CA revoking the given certificates, as PEM.</summary>
    public string CrlPem(params X509Certificate2[] revoked)
    {
        var builder = new CertificateRevocationListBuilder();
        foreach (var c in revoked)
        {
            builder.AddEntry(c, DateTimeOffset.UtcNow.AddMinutes(-5));
        }

        var der = builder.Build(Certificate, BigInteger.One, DateTimeOffset.UtcNow.AddDays(7), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1, DateTimeOffset.UtcNow.AddMinutes(-1));
        return PemEncoding.WriteString("X509 CRL", der) + "\n";
    }

    /// <summary>Writes a certificate (and optionally the CA after it, a chain) and its key as PEM files.</summary>
    public static (string Cert, string Key) Write(TempDir dir, string name, X509Certificate2 cert, string? chainPem = null)
    {
        var certPath = dir.Write(name + ".crt", cert.ExportCertificatePem() + "\n" + (chainPem ?? string.Empty));
        var key = (AsymmetricAlgorithm?)cert.GetRSAPrivateKey() ?? cert.GetECDsaPrivateKey()!;
        var keyPath = dir.Write(name + ".key", key.ExportPkcs8PrivateKeyPem() + "\n");
        return (certPath, keyPath);
    }

    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }
}
