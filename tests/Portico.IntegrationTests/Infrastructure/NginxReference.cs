using System.Diagnostics;
using System.Net.Sockets;

namespace Portico.IntegrationTests.Infrastructure;

/// <summary>
/// nginx itself (/usr/sbin/nginx, installed by test.sh) running an http block on a loopback port, for
/// differential tests: the same configuration on nginx and on Portico must answer alike.
/// </summary>
public sealed class NginxReference : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/nginx";

    private readonly Process _process;

    private NginxReference(Process process, TempDir dir, int port)
    {
        _process = process;
        Dir = dir;
        Port = port;
        Client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{port}"),
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    public TempDir Dir { get; }
    public int Port { get; }
    public HttpClient Client { get; }

    /// <summary>Starts nginx with an http block body; "{port}" and "{prefix}" are replaced as for Portico.</summary>
    public static async Task<NginxReference> StartHttpAsync(string httpBody, string prefix)
    {
        Assert.True(File.Exists(Binary), "nginx is needed for differential tests (test.sh installs it)");
        var dir = new TempDir();
        var port = TestPorts.GetFree();
        var t = dir.Path;
        var body = httpBody.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{prefix}", prefix, StringComparison.Ordinal);
        var conf = $$"""
            daemon off;
            master_process off;
            error_log {{t}}/error.log info;
            pid {{t}}/nginx.pid;
            events { worker_connections 64; }
            http {
                access_log off;
                client_body_temp_path {{t}}/client_body;
                proxy_temp_path {{t}}/proxy;
                fastcgi_temp_path {{t}}/fastcgi;
                uwsgi_temp_path {{t}}/uwsgi;
                scgi_temp_path {{t}}/scgi;
            {{body}}
            }
            """;
        dir.Write("nginx.conf", conf);
        var psi = new ProcessStartInfo(Binary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("-p");
        psi.ArgumentList.Add(t + "/");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(t + "/nginx.conf");
        var process = Process.Start(psi)!;
        var nginx = new NginxReference(process, dir, port);
        for (var attempt = 0; attempt < 200; attempt++)
        {
            if (process.HasExited)
            {
                var err = await process.StandardError.ReadToEndAsync();
                await nginx.DisposeAsync();
                throw new InvalidOperationException("nginx did not start: " + err);
            }

            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return nginx;
            }
            catch (SocketException)
            {
                await Task.Delay(25);
            }
        }

        await nginx.DisposeAsync();
        throw new InvalidOperationException("nginx did not listen on " + port);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Dir.Dispose();
    }
}
