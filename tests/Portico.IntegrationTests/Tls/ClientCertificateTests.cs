using Portico.IntegrationTests.Infrastructure;
using static Portico.IntegrationTests.Tls.TlsTestKit;

namespace Portico.IntegrationTests.Tls;

/// <summary>ssl_verify_client on | optional | optional_no_ca with ssl_client_certificate, ssl_crl and the $ssl_client_* variables.</summary>
public sealed class ClientCertificateTests : IDisposable
{
    private const string Variables = "$ssl_client_verify|$ssl_client_s_dn|$ssl_client_i_dn|$ssl_client_serial|$ssl_client_fingerprint|$ssl_client_s_dn_legacy";

    private readonly TempDir _dir = new();
    private readonly TestCa _ca = new();
    private readonly TestCa _otherCa = new("Other CA");

    public void Dispose()
    {
        _ca.Dispose();
        _otherCa.Dispose();
        _dir.Dispose();
    }

    private async Task<PorticoInstance> StartAsync(string verify, string extra = "")
    {
        var server = TestCa.Write(_dir, "server", _ca.IssueServer("localhost"));
        var clientCa = _dir.Write("client-ca.pem", _ca.CertificatePem);
        return await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                server_name localhost;
                {{CertLines(server)}}
                ssl_client_certificate {{clientCa}};
                ssl_verify_client {{verify}};
                {{extra}}
                location / { return 200 "{{Variables}}"; }
            }
            """);
    }

    private static async Task<(int Status, string Body)> GetAsync(PorticoInstance portico, System.Security.Cryptography.X509Certificates.X509Certificate2? cert)
    {
        using var client = Client(portico.Port, clientCertificate: cert);
        var response = await client.GetAsync($"https://localhost:{portico.Port}/");
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task VerifyOnAcceptsAValidCertificateAndShowsItsVariables()
    {
        await using var portico = await StartAsync("on");
        using var cert = _ca.IssueClient("CN=alice, OU=Dev, O=Example Corp, C=US");
        var (status, body) = await GetAsync(portico, cert);
        Assert.Equal(200, status);
        var parts = body.Split('|');
        Assert.Equal("SUCCESS", parts[0]);
        Assert.Equal("CN=alice,OU=Dev,O=Example Corp,C=US", parts[1]);
        Assert.Equal("CN=Portico Test CA,O=Portico Tests", parts[2]);
        Assert.Equal(cert.SerialNumber.TrimStart('0'), parts[3]);
        Assert.Equal(Convert.ToHexStringLower(cert.GetCertHash()), parts[4]);
        Assert.Equal("/C=US/O=Example Corp/OU=Dev/CN=alice", parts[5]);
    }

    [Fact]
    public async Task VerifyOnRejectsAMissingOrUntrustedCertificateWithNginxsPages()
    {
        await using var portico = await StartAsync("on");
        var (status, body) = await GetAsync(portico, null);
        Assert.Equal(400, status);
        Assert.Contains("<title>400 No required SSL certificate was sent</title>", body, StringComparison.Ordinal);

        using var stranger = _otherCa.IssueClient("CN=mallory");
        (status, body) = await GetAsync(portico, stranger);
        Assert.Equal(400, status);
        Assert.Contains("<title>400 The SSL certificate error</title>", body, StringComparison.Ordinal);
        Assert.Contains("<center>The SSL certificate error</center>", body, StringComparison.Ordinal);

        using var expired = _ca.IssueClient("CN=old", expired: true);
        (status, _) = await GetAsync(portico, expired);
        Assert.Equal(400, status);

        var log = await portico.ReadErrorLogAsync();
        Assert.Contains("client sent no required SSL certificate", log, StringComparison.Ordinal);
        Assert.Contains("client SSL certificate verify error: (20:unable to get local issuer certificate)", log, StringComparison.Ordinal);
        Assert.Contains("client SSL certificate verify error: (10:certificate has expired)", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OptionalAllowsNoCertificateAndReportsNone()
    {
        await using var portico = await StartAsync("optional");
        var (status, body) = await GetAsync(portico, null);
        Assert.Equal(200, status);
        Assert.Equal("NONE|||||", body);

        using var cert = _ca.IssueClient("CN=bob");
        (status, body) = await GetAsync(portico, cert);
        Assert.Equal(200, status);
        Assert.StartsWith("SUCCESS|CN=bob|", body, StringComparison.Ordinal);

        using var stranger = _otherCa.IssueClient("CN=mallory");
        (status, _) = await GetAsync(portico, stranger);
        Assert.Equal(400, status);
    }

    [Fact]
    public async Task OptionalNoCaPassesAnUnknownIssuerWithTheFailureInTheVariable()
    {
        await using var portico = await StartAsync("optional_no_ca");
        using var stranger = _otherCa.IssueClient("CN=mallory");
        var (status, body) = await GetAsync(portico, stranger);
        Assert.Equal(200, status);
        Assert.StartsWith("FAILED:unable to get local issuer certificate|CN=mallory|CN=Other CA,O=Portico Tests|", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevokedCertificatesAreRejectedWithSslCrl()
    {
        using var good = _ca.IssueClient("CN=good");
        using var revoked = _ca.IssueClient("CN=revoked");
        var crl = _dir.Write("ca.crl", _ca.CrlPem(revoked));
        await using var portico = await StartAsync("on", $"ssl_crl {crl};");
        Assert.Equal(200, (await GetAsync(portico, good)).Status);
        var (status, body) = await GetAsync(portico, revoked);
        Assert.Equal(400, status);
        Assert.Contains("The SSL certificate error", body, StringComparison.Ordinal);
        Assert.Contains("client SSL certificate verify error: (23:certificate revoked)", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SslClientVariablesAreLoggedForAcceptedRejectedAndOptional()
    {
        var server = TestCa.Write(_dir, "server", _ca.IssueServer("localhost"));
        var clientCa = _dir.Write("client-ca.pem", _ca.CertificatePem);
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            log_format tls '$status $ssl_protocol $ssl_client_verify "$ssl_client_s_dn" "$ssl_client_i_dn" $ssl_client_serial';
            server {
                listen 127.0.0.1:{port} ssl;
                server_name localhost;
                {{CertLines(server)}}
                ssl_client_certificate {{clientCa}};
                ssl_verify_client optional;
                access_log logs/tls.log tls;
                location / { return 200 "ok"; }
            }
            """);
        using var alice = _ca.IssueClient("CN=alice, O=Example");
        using var mallory = _otherCa.IssueClient("CN=mallory");
        Assert.Equal(200, (await GetAsync(portico, alice)).Status);
        Assert.Equal(400, (await GetAsync(portico, mallory)).Status);
        Assert.Equal(200, (await GetAsync(portico, null)).Status);

        for (var i = 0; i < 2000 && portico.Host.Writer.AccessLines < 3; i++)
        {
            await Task.Delay(5);
        }

        await portico.Host.Writer.WhenIdleAsync();
        var lines = (await File.ReadAllTextAsync(portico.Dir.File("logs/tls.log"))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal($"200 TLSv1.3 SUCCESS \"CN=alice,O=Example\" \"CN=Portico Test CA,O=Portico Tests\" {alice.SerialNumber.TrimStart('0')}", lines[0]);
        Assert.Equal($"400 TLSv1.3 FAILED:unable to get local issuer certificate \"CN=mallory\" \"CN=Other CA,O=Portico Tests\" {mallory.SerialNumber.TrimStart('0')}", lines[1]);
        Assert.Equal("200 TLSv1.3 NONE \"-\" \"-\" -", lines[2]);
    }

    [Fact]
    public async Task VerifyClientWithoutCaIsAConfigurationError()
    {
        var server = TestCa.Write(_dir, "server", _ca.IssueServer("localhost"));
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                {{CertLines(server)}}
                ssl_verify_client on;
            }
            """));
        Assert.Contains("[emerg] no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostOtherThanTheNegotiatedNameOnAVerifyingServerIs421()
    {
        var a = TestCa.Write(_dir, "a", _ca.IssueServer("a.test"));
        var clientCa = _dir.Write("client-ca.pem", _ca.CertificatePem);
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} ssl;
                server_name a.test;
                {{CertLines(a)}}
                ssl_client_certificate {{clientCa}};
                ssl_verify_client optional;
                return 200 "a";
            }
            server {
                listen 127.0.0.1:{port} ssl;
                server_name b.test;
                {{CertLines(a)}}
                ssl_client_certificate {{clientCa}};
                ssl_verify_client optional;
                return 200 "b";
            }
            """);
        var ok = await RunAsync("curl", "-sk", "--resolve", $"a.test:{portico.Port}:127.0.0.1", $"https://a.test:{portico.Port}/");
        Assert.Equal("a", ok.Out);
        var misdirected = await RunAsync("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--resolve", $"a.test:{portico.Port}:127.0.0.1",
            "-H", "Host: b.test", $"https://a.test:{portico.Port}/");
        Assert.Equal("421", misdirected.Out);
    }
}
