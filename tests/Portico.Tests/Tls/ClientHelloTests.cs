using System.Buffers;
using System.Security.Cryptography.X509Certificates;
using Portico.Tls;

namespace Portico.Tests.Tls;

public class ClientHelloTests
{
    /// <summary>A TLS record with a ClientHello offering the cipher suites, signature schemes and (optionally) TLS 1.3.</summary>
    private static byte[] Hello(ushort[] ciphers, ushort[] sigalgs, bool tls13, int splitAt = 0)
    {
        var body = new List<byte> { 0x03, 0x03 };
        body.AddRange(new byte[32]);
        body.Add(0);
        body.Add((byte)(ciphers.Length * 2 >> 8));
        body.Add((byte)(ciphers.Length * 2));
        foreach (var c in ciphers)
        {
            body.Add((byte)(c >> 8));
            body.Add((byte)c);
        }

        body.AddRange([1, 0]);
        var ext = new List<byte>();
        ext.AddRange([0, 13, (byte)((sigalgs.Length * 2 + 2) >> 8), (byte)(sigalgs.Length * 2 + 2), (byte)(sigalgs.Length * 2 >> 8), (byte)(sigalgs.Length * 2)]);
        foreach (var s in sigalgs)
        {
            ext.Add((byte)(s >> 8));
            ext.Add((byte)s);
        }

        if (tls13)
        {
            ext.AddRange([0, 43, 0, 5, 4, 0x03, 0x04, 0x03, 0x03]);
        }

        body.Add((byte)(ext.Count >> 8));
        body.Add((byte)ext.Count);
        body.AddRange(ext);
        var handshake = new List<byte> { 1, (byte)(body.Count >> 16), (byte)(body.Count >> 8), (byte)body.Count };
        handshake.AddRange(body);
        var records = new List<byte>();
        var parts = splitAt > 0 ? new[] { handshake.Take(splitAt).ToArray(), handshake.Skip(splitAt).ToArray() } : new[] { handshake.ToArray() };
        foreach (var part in parts)
        {
            records.AddRange([0x16, 0x03, 0x01, (byte)(part.Length >> 8), (byte)part.Length]);
            records.AddRange(part);
        }

        return [.. records];
    }

    private static LoadedCertificate Cert(bool ecdsa)
    {
        using System.Security.Cryptography.AsymmetricAlgorithm key = ecdsa ? System.Security.Cryptography.ECDsa.Create() : System.Security.Cryptography.RSA.Create(2048);
        var req = key is System.Security.Cryptography.ECDsa ec
            ? new CertificateRequest("CN=x", ec, System.Security.Cryptography.HashAlgorithmName.SHA256)
            : new CertificateRequest("CN=x", (System.Security.Cryptography.RSA)key, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        return new LoadedCertificate(req.CreateSelfSigned(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1)), [], "x");
    }

    [Fact]
    public void ParsesCiphersSignatureAlgorithmsAndVersions()
    {
        var bytes = Hello([0xC02F, 0xC02B], [0x0804, 0x0403], tls13: true);
        Assert.Equal(bytes.Length, ClientHello.NeededLength(new ReadOnlySequence<byte>(bytes)));
        var hello = ClientHello.TryParse(new ReadOnlySequence<byte>(bytes))!;
        Assert.Equal(new ushort[] { 0xC02F, 0xC02B }, hello.Ciphers);
        Assert.Equal(new ushort[] { 0x0804, 0x0403 }, hello.SignatureAlgorithms);
        Assert.True(hello.OffersTls13);
    }

    [Fact]
    public void ReassemblesAHelloSplitAcrossRecordsAndRejectsPlainText()
    {
        var bytes = Hello([0xC02F], [0x0401], tls13: false, splitAt: 20);
        var hello = ClientHello.TryParse(new ReadOnlySequence<byte>(bytes))!;
        Assert.Equal(new ushort[] { 0xC02F }, hello.Ciphers);
        Assert.False(hello.OffersTls13);
        Assert.Null(ClientHello.TryParse(new ReadOnlySequence<byte>(bytes.AsMemory(0, bytes.Length - 3))));
        Assert.Equal(-1, ClientHello.NeededLength(new ReadOnlySequence<byte>("GET / HTTP/1.1\r\n"u8.ToArray())));
    }

    [Fact]
    public void ChoosesTheCertificateTheClientPrefers()
    {
        LoadedCertificate[] certs = [Cert(ecdsa: false), Cert(ecdsa: true)];
        ClientHello Parse(byte[] b) => ClientHello.TryParse(new ReadOnlySequence<byte>(b))!;

        // TLS 1.3: the first signature scheme the client lists that a certificate serves.
        Assert.Equal(1, ClientHello.Choose(certs, Parse(Hello([0x1301], [0x0403, 0x0804], tls13: true)), tls13Enabled: true));
        Assert.Equal(0, ClientHello.Choose(certs, Parse(Hello([0x1301], [0x0804, 0x0403], tls13: true)), tls13Enabled: true));
        // TLS 1.2: the first cipher suite a certificate can authenticate (ECDHE-RSA / ECDHE-ECDSA).
        Assert.Equal(0, ClientHello.Choose(certs, Parse(Hello([0xC02F, 0xC02B], [0x0403, 0x0401], tls13: false)), tls13Enabled: true));
        Assert.Equal(1, ClientHello.Choose(certs, Parse(Hello([0xC02B, 0xC02F], [0x0401, 0x0403], tls13: false)), tls13Enabled: true));
        // TLS 1.3 offered but disabled on the server: cipher suites decide.
        Assert.Equal(1, ClientHello.Choose(certs, Parse(Hello([0xC02C], [0x0804], tls13: true)), tls13Enabled: false));
        Assert.Equal(0, ClientHello.Choose(certs, null, tls13Enabled: true));
    }

    [Fact]
    public void DistinguishedNamesAreRfc2253LikeOpenSsl()
    {
        var name = new X500DistinguishedName("CN=\"a, b\", OU=Dev, O=Example, C=US");
        Assert.Equal("CN=a\\, b,OU=Dev,O=Example,C=US", DistinguishedName.Rfc2253(name));
    }
}
