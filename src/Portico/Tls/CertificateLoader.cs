using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Portico.Config.Syntax;

namespace Portico.Tls;

/// <summary>The key type of a server certificate (nginx serves one of each, chosen by what the client accepts).</summary>
public enum CertificateKeyKind
{
    Rsa,
    Ecdsa,
    Other,
}

/// <summary>A loaded server certificate: the leaf with its key and the chain that follows it in the file.</summary>
public sealed class LoadedCertificate
{
    public LoadedCertificate(X509Certificate2 leaf, X509Certificate2Collection chain, string certPath)
    {
        Leaf = leaf;
        Chain = chain;
        CertPath = certPath;
        Kind = leaf.GetKeyAlgorithm() switch
        {
            "1.2.840.113549.1.1.1" or "1.2.840.113549.1.1.10" => CertificateKeyKind.Rsa,
            "1.2.840.10045.2.1" => CertificateKeyKind.Ecdsa,
            _ => CertificateKeyKind.Other,
        };
    }

    public X509Certificate2 Leaf { get; }
    public X509Certificate2Collection Chain { get; }
    public string CertPath { get; }
    public CertificateKeyKind Kind { get; }
}

/// <summary>
/// Reads PEM certificates, keys, CA lists and CRLs the way nginx does at configuration time, failing with
/// nginx's messages (OpenSSL's error text where nginx prints it).
/// </summary>
public static class CertificateLoader
{
    /// <summary>Reads a file named by a directive; "data:..." is the content itself (nginx ≥ 1.15.10).</summary>
    public static string ReadText(string path, string prefix)
    {
        if (path.StartsWith("data:", StringComparison.Ordinal))
        {
            return path[5..];
        }

        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{prefix} failed ({OpenSslFileError(path, e)})", null, 0);
        }
    }

    /// <summary>OpenSSL 3's text for a failed fopen, as nginx prints it after "BIO_new_file() failed".</summary>
    public static string OpenSslFileError(string path, Exception e)
    {
        var (code, text) = e switch
        {
            UnauthorizedAccessException => ("8000000D", "Permission denied"),
            DirectoryNotFoundException or FileNotFoundException => ("80000002", "No such file or directory"),
            _ => ("80000005", e.Message),
        };
        var bio = code == "80000002" ? "no such file" : "system lib";
        return $"SSL: error:{code}:system library::{text}:calling fopen({path}, r) error:10000080:BIO routines::{bio}";
    }

    /// <summary>ngx_ssl_certificate for one ssl_certificate / ssl_certificate_key pair.</summary>
    public static LoadedCertificate Load(string certPath, string keyPath, IReadOnlyList<string>? passwords)
    {
        string certText;
        try
        {
            certText = certPath.StartsWith("data:", StringComparison.Ordinal) ? certPath[5..] : File.ReadAllText(certPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot load certificate \"{certPath}\": BIO_new_file() failed ({OpenSslFileError(certPath, e)})", null, 0);
        }

        var certs = new X509Certificate2Collection();
        try
        {
            certs.ImportFromPem(certText);
        }
        catch (CryptographicException)
        {
            certs.Clear();
        }

        if (certs.Count == 0)
        {
            throw new ConfigException($"cannot load certificate \"{certPath}\": PEM_read_bio_X509_AUX() failed (SSL: error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE)", null, 0);
        }

        string keyText;
        try
        {
            keyText = keyPath.StartsWith("data:", StringComparison.Ordinal) ? keyPath[5..] : File.ReadAllText(keyPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot load certificate key \"{keyPath}\": BIO_new_file() failed ({OpenSslFileError(keyPath, e)})", null, 0);
        }

        var leafPem = PemEncoding.Write("CERTIFICATE", certs[0].RawData);
        X509Certificate2 leaf;
        if (keyText.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal))
        {
            leaf = LoadEncrypted(leafPem, keyText, keyPath, passwords);
        }
        else if (keyText.Contains("Proc-Type: 4,ENCRYPTED", StringComparison.Ordinal))
        {
            throw new ConfigException($"cannot load certificate key \"{keyPath}\": PEM_read_bio_PrivateKey() failed (legacy OpenSSL-encrypted keys are not supported by Portico; convert the key with \"openssl pkcs8 -topk8\")", null, 0);
        }
        else
        {
            leaf = LoadPlain(leafPem, keyText, keyPath);
        }

        var chain = new X509Certificate2Collection();
        for (var i = 1; i < certs.Count; i++)
        {
            chain.Add(certs[i]);
        }

        return new LoadedCertificate(leaf, chain, certPath);
    }

    private static X509Certificate2 LoadPlain(ReadOnlySpan<char> certPem, string keyText, string keyPath)
    {
        if (!HasKeyBlock(keyText))
        {
            throw new ConfigException($"cannot load certificate key \"{keyPath}\": PEM_read_bio_PrivateKey() failed (SSL: error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM)", null, 0);
        }

        try
        {
            return X509Certificate2.CreateFromPem(certPem, keyText);
        }
        catch (CryptographicException e)
        {
            throw KeyError(keyPath, e);
        }
    }

    private static X509Certificate2 LoadEncrypted(ReadOnlySpan<char> certPem, string keyText, string keyPath, IReadOnlyList<string>? passwords)
    {
        if (passwords is null || passwords.Count == 0)
        {
            // nginx would prompt on the terminal; a server cannot.
            throw new ConfigException($"cannot load certificate key \"{keyPath}\": PEM_read_bio_PrivateKey() failed (the key is encrypted and no \"ssl_password_file\" is set)", null, 0);
        }

        foreach (var password in passwords)
        {
            try
            {
                return X509Certificate2.CreateFromEncryptedPem(certPem, keyText, password);
            }
            catch (CryptographicException e) when (IsMismatch(e))
            {
                throw KeyError(keyPath, e);
            }
            catch (CryptographicException)
            {
            }
        }

        throw new ConfigException($"cannot load certificate key \"{keyPath}\": PEM_read_bio_PrivateKey() failed (SSL: error:1C800064:Provider routines::bad decrypt)", null, 0);
    }

    private static bool HasKeyBlock(string text) =>
        text.Contains("-----BEGIN PRIVATE KEY-----", StringComparison.Ordinal)
        || text.Contains("-----BEGIN RSA PRIVATE KEY-----", StringComparison.Ordinal)
        || text.Contains("-----BEGIN EC PRIVATE KEY-----", StringComparison.Ordinal);

    private static bool IsMismatch(CryptographicException e) =>
        e.Message.Contains("public key", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("does not match", StringComparison.OrdinalIgnoreCase);

    private static ConfigException KeyError(string keyPath, CryptographicException e) => IsMismatch(e)
        ? new ConfigException($"SSL_CTX_use_PrivateKey(\"{keyPath}\") failed (SSL: error:05800074:x509 certificate routines::key values mismatch)", null, 0)
        : new ConfigException($"cannot load certificate key \"{keyPath}\": PEM_read_bio_PrivateKey() failed ({e.Message})", null, 0);

    /// <summary>ngx_ssl_read_password_file: one password per line, trailing CR and blanks dropped.</summary>
    public static List<string> ReadPasswords(string path, Directive at)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"open() \"{path}\" failed ({Compilation.ErrorLogFactory.Errno(e)})", at.File, at.Line);
        }

        var list = new List<string>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r', ' ', '\t');
            if (line.Length > 0)
            {
                list.Add(line);
            }
        }

        if (list.Count == 0)
        {
            throw new ConfigException($"empty file \"{path}\"", at.File, at.Line);
        }

        return list;
    }

    /// <summary>Certificates of a CA file (ssl_client_certificate, ssl_trusted_certificate), nginx's wording on failure.</summary>
    public static X509Certificate2Collection LoadCaFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"SSL_CTX_load_verify_locations(\"{path}\") failed ({OpenSslFileError(path, e)} error:05880002:x509 certificate routines::system lib)", null, 0);
        }

        var certs = new X509Certificate2Collection();
        try
        {
            certs.ImportFromPem(text);
        }
        catch (CryptographicException)
        {
            certs.Clear();
        }

        if (certs.Count == 0)
        {
            throw new ConfigException($"SSL_CTX_load_verify_locations(\"{path}\") failed (SSL: error:05880009:x509 certificate routines::PEM lib)", null, 0);
        }

        return certs;
    }

    /// <summary>The DER of every CRL in a PEM file (ssl_crl).</summary>
    public static List<byte[]> LoadCrlFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"X509_LOOKUP_load_file(\"{path}\") failed ({OpenSslFileError(path, e)} error:05880002:x509 certificate routines::system lib)", null, 0);
        }

        var list = new List<byte[]>();
        var span = text.AsSpan();
        while (PemEncoding.TryFind(span, out var fields))
        {
            if (span[fields.Label].SequenceEqual("X509 CRL"))
            {
                list.Add(Convert.FromBase64String(span[fields.Base64Data].ToString()));
            }

            span = span[fields.Location.End.Value..];
        }

        if (list.Count == 0)
        {
            throw new ConfigException($"X509_LOOKUP_load_file(\"{path}\") failed (SSL: error:05880009:x509 certificate routines::PEM lib)", null, 0);
        }

        return list;
    }

    /// <summary>Checks a PEM block exists in a file (ssl_dhparam), nginx's wording on failure.</summary>
    public static void CheckPemBlock(string path, string label, string function)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"BIO_new_file(\"{path}\") failed ({OpenSslFileError(path, e)})", null, 0);
        }

        if (!text.Contains("-----BEGIN " + label + "-----", StringComparison.Ordinal))
        {
            throw new ConfigException($"{function}(\"{path}\") failed (SSL: error:0480006C:PEM routines::no start line)", null, 0);
        }
    }

    /// <summary>The PEM of a certificate as nginx's $ssl_client_raw_cert gives it.</summary>
    public static string ToPem(X509Certificate2 cert)
    {
        var sb = new StringBuilder(PemEncoding.Write("CERTIFICATE", cert.RawData).Length + 2);
        sb.Append(PemEncoding.Write("CERTIFICATE", cert.RawData)).Append('\n');
        return sb.ToString();
    }
}
