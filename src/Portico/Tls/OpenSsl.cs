using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portico.Tls;

/// <summary>
/// The few OpenSSL calls that .NET's SslStream does not expose and that nginx's semantics need: expanding
/// an OpenSSL cipher string (ssl_ciphers), OpenSSL's cipher names ($ssl_cipher), verifying a client chain
/// with CA files, CRLs and a depth exactly as nginx's OpenSSL does ($ssl_client_verify), and whether a
/// session was resumed ($ssl_session_reused). It is the same libssl/libcrypto .NET itself uses on Linux;
/// no TLS is done here. Entry points are resolved once; <see cref="IsAvailable"/> is false when they are not.
/// </summary>
public static unsafe class OpenSsl
{
    private static readonly nint Ssl = Load("libssl.so.3", "libssl.so.1.1", "libssl.so");
    private static readonly nint Crypto = Load("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so");

    private static readonly delegate* unmanaged<nint> TlsMethod = (delegate* unmanaged<nint>)Export(Ssl, "TLS_method");
    private static readonly delegate* unmanaged<nint, nint> SslCtxNew = (delegate* unmanaged<nint, nint>)Export(Ssl, "SSL_CTX_new");
    private static readonly delegate* unmanaged<nint, void> SslCtxFree = (delegate* unmanaged<nint, void>)Export(Ssl, "SSL_CTX_free");
    private static readonly delegate* unmanaged<nint, byte*, int> SslCtxSetCipherList = (delegate* unmanaged<nint, byte*, int>)Export(Ssl, "SSL_CTX_set_cipher_list");
    private static readonly delegate* unmanaged<nint, nint> SslCtxGetCiphers = (delegate* unmanaged<nint, nint>)Export(Ssl, "SSL_CTX_get_ciphers");
    private static readonly delegate* unmanaged<nint, byte*> SslCipherGetName = (delegate* unmanaged<nint, byte*>)Export(Ssl, "SSL_CIPHER_get_name");
    private static readonly delegate* unmanaged<nint, uint> SslCipherGetProtocolId = (delegate* unmanaged<nint, uint>)Export(Ssl, "SSL_CIPHER_get_protocol_id");
    private static readonly delegate* unmanaged<nint, int> SslSessionReused = (delegate* unmanaged<nint, int>)Export(Ssl, "SSL_session_reused");

    private static readonly delegate* unmanaged<nint, int> SkNum = (delegate* unmanaged<nint, int>)Export(Crypto, "OPENSSL_sk_num");
    private static readonly delegate* unmanaged<nint, int, nint> SkValue = (delegate* unmanaged<nint, int, nint>)Export(Crypto, "OPENSSL_sk_value");
    private static readonly delegate* unmanaged<nint> SkNewNull = (delegate* unmanaged<nint>)Export(Crypto, "OPENSSL_sk_new_null");
    private static readonly delegate* unmanaged<nint, nint, int> SkPush = (delegate* unmanaged<nint, nint, int>)Export(Crypto, "OPENSSL_sk_push");
    private static readonly delegate* unmanaged<nint, void> SkFree = (delegate* unmanaged<nint, void>)Export(Crypto, "OPENSSL_sk_free");
    private static readonly delegate* unmanaged<nint, byte**, long, nint> D2iX509 = (delegate* unmanaged<nint, byte**, long, nint>)Export(Crypto, "d2i_X509");
    private static readonly delegate* unmanaged<nint, void> X509Free = (delegate* unmanaged<nint, void>)Export(Crypto, "X509_free");
    private static readonly delegate* unmanaged<nint, byte**, long, nint> D2iX509Crl = (delegate* unmanaged<nint, byte**, long, nint>)Export(Crypto, "d2i_X509_CRL");
    private static readonly delegate* unmanaged<nint, void> X509CrlFree = (delegate* unmanaged<nint, void>)Export(Crypto, "X509_CRL_free");
    private static readonly delegate* unmanaged<nint> X509StoreNew = (delegate* unmanaged<nint>)Export(Crypto, "X509_STORE_new");
    private static readonly delegate* unmanaged<nint, void> X509StoreFree = (delegate* unmanaged<nint, void>)Export(Crypto, "X509_STORE_free");
    private static readonly delegate* unmanaged<nint, nint, int> X509StoreAddCert = (delegate* unmanaged<nint, nint, int>)Export(Crypto, "X509_STORE_add_cert");
    private static readonly delegate* unmanaged<nint, nint, int> X509StoreAddCrl = (delegate* unmanaged<nint, nint, int>)Export(Crypto, "X509_STORE_add_crl");
    private static readonly delegate* unmanaged<nint, ulong, int> X509StoreSetFlags = (delegate* unmanaged<nint, ulong, int>)Export(Crypto, "X509_STORE_set_flags");
    private static readonly delegate* unmanaged<nint> X509StoreCtxNew = (delegate* unmanaged<nint>)Export(Crypto, "X509_STORE_CTX_new");
    private static readonly delegate* unmanaged<nint, void> X509StoreCtxFree = (delegate* unmanaged<nint, void>)Export(Crypto, "X509_STORE_CTX_free");
    private static readonly delegate* unmanaged<nint, nint, nint, nint, int> X509StoreCtxInit = (delegate* unmanaged<nint, nint, nint, nint, int>)Export(Crypto, "X509_STORE_CTX_init");
    private static readonly delegate* unmanaged<nint, int, void> X509StoreCtxSetDepth = (delegate* unmanaged<nint, int, void>)Export(Crypto, "X509_STORE_CTX_set_depth");
    private static readonly delegate* unmanaged<nint, byte*, int> X509StoreCtxSetDefault = (delegate* unmanaged<nint, byte*, int>)Export(Crypto, "X509_STORE_CTX_set_default");
    private static readonly delegate* unmanaged<nint, int> X509VerifyCert = (delegate* unmanaged<nint, int>)Export(Crypto, "X509_verify_cert");
    private static readonly delegate* unmanaged<nint, int> X509StoreCtxGetError = (delegate* unmanaged<nint, int>)Export(Crypto, "X509_STORE_CTX_get_error");
    private static readonly delegate* unmanaged<long, byte*> X509VerifyCertErrorString = (delegate* unmanaged<long, byte*>)Export(Crypto, "X509_verify_cert_error_string");
    private static readonly delegate* unmanaged<void> ErrClearError = (delegate* unmanaged<void>)Export(Crypto, "ERR_clear_error");

    private static readonly Lazy<Dictionary<ushort, string>> CipherNames = new(LoadCipherNames);

    /// <summary>X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL, as nginx's ssl_crl sets.</summary>
    private const ulong CrlCheckAll = 0x4 | 0x8;

    public static bool IsAvailable => Ssl != 0 && Crypto != 0 && TlsMethod != null && X509VerifyCert != null;

    private static nint Load(params string[] names)
    {
        foreach (var name in names)
        {
            if (NativeLibrary.TryLoad(name, out var handle))
            {
                return handle;
            }
        }

        return 0;
    }

    private static nint Export(nint library, string name) =>
        library != 0 && NativeLibrary.TryGetExport(library, name, out var address) ? address : 0;

    private static string? Utf8(byte* p) => p == null ? null : Marshal.PtrToStringUTF8((nint)p);

    /// <summary>
    /// Expands an OpenSSL cipher string into IANA cipher suite ids in OpenSSL's order (TLS 1.3 suites included
    /// as OpenSSL lists them). Null when OpenSSL matches no cipher (nginx's "no cipher match").
    /// </summary>
    public static List<ushort>? ExpandCipherList(string cipherString)
    {
        if (!IsAvailable)
        {
            throw new PlatformNotSupportedException("libssl is not available");
        }

        var ctx = SslCtxNew(TlsMethod());
        if (ctx == 0)
        {
            throw new InvalidOperationException("SSL_CTX_new() failed");
        }

        try
        {
            var bytes = Encoding.ASCII.GetBytes(cipherString + "\0");
            fixed (byte* p = bytes)
            {
                if (SslCtxSetCipherList(ctx, p) == 0)
                {
                    ErrClearError();
                    return null;
                }
            }

            var stack = SslCtxGetCiphers(ctx);
            var list = new List<ushort>();
            var n = SkNum(stack);
            for (var i = 0; i < n; i++)
            {
                list.Add((ushort)SslCipherGetProtocolId(SkValue(stack, i)));
            }

            return list;
        }
        finally
        {
            SslCtxFree(ctx);
        }
    }

    /// <summary>OpenSSL's name of a cipher suite ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_256_GCM_SHA384").</summary>
    public static string? CipherName(ushort ianaId) => CipherNames.Value.TryGetValue(ianaId, out var name) ? name : null;

    private static Dictionary<ushort, string> LoadCipherNames()
    {
        var map = new Dictionary<ushort, string>();
        if (!IsAvailable)
        {
            return map;
        }

        var ctx = SslCtxNew(TlsMethod());
        if (ctx == 0)
        {
            return map;
        }

        try
        {
            var bytes = "ALL:COMPLEMENTOFALL:@SECLEVEL=0\0"u8;
            fixed (byte* p = bytes)
            {
                if (SslCtxSetCipherList(ctx, p) == 0)
                {
                    ErrClearError();
                }
            }

            var stack = SslCtxGetCiphers(ctx);
            var n = SkNum(stack);
            for (var i = 0; i < n; i++)
            {
                var c = SkValue(stack, i);
                var name = Utf8(SslCipherGetName(c));
                if (name is not null)
                {
                    map.TryAdd((ushort)SslCipherGetProtocolId(c), name);
                }
            }
        }
        finally
        {
            SslCtxFree(ctx);
        }

        return map;
    }

    /// <summary>SSL_session_reused on an SSL* handle.</summary>
    public static bool SessionReused(nint ssl) => SslSessionReused != null && ssl != 0 && SslSessionReused(ssl) == 1;

    /// <summary>A trust store: CA certificates and CRLs, as nginx builds from ssl_client_certificate,
    /// ssl_trusted_certificate and ssl_crl. Freed when collected.</summary>
    public sealed class TrustStore : SafeHandle
    {
        private TrustStore() : base(0, true)
        {
        }

        public override bool IsInvalid => handle == 0;

        public bool HasCrls { get; private set; }

        public static TrustStore Create(IEnumerable<X509Certificate2> certificates, IEnumerable<byte[]> crls)
        {
            if (!IsAvailable)
            {
                throw new PlatformNotSupportedException("libcrypto is not available");
            }

            var store = new TrustStore();
            store.SetHandle(X509StoreNew());
            foreach (var cert in certificates)
            {
                var x = ToX509(cert.RawData);
                if (x == 0)
                {
                    continue;
                }

                X509StoreAddCert(store.handle, x);
                X509Free(x);
            }

            foreach (var der in crls)
            {
                fixed (byte* p = der)
                {
                    var q = p;
                    var crl = D2iX509Crl(0, &q, der.Length);
                    if (crl != 0)
                    {
                        X509StoreAddCrl(store.handle, crl);
                        X509CrlFree(crl);
                        store.HasCrls = true;
                    }
                }
            }

            if (store.HasCrls)
            {
                X509StoreSetFlags(store.handle, CrlCheckAll);
            }

            ErrClearError();
            return store;
        }

        protected override bool ReleaseHandle()
        {
            X509StoreFree(handle);
            return true;
        }

        /// <summary>
        /// Verifies a client certificate with its chain as sent (untrusted), for the "ssl_client" purpose and
        /// the given depth. Returns X509_V_OK (0) or OpenSSL's error code.
        /// </summary>
        public int Verify(X509Certificate2 leaf, IEnumerable<X509Certificate2> untrusted, int depth)
        {
            var added = false;
            DangerousAddRef(ref added);
            var x = ToX509(leaf.RawData);
            var stack = SkNewNull();
            var ctx = X509StoreCtxNew();
            var chain = new List<nint>();
            try
            {
                if (x == 0 || ctx == 0)
                {
                    return 1; // X509_V_ERR_UNSPECIFIED
                }

                foreach (var c in untrusted)
                {
                    var cx = ToX509(c.RawData);
                    if (cx != 0)
                    {
                        chain.Add(cx);
                        SkPush(stack, cx);
                    }
                }

                if (X509StoreCtxInit(ctx, handle, x, stack) != 1)
                {
                    return 1;
                }

                fixed (byte* purpose = "ssl_client\0"u8)
                {
                    X509StoreCtxSetDefault(ctx, purpose);
                }

                X509StoreCtxSetDepth(ctx, depth);
                var ok = X509VerifyCert(ctx);
                var error = ok == 1 ? 0 : X509StoreCtxGetError(ctx);
                return ok == 1 ? 0 : error == 0 ? 1 : error;
            }
            finally
            {
                if (ctx != 0)
                {
                    X509StoreCtxFree(ctx);
                }

                SkFree(stack);
                foreach (var c in chain)
                {
                    X509Free(c);
                }

                if (x != 0)
                {
                    X509Free(x);
                }

                ErrClearError();
                if (added)
                {
                    DangerousRelease();
                }
            }
        }
    }

    /// <summary>X509_verify_cert_error_string: "certificate has expired", "unable to get local issuer certificate" ...</summary>
    public static string VerifyErrorString(int code) =>
        X509VerifyCertErrorString == null ? "error " + code : Utf8(X509VerifyCertErrorString(code)) ?? "error " + code;

    private static nint ToX509(byte[] der)
    {
        fixed (byte* p = der)
        {
            var q = p;
            return D2iX509(0, &q, der.Length);
        }
    }

    /// <summary>X509_V_ERR_* codes nginx's optional_no_ca tolerates (ngx_ssl_verify_error_optional).</summary>
    public static bool IsOptionalError(int code) => code is 18 or 19 or 20 or 27 or 21;
}
