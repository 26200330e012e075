using System.Buffers;

namespace Portico.Tls;

/// <summary>
/// What a TLS ClientHello offers that SslStream does not tell the server before it must pick a certificate:
/// cipher suites, signature algorithms and whether TLS 1.3 is offered. Read only, from bytes peeked before
/// the handshake; used to choose between an RSA and an ECDSA certificate as OpenSSL does for nginx.
/// </summary>
public sealed class ClientHello
{
    private ClientHello(ushort[] ciphers, ushort[] signatureAlgorithms, bool offersTls13)
    {
        Ciphers = ciphers;
        SignatureAlgorithms = signatureAlgorithms;
        OffersTls13 = offersTls13;
    }

    public IReadOnlyList<ushort> Ciphers { get; }
    public IReadOnlyList<ushort> SignatureAlgorithms { get; }
    public bool OffersTls13 { get; }

    /// <summary>The bytes of the handshake message needed, or -1 when the data is not a TLS handshake record.</summary>
    public static int NeededLength(ReadOnlySequence<byte> data)
    {
        if (data.Length < 9)
        {
            return 9;
        }

        Span<byte> head = stackalloc byte[9];
        data.Slice(0, 9).CopyTo(head);
        if (head[0] != 0x16 || head[5] != 0x01)
        {
            return -1;
        }

        var handshakeLength = (head[6] << 16) | (head[7] << 8) | head[8];
        // The message may span records; each extra record adds a 5-byte header. Bounded by the caller.
        return 5 + 4 + handshakeLength;
    }

    /// <summary>Parses a ClientHello from the start of the connection's bytes; null when incomplete or malformed.</summary>
    public static ClientHello? TryParse(ReadOnlySequence<byte> data)
    {
        var bytes = data.ToArray();
        var message = new List<byte>(bytes.Length);
        var pos = 0;
        var needed = -1;
        while (pos + 5 <= bytes.Length)
        {
            if (bytes[pos] != 0x16)
            {
                return null;
            }

            var len = (bytes[pos + 3] << 8) | bytes[pos + 4];
            if (pos + 5 + len > bytes.Length)
            {
                break;
            }

            for (var i = 0; i < len; i++)
            {
                message.Add(bytes[pos + 5 + i]);
            }

            pos += 5 + len;
            if (needed < 0 && message.Count >= 4)
            {
                needed = 4 + ((message[1] << 16) | (message[2] << 8) | message[3]);
            }

            if (needed >= 0 && message.Count >= needed)
            {
                break;
            }
        }

        if (needed < 0 || message.Count < needed || message[0] != 0x01)
        {
            return null;
        }

        try
        {
            return Parse([.. message.GetRange(4, needed - 4)]);
        }
        catch (IndexOutOfRangeException)
        {
            return null;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static ClientHello? Parse(byte[] m)
    {
        var p = 2 + 32; // client_version, random
        p += 1 + m[p]; // session id
        var cipherBytes = (m[p] << 8) | m[p + 1];
        p += 2;
        var ciphers = new ushort[cipherBytes / 2];
        for (var i = 0; i < ciphers.Length; i++)
        {
            ciphers[i] = (ushort)((m[p + 2 * i] << 8) | m[p + 2 * i + 1]);
        }

        p += cipherBytes;
        p += 1 + m[p]; // compression methods
        ushort[] sigalgs = [];
        var tls13 = false;
        if (p + 2 <= m.Length)
        {
            var end = p + 2 + ((m[p] << 8) | m[p + 1]);
            p += 2;
            while (p + 4 <= end && end <= m.Length)
            {
                var type = (m[p] << 8) | m[p + 1];
                var len = (m[p + 2] << 8) | m[p + 3];
                var body = p + 4;
                if (type == 13 && len >= 2)
                {
                    var listLen = (m[body] << 8) | m[body + 1];
                    sigalgs = new ushort[listLen / 2];
                    for (var i = 0; i < sigalgs.Length; i++)
                    {
                        sigalgs[i] = (ushort)((m[body + 2 + 2 * i] << 8) | m[body + 3 + 2 * i]);
                    }
                }
                else if (type == 43 && len >= 1)
                {
                    var listLen = m[body];
                    for (var i = 0; i + 1 < listLen; i += 2)
                    {
                        if (m[body + 1 + i] == 0x03 && m[body + 2 + i] == 0x04)
                        {
                            tls13 = true;
                        }
                    }
                }

                p = body + len;
            }
        }

        return new ClientHello(ciphers, sigalgs, tls13);
    }

    /// <summary>The key type a signature algorithm needs (TLS 1.2/1.3 SignatureScheme codes).</summary>
    public static CertificateKeyKind SignatureKind(ushort scheme) => scheme switch
    {
        0x0403 or 0x0503 or 0x0603 or 0x0203 => CertificateKeyKind.Ecdsa,
        0x0401 or 0x0501 or 0x0601 or 0x0201 or 0x0804 or 0x0805 or 0x0806 => CertificateKeyKind.Rsa,
        _ => CertificateKeyKind.Other,
    };

    /// <summary>The key type a TLS 1.2 cipher suite authenticates with, from OpenSSL's name.</summary>
    public static CertificateKeyKind CipherKind(ushort suite)
    {
        var name = OpenSsl.CipherName(suite);
        if (name is null || name.StartsWith("TLS_", StringComparison.Ordinal))
        {
            return CertificateKeyKind.Other;
        }

        if (name.Contains("ECDSA", StringComparison.Ordinal))
        {
            return CertificateKeyKind.Ecdsa;
        }

        return name.Contains("PSK", StringComparison.Ordinal) || name.Contains("SRP", StringComparison.Ordinal)
            ? CertificateKeyKind.Other
            : CertificateKeyKind.Rsa;
    }

    /// <summary>
    /// Picks among certificates of different key types as OpenSSL would: under TLS 1.3 the client's first
    /// signature algorithm that a certificate can serve; under TLS 1.2 the client's first cipher suite that a
    /// certificate can authenticate. The first certificate when nothing decides.
    /// </summary>
    public static int Choose(IReadOnlyList<LoadedCertificate> certificates, ClientHello? hello, bool tls13Enabled)
    {
        if (certificates.Count < 2 || hello is null)
        {
            return 0;
        }

        if (hello.OffersTls13 && tls13Enabled)
        {
            foreach (var s in hello.SignatureAlgorithms)
            {
                var i = IndexOf(certificates, SignatureKind(s));
                if (i >= 0)
                {
                    return i;
                }
            }

            return 0;
        }

        foreach (var c in hello.Ciphers)
        {
            var kind = CipherKind(c);
            if (kind == CertificateKeyKind.Other)
            {
                continue;
            }

            var i = IndexOf(certificates, kind);
            if (i >= 0)
            {
                return i;
            }
        }

        return 0;
    }

    private static int IndexOf(IReadOnlyList<LoadedCertificate> certificates, CertificateKeyKind kind)
    {
        if (kind == CertificateKeyKind.Other)
        {
            return -1;
        }

        for (var i = 0; i < certificates.Count; i++)
        {
            if (certificates[i].Kind == kind)
            {
                return i;
            }
        }

        return -1;
    }
}
