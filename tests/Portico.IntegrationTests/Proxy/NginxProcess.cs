using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>
/// The real nginx (Debian's package) run in the foreground on a temporary prefix, for differential tests:
/// the same http block body as Portico gets, on its own port.
/// </summary>
public sealed class NginxProcess : IAsyncDisposable
{
    private readonly Process _process;

    private NginxProcess(Process process, TempDir dir, int port)
    {
        _process = process;
        Dir = dir;
        Port = port;
    }

    public TempDir Dir { get; }
    public int Port { get; }

    public static string Binary => File.Exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";

    public static async Task<NginxProcess> StartHttpAsync(string httpBody)
    {
        var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var port = TestPorts.GetFree();
        var prefix = dir.Path;
        var conf = $$"""
            error_log {{prefix}}/logs/error.log info;
            pid {{prefix}}/logs/nginx.pid;
            events { worker_connections 256; }
            http {
                access_log off;
                client_body_temp_path {{prefix}}/client_body_temp;
                proxy_temp_path {{prefix}}/proxy_temp;
                fastcgi_temp_path {{prefix}}/fastcgi_temp;
                uwsgi_temp_path {{prefix}}/uwsgi_temp;
                scgi_temp_path {{prefix}}/scgi_temp;
            {{httpBody.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal).Replace("{prefix}", prefix, StringComparison.Ordinal)}}
            }
            """;
        dir.Write("nginx.conf", conf);
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-p", prefix + "/", "-c", dir.File("nginx.conf"), "-g", "daemon off; master_process off;" })
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("nginx did not start");
        var nginx = new NginxProcess(process, dir, port);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            if (process.HasExited)
            {
                var err = await process.StandardError.ReadToEndAsync();
                throw new InvalidOperationException("nginx exited: " + err);
            }

            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                return nginx;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }

        _process.Dispose();
        Dir.Dispose();
    }
}
