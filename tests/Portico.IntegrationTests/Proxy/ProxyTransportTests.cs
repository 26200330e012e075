using System.Net;
using System.Security.Authentication;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>https:// origins and the proxy_ssl_* directives, unix sockets, HTTP/2 to the origin, proxy_bind.</summary>
public sealed class ProxyTransportTests
{
    /// <summary>An origin that reports what it saw of the connection in its body.</summary>
    private static Task<KestrelOrigin> ReportingOriginAsync(KestrelOriginOptions options) => KestrelOrigin.StartAsync(async ctx =>
    {
        var tls = ctx.Features.Get<ITlsHandshakeFeature>();
        var client = ctx.Connection.ClientCertificate?.Subject ?? "none";
        await ctx.Response.WriteAsync($"proto={ctx.Request.Protocol} tls={tls?.Protocol} cert={client} host={ctx.Request.Host} path={ctx.Request.Path}{ctx.Request.QueryString} remote={ctx.Connection.RemoteIpAddress}");
    }, options);

    [Fact]
    public async Task Https_WithoutVerification()
    {
        var cert = TestCertificates.Create("origin.test", "origin.test");
        await using var origin = await ReportingOriginAsync(new KestrelOriginOptions { Certificate = cert });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass https://{origin.Address}; }}"));
        var body = await portico.Client.GetStringAsync("/secure?x=1");
        Assert.Contains("proto=HTTP/1.0", body, StringComparison.Ordinal);
        Assert.Contains("path=/secure?x=1", body, StringComparison.Ordinal);
        Assert.Contains($"host={origin.Address}", body, StringComparison.Ordinal);
        // proxy_ssl_server_name is off by default: no SNI.
        Assert.True(string.IsNullOrEmpty(Assert.Single(origin.ServerNames)));
    }

    [Fact]
    public async Task Https_ServerNameAndProtocols()
    {
        var cert = TestCertificates.Create("origin.test", "origin.test");
        await using var origin = await ReportingOriginAsync(new KestrelOriginOptions { Certificate = cert });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location / {
                proxy_pass https://{{origin.Address}};
                proxy_ssl_server_name on;
                proxy_ssl_name origin.test;
                proxy_ssl_protocols TLSv1.3;
            }
            """));
        var body = await portico.Client.GetStringAsync("/");
        Assert.Contains($"tls={SslProtocols.Tls13}", body, StringComparison.Ordinal);
        Assert.Equal(["origin.test"], origin.ServerNames);
    }

    [Fact]
    public async Task Https_VerifiedAgainstTheTrustedCertificateAndName()
    {
        var cert = TestCertificates.Create("origin.test", "origin.test");
        var other = TestCertificates.Create("someone.else", "someone.else");
        await using var origin = await ReportingOriginAsync(new KestrelOriginOptions { Certificate = cert });
        var dir = Path.Combine(Path.GetTempPath(), "portico-tls-" + Guid.NewGuid().ToString("N")[..8]);
        var (trusted, _) = TestCertificates.WritePem(cert, dir, "origin");
        var (untrusted, _) = TestCertificates.WritePem(other, dir, "other");
        try
        {
            await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
                proxy_ssl_verify on;
                location /good/ { proxy_pass https://{{origin.Address}}; proxy_ssl_trusted_certificate {{trusted}}; proxy_ssl_name origin.test; }
                location /name/ { proxy_pass https://{{origin.Address}}; proxy_ssl_trusted_certificate {{trusted}}; }
                location /untrusted/ { proxy_pass https://{{origin.Address}}; proxy_ssl_trusted_certificate {{untrusted}}; proxy_ssl_name origin.test; }
                """));
            Assert.Contains("path=/good/", await portico.Client.GetStringAsync("/good/"), StringComparison.Ordinal);

            var wrongName = await portico.Client.GetAsync("/name/");
            Assert.Equal(HttpStatusCode.BadGateway, wrongName.StatusCode);
            Assert.Contains("upstream SSL certificate does not match \"127.0.0.1\" while SSL handshaking to upstream", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);

            var untrustedResponse = await portico.Client.GetAsync("/untrusted/");
            Assert.Equal(HttpStatusCode.BadGateway, untrustedResponse.StatusCode);
            Assert.Contains("upstream SSL certificate verify error: (18:self-signed certificate) while SSL handshaking to upstream", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task Https_ClientCertificateToTheOrigin()
    {
        var cert = TestCertificates.Create("origin.test", "origin.test");
        var client = TestCertificates.Create("portico-client");
        await using var origin = await ReportingOriginAsync(new KestrelOriginOptions { Certificate = cert, ClientCertificates = ClientCertificateMode.RequireCertificate });
        var dir = Path.Combine(Path.GetTempPath(), "portico-tls-" + Guid.NewGuid().ToString("N")[..8]);
        var (certPath, keyPath) = TestCertificates.WritePem(client, dir, "client");
        try
        {
            await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
                location / { proxy_pass https://{{origin.Address}}; proxy_ssl_certificate {{certPath}}; proxy_ssl_certificate_key {{keyPath}}; }
                """));
            Assert.Contains("cert=CN=portico-client", await portico.Client.GetStringAsync("/"), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task Https_Http2WithAlpn()
    {
        var cert = TestCertificates.Create("origin.test", "origin.test");
        await using var origin = await ReportingOriginAsync(new KestrelOriginOptions { Certificate = cert, Protocols = HttpProtocols.Http1AndHttp2 });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass https://{origin.Address}; proxy_http_version 2; }}"));
        var response = await portico.Client.GetAsync("/");
        var text = await portico.ReadErrorLogAsync() + await response.Content.ReadAsStringAsync();
        Assert.True(text.Contains("proto=HTTP/2", StringComparison.Ordinal), text);
    }

    [Fact]
    public async Task Http2CleartextWithPriorKnowledge()
    {
        await using var origin = await ReportingOriginAsync(new KestrelOriginOptions { Protocols = HttpProtocols.Http2 });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; proxy_http_version 2; }}"));
        var body = await portico.Client.GetStringAsync("/h2");
        Assert.Contains("proto=HTTP/2", body, StringComparison.Ordinal);
        Assert.Contains($"host={origin.Address}", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnixSocketOrigin()
    {
        var path = Path.Combine(Path.GetTempPath(), "portico-origin-" + Guid.NewGuid().ToString("N")[..8] + ".sock");
        await using var origin = await ReportingOriginAsync(new KestrelOriginOptions { UnixSocket = path });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location /app/ {{ proxy_pass http://unix:{path}:/inner/; }}"));
        var response = await portico.Client.GetAsync("/app/x?y=2");
        var body = await portico.ReadErrorLogAsync() + await response.Content.ReadAsStringAsync();
        Assert.True(body.Contains("path=/inner/x?y=2", StringComparison.Ordinal), body);
        Assert.Contains("host=localhost", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProxyBind_TheOriginSeesThatAddress()
    {
        await using var origin = await ReportingOriginAsync(new KestrelOriginOptions());
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location /bound { proxy_pass http://{{origin.Address}}; proxy_bind 127.0.0.2; }
            location /var { proxy_pass http://{{origin.Address}}; proxy_bind $http_x_source; }
            location /plain { proxy_pass http://{{origin.Address}}; }
            location /off { proxy_pass http://{{origin.Address}}; proxy_bind off; }
            """));
        Assert.Contains("remote=127.0.0.2", await portico.Client.GetStringAsync("/bound"), StringComparison.Ordinal);
        Assert.Contains("remote=127.0.0.1", await portico.Client.GetStringAsync("/plain"), StringComparison.Ordinal);
        Assert.Contains("remote=127.0.0.1", await portico.Client.GetStringAsync("/off"), StringComparison.Ordinal);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/var");
        request.Headers.Add("X-Source", "127.0.0.3");
        var response = await portico.Client.SendAsync(request);
        Assert.Contains("remote=127.0.0.3", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProxyBind_AnAddressThatIsNotLocalIs500()
    {
        await using var origin = await ReportingOriginAsync(new KestrelOriginOptions());
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; proxy_bind 192.0.2.1; }}"));
        var response = await portico.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var log = await portico.ReadErrorLogAsync();
        Assert.Contains("[crit]", log, StringComparison.Ordinal);
        Assert.Contains("bind(192.0.2.1) failed (99: Cannot assign requested address) while connecting to upstream", log, StringComparison.Ordinal);
    }
}
