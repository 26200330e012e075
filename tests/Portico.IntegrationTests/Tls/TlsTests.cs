using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Portico.IntegrationTests.Infrastructure;
using static Portico.IntegrationTests.Tls.TlsTestKit;

namespace Portico.IntegrationTests.Tls;

/// <summary>listen ... ssl with certificates made at test time: handshakes, SNI, protocols, plain HTTP on the TLS port, reload.</summary>
public sealed class TlsTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TestCa _ca = new();

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    private (string Cert, string Key) Server(string name, bool ecdsa = false, params string[] names) =>
        TestCa.Write(_dir, name + (ecdsa ? ".ec" : string.Empty), _ca.IssueServer(name, ecdsa, names));

    [Fact]
    public async Task ServesTlsWithTheCertificateAndTheSslVariables()
    {
        var files = Server("localhost");
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                http2 on;
                {{CertLines(files)}}
                location / { return 200 "$ssl_protocol|$https|$scheme|$ssl_server_name|$server_port|$ssl_alpn_protocol|$http2"; }
            }
            """);
        var seen = new Seen();
        using var client = Client(portico.Port, seen, version: HttpVersion.Version20);
        var body = await client.GetStringAsync($"https://localhost:{portico.Port}/");
        Assert.Equal($"TLSv1.3|on|https|localhost|{portico.Port}|h2|h2", body);
        Assert.Equal("CN=localhost", seen.ServerCertificate!.Subject);

        using var http11 = Client(portico.Port, version: HttpVersion.Version11);
        var response = await http11.GetAsync($"https://localhost:{portico.Port}/");
        Assert.Equal(new Version(1, 1), response.Version);
        Assert.Equal($"TLSv1.3|on|https|localhost|{portico.Port}||", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Http2StreamsOfOneConnectionShareItsFacts()
    {
        var files = Server("localhost");
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                http2 on;
                {{CertLines(files)}}
                location / { return 200 "$connection_requests $connection"; }
            }
            """);
        using var client = Client(portico.Port, version: HttpVersion.Version20);
        var bodies = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            bodies.Add(await client.GetStringAsync($"https://localhost:{portico.Port}/"));
        }

        var serial = bodies[0].Split(' ')[1];
        Assert.Equal([$"1 {serial}", $"2 {serial}", $"3 {serial}"], bodies);
    }

    [Fact]
    public async Task SniChoosesTheServerCertificateAndFallsBackToTheDefault()
    {
        var a = Server("a.test");
        var b = Server("b.test");
        var d = Server("default.test");
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl default_server;
                server_name default.test;
                {{CertLines(d)}}
                return 200 "default $ssl_server_name";
            }
            server {
                listen 127.0.0.1:{port} ssl;
                server_name a.test;
                {{CertLines(a)}}
                return 200 "a $ssl_server_name";
            }
            server {
                listen 127.0.0.1:{port} ssl;
                server_name b.test;
                {{CertLines(b)}}
                return 200 "b $ssl_server_name";
            }
            """);

        async Task<(string Subject, string Body)> Get(string sni, string host)
        {
            var seen = new Seen();
            using var client = Client(portico.Port, seen);
            using var request = new HttpRequestMessage(HttpMethod.Get, $"https://{sni}:{portico.Port}/");
            request.Headers.Host = host;
            var response = await client.SendAsync(request);
            return (seen.ServerCertificate!.Subject, await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(("CN=a.test", "a a.test"), await Get("a.test", "a.test"));
        Assert.Equal(("CN=b.test", "b b.test"), await Get("b.test", "b.test"));
        Assert.Equal(("CN=default.test", "default other.test"), await Get("other.test", "other.test"));

        // The certificate follows SNI, the server follows Host (no client verification, so no 421).
        var run = await RunAsync("curl", "-sSvk", "--resolve", $"a.test:{portico.Port}:127.0.0.1", "-H", "Host: b.test", $"https://a.test:{portico.Port}/");
        Assert.Equal("b a.test", run.Out);
        Assert.Contains("subject: CN=a.test", run.Err, StringComparison.Ordinal);

        // No SNI at all (an IP address): the default server's certificate, $ssl_server_name empty.
        var noSni = new Seen();
        using var ipClient = Client(portico.Port, noSni);
        Assert.Equal("default ", await ipClient.GetStringAsync($"https://127.0.0.1:{portico.Port}/"));
        Assert.Equal("CN=default.test", noSni.ServerCertificate!.Subject);
    }

    [Fact]
    public async Task PlainHttpToTheTlsPortGetsNginxs400AndTheRedirectIdiomWorks()
    {
        var files = Server("localhost");
        var plain = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{{plain}};
                server_name localhost;
                return 301 https://$host$request_uri;
            }
            server {
                listen 127.0.0.1:{port} ssl;
                server_name localhost;
                {{CertLines(files)}}
                return 200 "secure";
            }
            """);

        var raw = await portico.RawAsync("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", raw, StringComparison.Ordinal);
        Assert.Contains("<title>400 The plain HTTP request was sent to HTTPS port</title>", raw, StringComparison.Ordinal);
        Assert.Contains("<center>The plain HTTP request was sent to HTTPS port</center>", raw, StringComparison.Ordinal);
        Assert.Contains("Connection: close", raw, StringComparison.Ordinal);

        var redirect = await RawHttp.SendAsync(plain, "GET /path?q=1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 301 Moved Permanently\r\n", redirect, StringComparison.Ordinal);
        Assert.Contains("Location: https://localhost/path?q=1\r\n", redirect, StringComparison.Ordinal);

        var log = await portico.ReadErrorLogAsync();
        Assert.Contains("[info]", log, StringComparison.Ordinal);
        Assert.Contains("client sent plain HTTP request to HTTPS port", log, StringComparison.Ordinal);

        // The TLS port still speaks TLS afterwards.
        using var client = Client(portico.Port);
        Assert.Equal("secure", await client.GetStringAsync($"https://localhost:{portico.Port}/"));
    }

    [Fact]
    public async Task CurlSpeaksHttp2AndHttp11AndOldProtocolsAreRefused()
    {
        var files = Server("localhost");
        var caPath = _dir.Write("ca.pem", _ca.CertificatePem);
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                http2 on;
                {{CertLines(files)}}
                ssl_protocols TLSv1.2 TLSv1.3;
                location / { return 200 "$server_protocol $ssl_protocol\n"; }
            }
            """);
        var url = $"https://localhost:{portico.Port}/";
        var resolve = $"localhost:{portico.Port}:127.0.0.1";
        var h2 = await RunAsync("curl", "-sS", "--cacert", caPath, "--resolve", resolve, "--http2", "-w", "%{http_version}", url);
        Assert.Equal(0, h2.Code);
        Assert.Equal("HTTP/2.0 TLSv1.3\n2", h2.Out);

        var h11 = await RunAsync("curl", "-sS", "--cacert", caPath, "--resolve", resolve, "--http1.1", "--tls-max", "1.2", "-w", "%{http_version}", url);
        Assert.Equal(0, h11.Code);
        Assert.Equal("HTTP/1.1 TLSv1.2\n1.1", h11.Out);

        var old = await RunAsync("curl", "-sS", "--cacert", caPath, "--resolve", resolve, "--tlsv1.1", "--tls-max", "1.1", url);
        Assert.Equal(35, old.Code); // CURLE_SSL_CONNECT_ERROR: the handshake was refused
    }

    [Fact]
    public async Task H2LoadRunsAgainstTls()
    {
        var files = Server("localhost");
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                http2 on;
                {{CertLines(files)}}
                location / { return 200 "ok"; }
            }
            """);
        var run = await RunAsync("h2load", "-n", "200", "-c", "4", "-m", "10", $"https://127.0.0.1:{portico.Port}/");
        Assert.Equal(0, run.Code);
        Assert.Contains("requests: 200 total, 200 started, 200 done, 200 succeeded, 0 failed, 0 errored", run.Out, StringComparison.Ordinal);
        Assert.Contains("Application protocol: h2", run.Out, StringComparison.Ordinal);
        Assert.Contains("status codes: 200 2xx", run.Out, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task RsaAndEcdsaCertificatesAreChosenByWhatTheClientOffers()
    {
        var rsa = Server("dual.test");
        var ec = Server("dual.test", ecdsa: true);
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                server_name dual.test;
                ssl_certificate {{rsa.Cert}};
                ssl_certificate_key {{rsa.Key}};
                ssl_certificate {{ec.Cert}};
                ssl_certificate_key {{ec.Key}};
                return 200 "$ssl_cipher";
            }
            """);
        var url = $"https://dual.test:{portico.Port}/";

        var seenRsa = new Seen();
        using (var client = Client(portico.Port, seenRsa, protocols: SslProtocols.Tls12,
            ciphers: new CipherSuitesPolicy([TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256])))
        {
            Assert.Equal("ECDHE-RSA-AES128-GCM-SHA256", await client.GetStringAsync(url));
        }

        Assert.Equal("1.2.840.113549.1.1.1", seenRsa.ServerCertificate!.GetKeyAlgorithm());

        var seenEc = new Seen();
        using (var client = Client(portico.Port, seenEc, protocols: SslProtocols.Tls12,
            ciphers: new CipherSuitesPolicy([TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384])))
        {
            Assert.Equal("ECDHE-ECDSA-AES256-GCM-SHA384", await client.GetStringAsync(url));
        }

        Assert.Equal("1.2.840.10045.2.1", seenEc.ServerCertificate!.GetKeyAlgorithm());
    }

    [Fact]
    public async Task SslCiphersRestrictTls12Suites()
    {
        var files = Server("localhost");
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                {{CertLines(files)}}
                ssl_protocols TLSv1.2;
                ssl_ciphers ECDHE-RSA-CHACHA20-POLY1305;
                return 200 "$ssl_protocol $ssl_cipher";
            }
            """);
        var caPath = _dir.Write("ca.pem", _ca.CertificatePem);
        var ok = await RunAsync("curl", "-sS", "--cacert", caPath, "--resolve", $"localhost:{portico.Port}:127.0.0.1", $"https://localhost:{portico.Port}/");
        Assert.Equal("TLSv1.2 ECDHE-RSA-CHACHA20-POLY1305", ok.Out);
        var refused = await RunAsync("curl", "-sS", "--cacert", caPath, "--resolve", $"localhost:{portico.Port}:127.0.0.1",
            "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256", $"https://localhost:{portico.Port}/");
        Assert.Equal(35, refused.Code);
    }

    [Fact]
    public async Task ResumedSessionsShowInSslSessionReused()
    {
        var files = Server("localhost");
        var caPath = _dir.Write("ca.pem", _ca.CertificatePem);
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                {{CertLines(files)}}
                ssl_session_cache shared:SSL:10m;
                return 200 "$ssl_session_reused\n";
            }
            """);
        var url = $"https://localhost:{portico.Port}/";
        // Two requests in one curl run, each on its own connection: the second resumes the first's session.
        var run = await RunAsync("curl", "-sS", "--cacert", caPath, "--resolve", $"localhost:{portico.Port}:127.0.0.1", "--tls-max", "1.2",
            "-H", "Connection: close", url, url);
        Assert.Equal(".\nr\n", run.Out);
    }

    [Fact]
    public async Task CertificatePathsWithSslServerNameLoadPerHandshake()
    {
        Server("one.test");
        Server("two.test");
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                ssl_certificate {{_dir.Path}}/$ssl_server_name.crt;
                ssl_certificate_key {{_dir.Path}}/$ssl_server_name.key;
                return 200 "$ssl_server_name";
            }
            """);
        foreach (var name in new[] { "one.test", "two.test", "one.test" })
        {
            var seen = new Seen();
            using var client = Client(portico.Port, seen);
            Assert.Equal(name, await client.GetStringAsync($"https://{name}:{portico.Port}/"));
            Assert.Equal("CN=" + name, seen.ServerCertificate!.Subject);
        }

        using var missing = Client(portico.Port);
        await Assert.ThrowsAsync<HttpRequestException>(() => missing.GetStringAsync($"https://three.test:{portico.Port}/"));
        var log = await portico.ReadErrorLogAsync();
        Assert.Contains($"cannot load certificate \"{_dir.Path}/three.test.crt\"", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReloadChangesTheCertificateWithoutRebindingAndABadCertificateKeepsTheOldOne()
    {
        var first = Server("first.test", false, "localhost");
        var second = Server("second.test", false, "localhost");
        string Config((string Cert, string Key) files, string version) => PorticoInstance.WrapHttp($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                {{CertLines(files)}}
                return 200 "{{version}}";
            }
            """);
        await using var portico = await PorticoInstance.StartAsync(Config(first, "v1"));

        async Task<(string Body, string Subject)> Get()
        {
            var seen = new Seen();
            using var client = Client(portico.Port, seen);
            var body = await client.GetStringAsync($"https://localhost:{portico.Port}/");
            return (body, seen.ServerCertificate!.Subject);
        }

        Assert.Equal(("v1", "CN=first.test"), await Get());
        Assert.True(await portico.ReloadAsync(Config(second, "v2")));
        Assert.Equal(("v2", "CN=second.test"), await Get());

        // The same file names with new content are read again on reload.
        File.Copy(first.Cert, second.Cert, overwrite: true);
        File.Copy(first.Key, second.Key, overwrite: true);
        Assert.True(await portico.ReloadAsync(Config(second, "v3")));
        Assert.Equal(("v3", "CN=first.test"), await Get());

        var broken = _dir.Write("broken.crt", "not a certificate\n");
        Assert.False(await portico.ReloadAsync(Config((broken, second.Key), "v4")));
        Assert.Equal(("v3", "CN=first.test"), await Get());
        var log = await portico.ReadErrorLogAsync();
        Assert.Contains($"[emerg]", log, StringComparison.Ordinal);
        Assert.Contains($"cannot load certificate \"{broken}\": PEM_read_bio_X509_AUX() failed", log, StringComparison.Ordinal);
        Assert.Single(portico.Host.ListenerKeys);
    }

    [Fact]
    public async Task SeedTlsServerBlockRuns()
    {
        // The seed's "Single Backend" server block with paths and ports changed; proxy_pass is replaced by
        // "return" until the proxy module lands, the TLS part is as written.
        var files = TestCa.Write(_dir, "fullchain", _ca.IssueServer("api.example.com"), _ca.CertificatePem);
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen      127.0.0.1:{port} ssl;
                http2       on;
                server_name api.example.com;

                ssl_certificate     {{files.Cert}};
                ssl_certificate_key {{files.Key}};
                ssl_protocols       TLSv1.2 TLSv1.3;

                location / {
                    return 200 "$scheme $host $server_protocol";
                }
            }
            """);
        var caPath = _dir.Write("ca.pem", _ca.CertificatePem);
        var run = await RunAsync("curl", "-sS", "--cacert", caPath, "--resolve", $"api.example.com:{portico.Port}:127.0.0.1",
            $"https://api.example.com:{portico.Port}/users");
        Assert.Equal(0, run.Code);
        Assert.Equal("https api.example.com HTTP/2.0", run.Out);
    }

    [Fact]
    public async Task BadCertificatesFailTheConfigurationWithNginxsWords()
    {
        var files = Server("localhost");
        var missing = _dir.File("missing.pem");
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                ssl_certificate {{missing}};
                ssl_certificate_key {{files.Key}};
            }
            """));
        Assert.Contains($"[emerg] cannot load certificate \"{missing}\": BIO_new_file() failed (SSL: error:80000002:system library::No such file or directory:calling fopen({missing}, r) error:10000080:BIO routines::no such file)", ex.Message, StringComparison.Ordinal);

        var other = Server("other.test");
        ex = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                ssl_certificate {{files.Cert}};
                ssl_certificate_key {{other.Key}};
            }
            """));
        Assert.Contains($"[emerg] SSL_CTX_use_PrivateKey(\"{other.Key}\") failed (SSL: error:05800074:x509 certificate routines::key values mismatch)", ex.Message, StringComparison.Ordinal);

        ex = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port} ssl;
                return 200;
            }
            """));
        Assert.Matches(@"\[emerg\] no ""ssl_certificate"" is defined for the ""listen \.\.\. ssl"" directive in .*portico\.conf:\d+", ex.Message);
    }

    [Fact]
    public async Task SslRejectHandshakeRefusesUnknownNames()
    {
        var known = Server("known.test");
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl default_server;
                ssl_reject_handshake on;
            }
            server {
                listen 127.0.0.1:{port} ssl;
                server_name known.test;
                {{CertLines(known)}}
                return 200 "known";
            }
            """);
        using var client = Client(portico.Port);
        Assert.Equal("known", await client.GetStringAsync($"https://known.test:{portico.Port}/"));
        using var other = Client(portico.Port);
        await Assert.ThrowsAsync<HttpRequestException>(() => other.GetStringAsync($"https://unknown.test:{portico.Port}/"));
        using var noSni = Client(portico.Port);
        await Assert.ThrowsAsync<HttpRequestException>(() => noSni.GetStringAsync($"https://127.0.0.1:{portico.Port}/"));
    }

    [Fact]
    public async Task ConfigurationTestReportsABadCertificate()
    {
        var files = Server("localhost");
        var missing = _dir.File("nope.pem");
        Directory.CreateDirectory(_dir.File("logs"));
        var conf = _dir.Write("conf/portico.conf", PorticoInstance.WrapHttp($$"""
            server {
                listen 127.0.0.1:8443 ssl;
                ssl_certificate {{missing}};
                ssl_certificate_key {{files.Key}};
            }
            """).Replace("logs/", _dir.Path + "/", StringComparison.Ordinal));
        var (code, _, stderr) = await PorticoProcess.RunAsync("-t", "-p", _dir.Path, "-c", conf);
        Assert.Equal(1, code);
        Assert.Contains($"portico: [emerg] cannot load certificate \"{missing}\": BIO_new_file() failed", stderr, StringComparison.Ordinal);
        Assert.Contains($"portico: configuration file {conf} test failed", stderr, StringComparison.Ordinal);

        var good = _dir.Write("conf/good.conf", PorticoInstance.WrapHttp($$"""
            server {
                listen 127.0.0.1:8443 ssl;
                {{CertLines(files)}}
            }
            """).Replace("logs/", _dir.Path + "/", StringComparison.Ordinal));
        (code, _, stderr) = await PorticoProcess.RunAsync("-t", "-p", _dir.Path, "-c", good);
        Assert.True(code == 0, stderr);
        Assert.Contains("test is successful", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AccessLogCountsTheHttpBytesOfTlsConnections()
    {
        var files = Server("localhost");
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            log_format bytes '$ssl_protocol $status $body_bytes_sent $bytes_sent $connection_requests';
            server {
                listen 127.0.0.1:{port} ssl;
                {{CertLines(files)}}
                access_log logs/bytes.log bytes;
                location / { return 200 "ok"; }
            }
            """);
        using var client = Client(portico.Port);
        var first = await client.GetAsync($"https://localhost:{portico.Port}/");
        var headerBytes = first.Headers.ToString().Length;
        Assert.Equal("ok", await first.Content.ReadAsStringAsync());
        Assert.Equal("ok", await client.GetStringAsync($"https://localhost:{portico.Port}/"));
        for (var i = 0; i < 2000 && portico.Host.Writer.AccessLines < 2; i++)
        {
            await Task.Delay(5);
        }

        await portico.Host.Writer.WhenIdleAsync();
        var lines = (await File.ReadAllTextAsync(portico.Dir.File("logs/bytes.log"))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        foreach (var (line, n) in lines.Select((l, i) => (l, i + 1)))
        {
            var f = line.Split(' ');
            Assert.Equal(["TLSv1.3", "200", "2"], f[..3]);
            Assert.Equal(n.ToString(System.Globalization.CultureInfo.InvariantCulture), f[4]);
            // The response as HTTP sees it (status line, headers, body), not the encrypted records or the handshake.
            var sent = int.Parse(f[3], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(sent, headerBytes, headerBytes + 100);
        }
    }

    [Fact]
    public async Task EncryptedKeysOpenWithSslPasswordFile()
    {
        var cert = _ca.IssueServer("localhost");
        var certPath = _dir.Write("enc.crt", cert.ExportCertificatePem() + "\n");
        var pbe = new System.Security.Cryptography.PbeParameters(System.Security.Cryptography.PbeEncryptionAlgorithm.Aes256Cbc, System.Security.Cryptography.HashAlgorithmName.SHA256, 10000);
        var keyPath = _dir.Write("enc.key", cert.GetRSAPrivateKey()!.ExportEncryptedPkcs8PrivateKeyPem("s3cret", pbe) + "\n");
        var passwords = _dir.Write("passwords", "wrong\ns3cret\n");
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                ssl_certificate {{certPath}};
                ssl_certificate_key {{keyPath}};
                ssl_password_file {{passwords}};
                return 200 "encrypted";
            }
            """);
        using var client = Client(portico.Port);
        Assert.Equal("encrypted", await client.GetStringAsync($"https://localhost:{portico.Port}/"));
    }
}
