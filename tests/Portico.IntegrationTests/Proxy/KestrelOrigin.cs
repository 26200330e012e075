using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>How a <see cref="KestrelOrigin"/> listens.</summary>
public sealed class KestrelOriginOptions
{
    public HttpProtocols Protocols { get; init; } = HttpProtocols.Http1;
    public X509Certificate2? Certificate { get; init; }
    public ClientCertificateMode ClientCertificates { get; init; } = ClientCertificateMode.NoCertificate;
    public string? UnixSocket { get; init; }
    public bool WebSockets { get; init; }
}

/// <summary>A Kestrel origin for the proxy tests that need real protocol work: TLS, HTTP/2, WebSockets, unix sockets.</summary>
public sealed class KestrelOrigin : IAsyncDisposable
{
    private readonly WebApplication _app;

    private KestrelOrigin(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";

    /// <summary>The TLS server name each handshake asked for (null when the client sent no SNI).</summary>
    public List<string?> ServerNames { get; } = [];

    public static async Task<KestrelOrigin> StartAsync(Func<HttpContext, Task> handler, KestrelOriginOptions? options = null)
    {
        options ??= new KestrelOriginOptions();
        var port = options.UnixSocket is null ? TestPorts.GetFree() : 0;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        KestrelOrigin? origin = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = null;
            void Configure(ListenOptions lo)
            {
                lo.Protocols = options.Protocols;
                if (options.Certificate is { } cert)
                {
                    lo.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificateSelector = (_, name) =>
                        {
                            lock (origin!.ServerNames)
                            {
                                origin.ServerNames.Add(name);
                            }

                            return cert;
                        },
                        ClientCertificateMode = options.ClientCertificates,
                        ClientCertificateValidation = (_, _, _) => true,
                    });
                }
            }

            if (options.UnixSocket is { } path)
            {
                k.ListenUnixSocket(path, Configure);
            }
            else
            {
                k.Listen(IPAddress.Loopback, port, Configure);
            }
        });
        var app = builder.Build();
        origin = new KestrelOrigin(app, port);
        if (options.WebSockets)
        {
            app.UseWebSockets();
        }

        app.Run(new RequestDelegate(handler));
        await app.StartAsync();
        return origin;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Self-signed certificates and PEM files for the TLS tests.</summary>
public static class TestCertificates
{
    public static X509Certificate2 Create(string subject, params string[] dnsNames)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in dnsNames)
        {
            if (IPAddress.TryParse(name, out var ip))
            {
                san.AddIpAddress(ip);
            }
            else
            {
                san.AddDnsName(name);
            }
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Writes cert.pem and key.pem into the directory; returns their paths.</summary>
    public static (string Cert, string Key) WritePem(X509Certificate2 cert, string directory, string name)
    {
        Directory.CreateDirectory(directory);
        var certPath = Path.Combine(directory, name + ".crt");
        var keyPath = Path.Combine(directory, name + ".key");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, cert.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return (certPath, keyPath);
    }
}
