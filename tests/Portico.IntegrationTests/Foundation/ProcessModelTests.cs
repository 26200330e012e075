using System.Net;
using System.Net.Sockets;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Foundation;

/// <summary>Main-context directives that map onto the process: worker_rlimit_nofile, worker_connections.</summary>
public class ProcessModelTests
{
    [Fact]
    public async Task WorkerRlimitNofileRaisesTheProcessLimit()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var port = TestPorts.GetFree();
        var conf = dir.Write("conf/portico.conf", $$"""
            worker_rlimit_nofile 4321;
            events {}
            http { server { listen 127.0.0.1:{{port}}; return 204; } }
            """);
        using var process = PorticoProcess.Start("-p", dir.Path, "-c", conf);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(dir.File("logs/portico.pid")))
        {
            Assert.True(DateTime.UtcNow < deadline && !process.HasExited, process.Output);
            await Task.Delay(20);
        }

        var limits = await File.ReadAllLinesAsync($"/proc/{process.Pid}/limits");
        var line = limits.Single(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        Assert.Matches(@"^Max open files\s+4321\s+4321\s+files", line);
    }

    /// <summary>
    /// On one CPU the runtime delays tiering tenfold unless DOTNET_TC_DelaySingleProcMultiplier is set, and reads it
    /// only at start: Portico starts itself again in the same process with it at 1 (same PID, same arguments).
    /// </summary>
    [Theory]
    [InlineData("1", null, "1")] // one CPU: restarted with the multiplier at 1
    [InlineData("1", "10", "10")] // the operator's own value is kept
    [InlineData("2", null, null)] // more than one CPU: nothing changes
    public async Task OnOneCpuTheRuntimeTiersUpWithoutTheSingleCpuDelay(string cpus, string? own, string? expected)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var port = TestPorts.GetFree();
        var conf = dir.Write("conf/portico.conf", $$"""
            events {}
            http { server { listen 127.0.0.1:{{port}}; return 200 served; } }
            """);
        var environment = new Dictionary<string, string?>
        {
            ["DOTNET_PROCESSOR_COUNT"] = cpus,
            ["DOTNET_TC_DelaySingleProcMultiplier"] = own,
            ["COMPlus_TC_DelaySingleProcMultiplier"] = null,
        };
        using var process = PorticoProcess.Start(environment, "-p", dir.Path, "-c", conf);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(dir.File("logs/portico.pid")))
        {
            Assert.True(DateTime.UtcNow < deadline && !process.HasExited, process.Output);
            await Task.Delay(20);
        }

        var answer = await RawHttp.SendAsync(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
        Assert.EndsWith("served", answer, StringComparison.Ordinal);

        // The process that answers is the one started (the PID tools and the pid file know), with its arguments.
        Assert.Equal(process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), (await File.ReadAllTextAsync(dir.File("logs/portico.pid"))).Trim());
        // The process's name (ps, pgrep) is still that of the program started (the test starts "dotnet").
        Assert.Equal("dotnet", (await File.ReadAllTextAsync($"/proc/{process.Pid}/comm")).Trim());
        var argv = (await File.ReadAllTextAsync($"/proc/{process.Pid}/cmdline")).TrimEnd('\0').Split('\0');
        Assert.Equal([PorticoProcess.DllPath, "-p", dir.Path, "-c", conf], argv[1..]);

        var values = (await File.ReadAllTextAsync($"/proc/{process.Pid}/environ")).Split('\0')
            .Where(v => v.StartsWith("DOTNET_TC_DelaySingleProcMultiplier=", StringComparison.Ordinal))
            .Select(v => v["DOTNET_TC_DelaySingleProcMultiplier=".Length..])
            .ToArray();
        Assert.Equal(expected is null ? [] : [expected], values);

        // The runtime's diagnostics port (dotnet-counters, dotnet-trace) answers in the restarted process too.
        // Its name carries the PID and the process's start time (field 22 of /proc/PID/stat), both kept by execve.
        var stat = await File.ReadAllTextAsync($"/proc/{process.Pid}/stat");
        var startTime = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19];
        var diagnosticsPort = Path.Combine(Path.GetTempPath(), $"dotnet-diagnostic-{process.Pid}-{startTime}-socket");
        using var diagnostics = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await diagnostics.ConnectAsync(new UnixDomainSocketEndPoint(diagnosticsPort));
    }

    [Fact]
    public async Task WorkerConnectionsLimitsConcurrentClients()
    {
        await using var portico = await PorticoInstance.StartAsync("""
            error_log logs/error.log info;
            events { worker_connections 2; }
            http { server { listen 127.0.0.1:{port}; return 200 ok; } }
            """);
        using var a = await OpenKeptAliveAsync(portico.Port);
        using var b = await OpenKeptAliveAsync(portico.Port);

        using var c = new TcpClient();
        await c.ConnectAsync(IPAddress.Loopback, portico.Port);
        var stream = c.GetStream();
        await stream.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[1024];
        int n;
        try
        {
            n = await stream.ReadAsync(buffer, cts.Token);
        }
        catch (IOException)
        {
            n = 0;
        }

        Assert.Equal(0, n); // the third connection is closed without an answer

        a.Dispose();
        // Once a slot frees up, new clients are served again (poll, bounded).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var answer = await RawHttp.SendAsync(portico.Port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", TimeSpan.FromSeconds(2));
            if (answer.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, "no slot freed");
            await Task.Delay(50);
        }
    }

    private static async Task<TcpClient> OpenKeptAliveAsync(int port)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        await stream.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var buffer = new byte[1024];
        var n = await stream.ReadAsync(buffer);
        Assert.StartsWith("HTTP/1.1 200", System.Text.Encoding.ASCII.GetString(buffer, 0, n), StringComparison.Ordinal);
        return client;
    }
}
