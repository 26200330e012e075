using System.Net.Sockets;
using Portico.Hosting;

namespace Portico.IntegrationTests.Infrastructure;

/// <summary>
/// Portico running in the test process on loopback: a real PorticoHost with real Kestrel sockets,
/// configured from text written to a temporary prefix.
/// </summary>
public sealed class PorticoInstance : IAsyncDisposable
{
    private readonly StringWriter _console = new();

    private PorticoInstance(TempDir dir, PorticoHost host, int port)
    {
        Dir = dir;
        Host = host;
        Port = port;
        Client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, PooledConnectionLifetime = TimeSpan.FromSeconds(1) })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{port}"),
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    public TempDir Dir { get; }
    public PorticoHost Host { get; }

    /// <summary>The port substituted for {port} in the configuration.</summary>
    public int Port { get; }

    public HttpClient Client { get; }

    public string ErrorLogPath => Dir.File("logs/error.log");

    public string ConfPath => Dir.File("conf/portico.conf");

    /// <summary>Text the host wrote to its console (start-up diagnostics).</summary>
    public string ConsoleText => _console.ToString();

    /// <summary>
    /// Starts Portico with an http block body (servers, upstreams ...). "{port}" is replaced by a free port,
    /// "{prefix}" by the temporary prefix directory.
    /// </summary>
    public static Task<PorticoInstance> StartHttpAsync(string httpBody, string mainExtra = "") =>
        StartAsync(WrapHttp(httpBody, mainExtra));

    public static string WrapHttp(string httpBody, string mainExtra = "") => $$"""
        error_log logs/error.log info;
        pid logs/portico.pid;
        {{mainExtra}}
        events { worker_connections 1024; }
        http {
        {{httpBody}}
        }
        """;

    /// <summary>Starts Portico with a whole configuration file; throws with the diagnostics if it does not start.</summary>
    public static async Task<PorticoInstance> StartAsync(string config, int? port = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(config, port);
            }
            catch (InvalidOperationException e) when (port is null && attempt < 3 && e.Message.Contains("(98: Address already in use)", StringComparison.Ordinal))
            {
                // Another process took the free port between the check and the bind: take another one.
            }
        }
    }

    private static async Task<PorticoInstance> StartOnceAsync(string config, int? port)
    {
        var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        Directory.CreateDirectory(dir.File("conf"));
        var p = port ?? TestPorts.GetFree();
        var text = config.Replace("{port}", p.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{prefix}", dir.Path, StringComparison.Ordinal);
        dir.Write("conf/portico.conf", text);
        var console = new StringWriter();
        var host = new PorticoHost(new HostOptions
        {
            Prefix = dir.Path + "/",
            ConfFile = "conf/portico.conf",
            Console = console,
        });
        var instance = new PorticoInstance(dir, host, p);
        if (!await host.StartAsync())
        {
            await host.DisposeAsync();
            var log = File.Exists(instance.ErrorLogPath) ? await File.ReadAllTextAsync(instance.ErrorLogPath) : string.Empty;
            dir.Dispose();
            throw new InvalidOperationException("Portico did not start:\n" + console + log);
        }

        return instance;
    }

    /// <summary>Writes a new configuration and reloads; returns what ReloadAsync returned.</summary>
    public Task<bool> ReloadAsync(string config)
    {
        var text = config.Replace("{port}", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{prefix}", Dir.Path, StringComparison.Ordinal);
        File.WriteAllText(ConfPath, text);
        return Host.ReloadAsync();
    }

    /// <summary>
    /// Waits (bounded) until no request runs on the current configuration, then until the log writer has
    /// written everything queued. A client sees the response before the server's log phase runs, so tests
    /// that read logs right after a response call this first.
    /// </summary>
    public async Task QuiesceAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Host.Current is { ActiveRequests: > 0 } && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }

        await Host.Writer.DrainAsync(TimeSpan.FromSeconds(5));
    }

    public async Task<string> ReadErrorLogAsync()
    {
        await QuiesceAsync();
        return File.Exists(ErrorLogPath) ? await File.ReadAllTextAsync(ErrorLogPath) : string.Empty;
    }

    /// <summary>Sends raw bytes on a new connection and returns everything read until the server closes or the timeout.</summary>
    public Task<string> RawAsync(string request, int? port = null, bool untilClose = false) => RawHttp.SendAsync(port ?? Port, request, untilClose: untilClose);

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Host.StopAsync(graceful: false);
        await Host.DisposeAsync();
        Dir.Dispose();
    }
}

/// <summary>Raw HTTP over a socket, for requests no well-behaved client would send.</summary>
public static class RawHttp
{
    public static async Task<string> SendAsync(int port, string request, TimeSpan? timeout = null, bool untilClose = false)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
        var stream = client.GetStream();
        var bytes = System.Text.Encoding.Latin1.GetBytes(request);
        await stream.WriteAsync(bytes);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(5));
        var buffer = new byte[65536];
        var ms = new MemoryStream();
        try
        {
            while (true)
            {
                var n = await stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                {
                    break;
                }

                ms.Write(buffer, 0, n);
                if (!untilClose && LooksComplete(ms))
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (IOException)
        {
        }

        return System.Text.Encoding.Latin1.GetString(ms.ToArray());
    }

    /// <summary>True once a whole response with a Content-Length body has arrived.</summary>
    private static bool LooksComplete(MemoryStream ms)
    {
        var text = System.Text.Encoding.Latin1.GetString(ms.GetBuffer(), 0, (int)ms.Length);
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0)
        {
            return false;
        }

        foreach (var line in text[..end].Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            {
                var len = int.Parse(line[15..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                return text.Length - end - 4 >= len;
            }
        }

        return false;
    }
}
