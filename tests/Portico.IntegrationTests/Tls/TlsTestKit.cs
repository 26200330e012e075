using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Tls;

/// <summary>Clients for TLS tests: HttpClient pinned to loopback with SNI from the URL, curl and h2load.</summary>
public static class TlsTestKit
{
    /// <summary>What the client saw of the server: the certificate it presented.</summary>
    public sealed class Seen
    {
        public X509Certificate2? ServerCertificate { get; set; }
    }

    public static HttpClient Client(int port, Seen? seen = null, X509Certificate2? clientCertificate = null,
        Version? version = null, SslProtocols protocols = SslProtocols.None, CipherSuitesPolicy? ciphers = null, string? sni = null)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            PooledConnectionLifetime = TimeSpan.FromSeconds(30),
            ConnectCallback = async (ctx, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) =>
                {
                    if (seen is not null && cert is not null)
                    {
                        seen.ServerCertificate = X509CertificateLoader.LoadCertificate(cert.GetRawCertData());
                    }

                    return true;
                },
                EnabledSslProtocols = protocols,
                TargetHost = sni,
            },
        };
        if (OperatingSystem.IsLinux() && ciphers is not null)
        {
            handler.SslOptions.CipherSuitesPolicy = ciphers;
        }

        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate;
        }

        var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        if (version is not null)
        {
            client.DefaultRequestVersion = version;
            client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        return client;
    }

    /// <summary>Runs a tool to completion (bounded) and returns exit code, stdout and stderr.</summary>
    public static async Task<(int Code, string Out, string Err)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw;
        }

        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>A CA and a server certificate for "localhost" written to a directory, with the config lines for them.</summary>
    public static string CertLines((string Cert, string Key) files) =>
        $"ssl_certificate {files.Cert}; ssl_certificate_key {files.Key};";
}
