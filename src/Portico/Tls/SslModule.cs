using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Hosting;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Tls;

/// <summary>
/// ngx_http_ssl_module on Kestrel's TLS (SslStream): certificates read at configuration time and chosen per
/// connection by SNI from the current snapshot, protocols, ciphers, client certificates with nginx's
/// verification and 400 pages, the plain-HTTP-to-HTTPS-port 497, and the $ssl_* variables.
/// </summary>
public sealed class SslModule : PorticoModule, IServiceModule
{
    public override string Name => "ssl";

    private static readonly string[] KnownCurves =
    [
        "auto", "X25519", "X448", "prime256v1", "secp384r1", "secp521r1", "P-256", "P-384", "P-521",
        "secp256r1", "x25519", "x448", "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192",
        "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1", "X25519MLKEM768", "SecP256r1MLKEM768",
    ];

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<SslServerSettings>(SettingsScope.Server);
        const Ctx hs = Ctx.HttpServer;
        Add(r, "ssl_certificate", Arity.One, c => (S(c).Certificates ??= []).Add(new PathArg(c[0], c.Directive)), repeatable: true);
        Add(r, "ssl_certificate_key", Arity.One, c => (S(c).CertificateKeys ??= []).Add(new PathArg(c[0], c.Directive)), repeatable: true);
        Add(r, "ssl_password_file", Arity.One, c =>
        {
            S(c).Passwords = CertificateLoader.ReadPasswords(c.Model.Paths.FromConfPrefix(c[0]), c.Directive);
            S(c).PasswordsSet = true;
        });
        Add(r, "ssl_protocols", Arity.OneOrMore, Protocols);
        Add(r, "ssl_ciphers", Arity.One, c =>
        {
            S(c).Ciphers = c[0];
            S(c).CiphersAt = c.Directive;
        });
        Add(r, "ssl_prefer_server_ciphers", Arity.Flag, c =>
        {
            S(c).PreferServerCiphers = c.Flag(0);
            if (!c.Flag(0))
            {
                c.Warn("\"ssl_prefer_server_ciphers off\" cannot be applied: .NET's SslStream always prefers the server's cipher order");
            }
        });
        Add(r, "ssl_dhparam", Arity.One, c => S(c).Dhparam = new PathArg(c[0], c.Directive));
        Add(r, "ssl_ecdh_curve", Arity.One, c => S(c).EcdhCurve = new PathArg(c[0], c.Directive));
        Add(r, "ssl_verify_client", Arity.One, c => S(c).Verify = c[0] switch
        {
            "off" => VerifyClient.Off,
            "on" => VerifyClient.On,
            "optional" => VerifyClient.Optional,
            "optional_no_ca" => VerifyClient.OptionalNoCa,
            _ => throw c.Emerg($"invalid value \"{c[0]}\""),
        });
        Add(r, "ssl_verify_depth", Arity.One, c => S(c).VerifyDepth = c.Number(0));
        Add(r, "ssl_client_certificate", Arity.One, c => S(c).ClientCertificate = new PathArg(c[0], c.Directive));
        Add(r, "ssl_trusted_certificate", Arity.One, c => S(c).TrustedCertificate = new PathArg(c[0], c.Directive));
        Add(r, "ssl_crl", Arity.One, c => S(c).Crl = new PathArg(c[0], c.Directive));
        Add(r, "ssl_session_cache", Arity.Range(1, 2), SessionCache);
        Add(r, "ssl_session_tickets", Arity.Flag, c => S(c).SessionTickets = c.Flag(0));
        Add(r, "ssl_session_ticket_key", Arity.One, c => (S(c).SessionTicketKeys ??= []).Add(new PathArg(c[0], c.Directive)), repeatable: true);
        Add(r, "ssl_session_timeout", Arity.One, c =>
        {
            S(c).SessionTimeout = c.Seconds(0);
            S(c).SessionTimeoutAt = c.Directive;
        });
        Add(r, "ssl_stapling", Arity.Flag, c =>
        {
            S(c).Stapling = c.Flag(0);
            S(c).StaplingAt = c.Directive;
        });
        Add(r, "ssl_stapling_verify", Arity.Flag, c => S(c).StaplingVerify = c.Flag(0));
        Add(r, "ssl_stapling_file", Arity.One, c => c.Warn("\"ssl_stapling_file\" is not supported by Portico: .NET fetches OCSP responses itself, ignored"));
        Add(r, "ssl_stapling_responder", Arity.One, c => c.Warn("\"ssl_stapling_responder\" is not supported by Portico: .NET uses the certificate's OCSP URL, ignored"));
        Add(r, "ssl_early_data", Arity.Flag, c =>
        {
            if (c.Flag(0))
            {
                throw c.Emerg("\"ssl_early_data\" is not supported by Portico: .NET's SslStream does not accept TLS 1.3 early data");
            }

            S(c).EarlyData = false;
        });
        Add(r, "ssl_buffer_size", Arity.One, c =>
        {
            S(c).BufferSize = c.Size(0);
            if (S(c).BufferSize != 16 * 1024)
            {
                c.Warn("\"ssl_buffer_size\" is fixed at 16k by .NET's SslStream, ignored");
            }
        });
        Add(r, "ssl_reject_handshake", Arity.Flag, c => S(c).RejectHandshake = c.Flag(0));
        Add(r, "ssl_conf_command", Arity.Two, c => throw c.Emerg("\"ssl_conf_command\" is not supported by Portico: .NET's SslStream takes no OpenSSL configuration commands"), repeatable: true);
        Add(r, "ssl_ocsp", Arity.One, c =>
        {
            if (c[0] is not ("off" or "on" or "leaf"))
            {
                throw c.Emerg($"invalid value \"{c[0]}\"");
            }

            if (c[0] != "off")
            {
                throw c.Emerg("\"ssl_ocsp\" is not supported by Portico: client certificates are checked against \"ssl_crl\" only");
            }
        });
        Add(r, "ssl_ocsp_responder", Arity.One, c => throw c.Emerg("\"ssl_ocsp_responder\" is not supported by Portico"));
        Add(r, "ssl_ocsp_cache", Arity.One, c => throw c.Emerg("\"ssl_ocsp_cache\" is not supported by Portico"));

        void Add(DirectiveRegistry reg, string name, Arity arity, DirectiveHandler handler, bool repeatable = false) =>
            reg.Add(new DirectiveSpec(name, hs, arity, handler) { Module = Name, Repeatable = repeatable });
    }

    private static SslServerSettings S(DirectiveCall c) => c.Loc<SslServerSettings>();

    private static void Protocols(DirectiveCall c)
    {
        var bits = SslProtocolBits.None;
        var ignored = new List<string>();
        foreach (var a in c.Args)
        {
            var bit = a.Value switch
            {
                "SSLv2" => SslProtocolBits.SslV2,
                "SSLv3" => SslProtocolBits.SslV3,
                "TLSv1" => SslProtocolBits.TlsV1,
                "TLSv1.1" => SslProtocolBits.TlsV11,
                "TLSv1.2" => SslProtocolBits.TlsV12,
                "TLSv1.3" => SslProtocolBits.TlsV13,
                _ => throw c.Emerg($"invalid value \"{a.Value}\""),
            };
            if (bit < SslProtocolBits.TlsV12)
            {
                ignored.Add(a.Value);
            }

            bits |= bit;
        }

        if (ignored.Count > 0)
        {
            c.Warn($"\"ssl_protocols\" {string.Join(" ", ignored)} ignored: Portico serves TLSv1.2 and TLSv1.3 only");
        }

        if ((bits & (SslProtocolBits.TlsV12 | SslProtocolBits.TlsV13)) == 0)
        {
            throw c.Emerg("\"ssl_protocols\" enables no protocol Portico supports (TLSv1.2, TLSv1.3)");
        }

        S(c).Protocols = bits;
        S(c).ProtocolsAt = c.Directive;
    }

    /// <summary>ngx_http_ssl_session_cache: off | none | [builtin[:size]] [shared:name:size].</summary>
    private static void SessionCache(DirectiveCall c)
    {
        bool? cache = null;
        foreach (var a in c.Args)
        {
            var v = a.Value;
            if (v is "off" or "none")
            {
                cache = false;
                continue;
            }

            if (v == "builtin")
            {
                cache = true;
                continue;
            }

            if (v.StartsWith("builtin:", StringComparison.Ordinal) && v.Length > 8 && ConfigValues.TryParseNumber(v[8..], out _))
            {
                cache = true;
                continue;
            }

            if (v.StartsWith("shared:", StringComparison.Ordinal) && v.Length > 7)
            {
                var colon = v.IndexOf(':', 7);
                if (colon > 7 && ConfigValues.TryParseSize(v[(colon + 1)..], out var size))
                {
                    if (size < 8 * 4096)
                    {
                        throw c.Emerg($"session cache \"{v}\" is too small");
                    }

                    cache = true;
                    continue;
                }
            }

            throw c.Emerg($"invalid session cache \"{v}\"");
        }

        S(c).SessionCache = cache;
    }

    private const string KestrelMetricsName = "Microsoft.AspNetCore.Server.Kestrel.Core.Internal.Infrastructure.KestrelMetrics";

    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicConstructors, KestrelMetricsName, "Microsoft.AspNetCore.Server.Kestrel.Core")]
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "The type is kept by the DynamicDependency above.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "The constructors are kept by the DynamicDependency above.")]
    public void ConfigureServices(IServiceCollection services)
    {
        // Kestrel's UseHttps reads its metrics object from the application services.
        var metrics = typeof(KestrelServerOptions).Assembly.GetType(KestrelMetricsName);
        if (metrics is not null)
        {
            services.AddMetrics();
            services.AddSingleton(metrics);
        }
    }

    public override void CompileHttp(SnapshotBuilder snapshot)
    {
        snapshot.SupportedListenParameters.Add("ssl");
        snapshot.SupportedListenParameters.Add("http2");
        snapshot.SupportedListenParameters.Add("quic");
        var http = snapshot.Model.Http;
        if (http is null)
        {
            return;
        }

        var runtime = new TlsRuntime();
        var loads = new Dictionary<string, LoadedCertificate?>(StringComparer.Ordinal);
        var stores = new Dictionary<string, (OpenSsl.TrustStore? Store, X509Certificate2Collection? Sent)>(StringComparer.Ordinal);
        var reported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var block in http.Servers)
        {
            runtime.Add(CompileServer(snapshot, block, loads, stores, reported));
        }

        CheckListens(snapshot, runtime);
        snapshot.Snapshot.SetFeature(runtime);
        snapshot.Snapshot.ListenerHooks.Add(new TlsListenerHook());
    }

    private static void Report(SnapshotBuilder snapshot, HashSet<string> reported, ConfigException e)
    {
        if (reported.Add(e.Message + "|" + e.File + "|" + e.Line))
        {
            snapshot.Error(e);
        }
    }

    private static ServerTls CompileServer(SnapshotBuilder snapshot, ServerBlock block, Dictionary<string, LoadedCertificate?> loads,
        Dictionary<string, (OpenSsl.TrustStore? Store, X509Certificate2Collection? Sent)> stores, HashSet<string> reported)
    {
        var s = block.Settings.Get<SslServerSettings>();
        var paths = snapshot.Model.Paths;
        var tls = new ServerTls(block)
        {
            Protocols = SslServerSettings.ToPlatform(s.Protocols ?? (SslProtocolBits.TlsV12 | SslProtocolBits.TlsV13)),
            RejectHandshake = s.RejectHandshake == true,
            Verify = s.Verify ?? VerifyClient.Off,
            VerifyDepth = (int)Math.Min(s.VerifyDepth ?? 1, 100),
            Http2 = block.Settings.Get<Http2ServerSettings>().Enable == true,
            Passwords = s.Passwords,
            ConfPrefix = paths.ConfPrefix,
            Stapling = s.Stapling == true,
            // .NET resumes with its session cache and tickets together; nginx without either never resumes.
            AllowResume = s.SessionTickets != false || s.SessionCache == true,
        };

        if (s.Certificates is { } certs)
        {
            var keys = s.CertificateKeys;
            if (keys is null || keys.Count < certs.Count)
            {
                Report(snapshot, reported, new ConfigException($"no \"ssl_certificate_key\" is defined for certificate \"{certs[^1].Value}\"", null, 0));
                return tls;
            }
        }

        try
        {
            CompileVerify(snapshot, s, tls, stores, reported);
            if (s.Certificates is not null)
            {
                CompileCertificates(snapshot, s, tls, loads, reported);
            }

            CompileCiphers(s, tls);
            CompileOther(snapshot, s, reported);
        }
        catch (ConfigException e)
        {
            Report(snapshot, reported, e);
        }

        return tls;
    }

    private static void CompileCertificates(SnapshotBuilder snapshot, SslServerSettings s, ServerTls tls, Dictionary<string, LoadedCertificate?> loads, HashSet<string> reported)
    {
        var certs = s.Certificates!;
        var keys = s.CertificateKeys!;
        var paths = snapshot.Model.Paths;
        var variable = false;
        var templates = new List<(ValueTemplate, ValueTemplate)>();
        for (var i = 0; i < certs.Count; i++)
        {
            var ct = ValueTemplate.Parse(certs[i].Value, certs[i].At);
            var kt = ValueTemplate.Parse(keys[i].Value, keys[i].At);
            foreach (var (t, at) in new[] { (ct, certs[i].At), (kt, keys[i].At) })
            {
                foreach (var part in t.Parts)
                {
                    if (part.Kind != TemplatePartKind.Literal)
                    {
                        variable = true;
                        if (part.Kind == TemplatePartKind.Capture || !TlsListenerHook.IsHandshakeVariable(part.Text))
                        {
                            throw new ConfigException(
                                $"variable \"{(part.Kind == TemplatePartKind.Capture ? "$" + part.Capture : "$" + part.Text)}\" cannot be used in \"{at.Name}\": only $ssl_server_name, $server_addr, $server_port, $remote_addr and $remote_port are known during the handshake",
                                at.File, at.Line);
                        }
                    }
                }
            }

            templates.Add((ct, kt));
        }

        if (variable)
        {
            tls.VariableCertificates = [.. templates];
            tls.SentTrust = tls.Verify != VerifyClient.Off && tls.Trust is not null ? SentTrust(tls) : null;
            return;
        }

        var loaded = new List<LoadedCertificate>();
        for (var i = 0; i < certs.Count; i++)
        {
            var certPath = Resolve(paths, certs[i].Value);
            var keyPath = Resolve(paths, keys[i].Value);
            var key = certPath + "\n" + keyPath;
            if (!loads.TryGetValue(key, out var cert))
            {
                try
                {
                    cert = CertificateLoader.Load(certPath, keyPath, s.Passwords);
                }
                catch (ConfigException e)
                {
                    Report(snapshot, reported, e);
                    cert = null;
                }

                loads[key] = cert;
            }

            if (cert is not null)
            {
                loaded.Add(cert);
            }
        }

        tls.Certificates = [.. loaded];
        var trust = tls.Verify != VerifyClient.Off ? SentTrust(tls) : null;
        tls.SentTrust = trust;
        var contexts = new List<SslStreamCertificateContext>();
        foreach (var cert in loaded)
        {
            contexts.Add(SslStreamCertificateContext.Create(cert.Leaf, cert.Chain, offline: !tls.Stapling, trust: trust));
        }

        tls.Contexts = [.. contexts];
    }

    private static SslCertificateTrust? SentTrust(ServerTls tls) =>
        tls.ClientCaList is { Count: > 0 } list ? SslCertificateTrust.CreateForX509Collection(list, sendTrustInHandshake: true) : null;

    private static string Resolve(ConfigPaths paths, string path) =>
        path.StartsWith("data:", StringComparison.Ordinal) ? path : paths.FromConfPrefix(path);

    private static void CompileVerify(SnapshotBuilder snapshot, SslServerSettings s, ServerTls tls,
        Dictionary<string, (OpenSsl.TrustStore? Store, X509Certificate2Collection? Sent)> stores, HashSet<string> reported)
    {
        var verify = s.Verify ?? VerifyClient.Off;
        if (verify == VerifyClient.Off && s.TrustedCertificate is null && s.Crl is null)
        {
            return;
        }

        if (s.Certificates is null && s.RejectHandshake != true)
        {
            // nginx creates no SSL context for such a server: its verification settings are never loaded.
            return;
        }

        if (verify is VerifyClient.On or VerifyClient.Optional && s.ClientCertificate is null && s.TrustedCertificate is null)
        {
            throw new ConfigException("no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client", null, 0);
        }

        var paths = snapshot.Model.Paths;
        var client = verify != VerifyClient.Off && s.ClientCertificate is { } cc ? paths.FromConfPrefix(cc.Value) : null;
        var trusted = s.TrustedCertificate is { } tc ? paths.FromConfPrefix(tc.Value) : null;
        var crl = s.Crl is { } cr ? paths.FromConfPrefix(cr.Value) : null;
        var key = client + "\n" + trusted + "\n" + crl;
        if (!stores.TryGetValue(key, out var entry))
        {
            var sent = client is null ? null : CertificateLoader.LoadCaFile(client);
            var all = new List<X509Certificate2>();
            if (sent is not null)
            {
                all.AddRange(sent);
            }

            if (trusted is not null)
            {
                all.AddRange(CertificateLoader.LoadCaFile(trusted));
            }

            var crls = crl is null ? [] : CertificateLoader.LoadCrlFile(crl);
            entry = (OpenSsl.TrustStore.Create(all, crls), sent);
            stores[key] = entry;
        }

        tls.Trust = entry.Store;
        tls.ClientCaList = entry.Sent;
    }

    private static void CompileCiphers(SslServerSettings s, ServerTls tls)
    {
        if (s.Ciphers is null || s.Ciphers == SslServerSettings.DefaultCiphers)
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            throw new ConfigException("\"ssl_ciphers\" is not supported by Portico on Windows", s.CiphersAt?.File, s.CiphersAt?.Line ?? 0);
        }

        var ids = OpenSsl.ExpandCipherList(s.Ciphers)
            ?? throw new ConfigException($"SSL_CTX_set_cipher_list(\"{s.Ciphers}\") failed (SSL: error:0A0000B9:SSL routines::no cipher match)", null, 0);
        var suites = new List<TlsCipherSuite>();
        foreach (var id in ids)
        {
            suites.Add((TlsCipherSuite)id);
        }

        // OpenSSL's cipher string does not touch TLS 1.3 suites; nginx keeps OpenSSL's defaults for them.
        foreach (var t13 in new[] { TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256, TlsCipherSuite.TLS_AES_128_GCM_SHA256 })
        {
            if (!suites.Contains(t13))
            {
                suites.Add(t13);
            }
        }

        tls.Ciphers = new CipherSuitesPolicy(suites);
    }

    private static void CompileOther(SnapshotBuilder snapshot, SslServerSettings s, HashSet<string> reported)
    {
        var paths = snapshot.Model.Paths;
        if (s.Certificates is null)
        {
            return;
        }

        if (s.Dhparam is { } dh)
        {
            CertificateLoader.CheckPemBlock(paths.FromConfPrefix(dh.Value), "DH PARAMETERS", "PEM_read_bio_DHparams");
            Warn(snapshot, reported, "\"ssl_dhparam\" is not used by Portico: .NET's SslStream chooses DHE parameters itself", dh.At);
        }

        if (s.EcdhCurve is { } curve && curve.Value != "auto")
        {
            foreach (var name in curve.Value.Split(':'))
            {
                if (Array.IndexOf(KnownCurves, name) < 0)
                {
                    throw new ConfigException($"SSL_CTX_set1_curves_list(\"{curve.Value}\") failed (SSL: error:0A080106:SSL routines::passed invalid argument:group '{name}' cannot be set)", null, 0);
                }
            }

            Warn(snapshot, reported, "\"ssl_ecdh_curve\" is not applied by Portico: .NET's SslStream offers the platform's default groups", curve.At);
        }

        if (s.SessionTicketKeys is { } ticketKeys)
        {
            foreach (var k in ticketKeys)
            {
                var path = paths.FromConfPrefix(k.Value);
                long length;
                try
                {
                    length = new FileInfo(path).Length;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new ConfigException($"open() \"{path}\" failed ({ErrorLogFactory.Errno(e)})", k.At.File, k.At.Line);
                }

                if (!File.Exists(path))
                {
                    throw new ConfigException($"open() \"{path}\" failed (2: No such file or directory)", k.At.File, k.At.Line);
                }

                if (length is not (48 or 80))
                {
                    throw new ConfigException($"\"{path}\" must be 48 or 80 bytes", k.At.File, k.At.Line);
                }
            }

            Warn(snapshot, reported, "\"ssl_session_ticket_key\" is not used by Portico: .NET encrypts session tickets with a key of its own per process", ticketKeys[0].At);
        }

        if (s.SessionTimeout is { } timeout && timeout != 300 && s.SessionTimeoutAt is { } at)
        {
            Warn(snapshot, reported, "\"ssl_session_timeout\" is fixed at 5m by .NET's SslStream, the value is ignored", at);
        }

        if (s.PreferServerCiphers == true && s.Ciphers is null)
        {
            // Nothing to prefer among the platform defaults; documented.
        }
    }

    private static void Warn(SnapshotBuilder snapshot, HashSet<string> reported, string message, Directive at)
    {
        if (reported.Add(message + "|" + at.File + "|" + at.Line))
        {
            snapshot.Model.Warnings.Add(new Diagnostic(LogLevel.Warn, message, at.File, at.Line));
        }
    }

    /// <summary>ngx_http_ssl_init: every ssl address needs a certificate in its default server; quic needs libmsquic.</summary>
    private static void CheckListens(SnapshotBuilder snapshot, TlsRuntime runtime)
    {
        foreach (var socket in snapshot.Snapshot.Load.Sockets)
        {
            foreach (var address in socket.Addresses)
            {
                if (address.Quic)
                {
                    var quicListen = FindListen(address, l => l.Quic);
                    snapshot.Error(Http2Module.QuicUnavailable("the \"quic\" parameter of the \"listen\" directive"), quicListen);
                    continue;
                }

                if (!address.Ssl)
                {
                    continue;
                }

                var def = runtime.For(address.Default);
                if (def.Certificates.Length > 0 || def.VariableCertificates is not null || address.Default.Settings.Get<SslServerSettings>().Certificates is not null)
                {
                    continue;
                }

                if (!def.RejectHandshake)
                {
                    snapshot.Errors.Add(new Diagnostic(LogLevel.Emerg,
                        $"no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in {address.Default.Source.File}:{address.Default.Source.Line}", null, 0));
                    continue;
                }

                foreach (var server in address.Servers)
                {
                    var st = server.Settings.Get<SslServerSettings>();
                    if (st.Certificates is null && st.RejectHandshake != true)
                    {
                        snapshot.Errors.Add(new Diagnostic(LogLevel.Emerg,
                            $"no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in {server.Source.File}:{server.Source.Line}", null, 0));
                        break;
                    }
                }
            }
        }
    }

    private static Directive FindListen(AddressConfig address, Func<ListenSpec, bool> predicate)
    {
        foreach (var server in address.Servers)
        {
            foreach (var l in server.Listens)
            {
                if (l.SocketName == address.Key && predicate(l))
                {
                    return l.Source;
                }
            }
        }

        return address.Default.Source;
    }

    public override void CompileServer(ServerCompiler server)
    {
        var runtime = server.Snapshot.Snapshot.Feature<TlsRuntime>();
        if (runtime is null)
        {
            return;
        }

        var hasSsl = false;
        foreach (var socket in server.Snapshot.Snapshot.Load.Sockets)
        {
            foreach (var address in socket.Addresses)
            {
                if (address.Ssl && address.Servers.Contains(server.Block))
                {
                    hasSsl = true;
                }
            }
        }

        if (hasSsl)
        {
            server.AddPostRead(new SslRequestCheck(runtime.For(server.Block)));
        }
    }

    /// <remarks>As in nginx, a variable whose value would be empty is "not found" (logged as "-").</remarks>
    public override void RegisterVariables(VariableRegistry v, SnapshotBuilder snapshot)
    {
        v.Register("ssl_protocol", r => Tls(r)?.Stream is { } s ? ProtocolName(s.SslProtocol) : null);
        v.Register("ssl_cipher", r => Tls(r)?.Stream is { } s ? OpenSsl.CipherName((ushort)s.NegotiatedCipherSuite) ?? s.NegotiatedCipherSuite.ToString() : null);
        v.Register("ssl_ciphers", r => Tls(r) is { Stream: not null, Hello: { } h } ? CipherList(h) : null);
        v.Register("ssl_session_reused", r => Tls(r) is { Stream: not null } t ? (t.SessionReused() ? "r" : ".") : null);
        v.Register("ssl_early_data", _ => null);
        v.Register("ssl_server_name", r => Tls(r) is { Stream: not null, ServerName: { Length: > 0 } name } ? name : null);
        v.Register("ssl_alpn_protocol", r => Tls(r)?.Stream is { } s && s.NegotiatedApplicationProtocol.Protocol.Length > 0
            ? s.NegotiatedApplicationProtocol.ToString() : null);
        v.Register("ssl_client_verify", r => Tls(r) is { Stream: not null } t ? t.ClientVerify : null);
        v.Register("ssl_client_s_dn", r => Client(r) is { } t ? t.ClientSubject : null);
        v.Register("ssl_client_i_dn", r => Client(r) is { } t ? t.ClientIssuer : null);
        v.Register("ssl_client_s_dn_legacy", r => Client(r) is { } t ? Legacy(t.ClientCertificate!.SubjectName) : null);
        v.Register("ssl_client_i_dn_legacy", r => Client(r) is { } t ? Legacy(t.ClientCertificate!.IssuerName) : null);
        v.Register("ssl_client_serial", r => Client(r) is { } t ? DistinguishedName.Serial(t.ClientCertificate!) : null);
        v.Register("ssl_client_fingerprint", r => Client(r) is { } t ? Convert.ToHexStringLower(t.ClientCertificate!.GetCertHash()) : null);
        v.Register("ssl_client_raw_cert", r => Client(r) is { } t ? CertificateLoader.ToPem(t.ClientCertificate!) : null);
        v.Register("ssl_client_cert", r => Client(r) is { } t
            ? CertificateLoader.ToPem(t.ClientCertificate!).TrimEnd('\n').Replace("\n", "\n\t", StringComparison.Ordinal) : null);
        v.Register("ssl_client_escaped_cert", r => Client(r) is { } t ? Uri.EscapeDataString(CertificateLoader.ToPem(t.ClientCertificate!)) : null);
        v.Register("ssl_client_v_start", r => Client(r) is { } t ? Asn1Time(t.ClientCertificate!.NotBefore) : null);
        v.Register("ssl_client_v_end", r => Client(r) is { } t ? Asn1Time(t.ClientCertificate!.NotAfter) : null);
        v.Register("ssl_client_v_remain", r => Client(r) is { } t
            ? Math.Max(0, (int)Math.Floor((t.ClientCertificate!.NotAfter.ToUniversalTime() - DateTime.UtcNow).TotalDays)).ToString(CultureInfo.InvariantCulture)
            : null);
    }

    /// <summary>The TLS state of a connection that presented a client certificate.</summary>
    private static TlsConnectionState? Client(RequestContext r) => Tls(r) is { Stream: not null, ClientCertificate: not null } t ? t : null;

    /// <summary>The TLS state of the request's connection, or null on a plain connection.</summary>
    public static TlsConnectionState? Tls(RequestContext r) =>
        r.Http.Features.Get<IConnectionItemsFeature>()?.Items is { } items && items.TryGetValue(TlsConnectionState.Key, out var v)
            ? v as TlsConnectionState
            : null;

    public static string ProtocolName(SslProtocols p) => p switch
    {
        SslProtocols.Tls13 => "TLSv1.3",
        SslProtocols.Tls12 => "TLSv1.2",
#pragma warning disable SYSLIB0039 // names of old protocols, for display only
        SslProtocols.Tls11 => "TLSv1.1",
        SslProtocols.Tls => "TLSv1",
#pragma warning restore SYSLIB0039
        _ => p.ToString(),
    };

    private static string CipherList(ClientHello hello)
    {
        var parts = new List<string>(hello.Ciphers.Count);
        foreach (var c in hello.Ciphers)
        {
            parts.Add(OpenSsl.CipherName(c) ?? "0x" + c.ToString("x4", CultureInfo.InvariantCulture));
        }

        return string.Join(':', parts);
    }

    /// <summary>X509_NAME_oneline: "/C=US/O=Org/CN=name" in certificate order.</summary>
    private static string Legacy(X500DistinguishedName name)
    {
        var rfc = DistinguishedName.Rfc2253(name);
        var parts = rfc.Split(',');
        Array.Reverse(parts);
        return "/" + string.Join('/', parts);
    }

    /// <summary>ASN1_TIME_print: "Sep  9 07:13:28 2026 GMT".</summary>
    private static string Asn1Time(DateTime t)
    {
        var u = t.ToUniversalTime();
        return u.ToString("MMM", CultureInfo.InvariantCulture) + " " + u.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2)
            + u.ToString(" HH:mm:ss yyyy", CultureInfo.InvariantCulture) + " GMT";
    }
}

/// <summary>
/// nginx's checks in ngx_http_process_request and ngx_http_set_virtual_server for ssl ports: a plain request
/// (497), a Host other than the negotiated SNI name on a verifying server (421), a client certificate that
/// failed verification (495) or is missing (496). Run once per request before the server rewrite phase.
/// </summary>
internal sealed class SslRequestCheck : PhaseHandler
{
    private readonly ServerTls _tls;

    public SslRequestCheck(ServerTls tls)
    {
        _tls = tls;
    }

    public override ValueTask<Flow> InvokeAsync(RequestContext r)
    {
        var state = SslModule.Tls(r);
        if (state is null)
        {
            return new(Flow.Continue);
        }

        if (state.PlainOnSslPort)
        {
            r.LogError(LogLevel.Info, "client sent plain HTTP request to HTTPS port");
            return new(r.Finish(497));
        }

        if (state.Stream is null || _tls.Verify == VerifyClient.Off)
        {
            return new(Flow.Continue);
        }

        if (state.MatchedServerName is { } sni && r.Host is { } host && host != sni)
        {
            r.LogError(LogLevel.Info, "client attempted to request the server name different from the one that was negotiated");
            return new(r.Finish(421));
        }

        if (state.ClientCertificate is not null && state.VerifyResult != 0
            && (_tls.Verify != VerifyClient.OptionalNoCa || !OpenSsl.IsOptionalError(state.VerifyResult)))
        {
            r.LogError(LogLevel.Info, $"client SSL certificate verify error: ({state.VerifyResult}:{OpenSsl.VerifyErrorString(state.VerifyResult)})");
            return new(r.Finish(495));
        }

        if (_tls.Verify == VerifyClient.On && state.ClientCertificate is null)
        {
            r.LogError(LogLevel.Info, "client sent no required SSL certificate");
            return new(r.Finish(496));
        }

        return new(Flow.Continue);
    }
}
