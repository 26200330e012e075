using System.Net.Http;
using Portico.Hosting;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Foundation;

/// <summary>The real portico binary, driven with nginx's command line.</summary>
public class CommandLineTests
{
    private static string Config(int port) => $$"""
        error_log logs/error.log notice;
        pid logs/portico.pid;
        events { worker_connections 64; }
        http {
            server {
                listen 127.0.0.1:{{port}};
                location / { return 200 "hello from portico\n"; }
            }
        }
        """;

    [Fact]
    public async Task TestSucceedsWithNginxMessages()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var conf = dir.Write("conf/portico.conf", Config(TestPorts.GetFree()));
        var (code, stdout, stderr) = await PorticoProcess.RunAsync("-t", "-p", dir.Path, "-c", conf);
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, stdout);
        Assert.Equal($"portico: the configuration file {conf} syntax is ok\nportico: configuration file {conf} test is successful\n", stderr);
    }

    [Fact]
    public async Task TestFailsWithFileAndLine()
    {
        using var dir = new TempDir();
        var conf = dir.Write("conf/portico.conf", "events {}\nhttp {\n  server {\n    listen 80;\n    proxy_nonsense on;\n  }\n}\n");
        var (code, _, stderr) = await PorticoProcess.RunAsync("-t", "-p", dir.Path, "-c", conf);
        Assert.Equal(1, code);
        Assert.Equal($"portico: [emerg] unknown directive \"proxy_nonsense\" in {conf}:5\nportico: configuration file {conf} test failed\n", stderr);
    }

    [Fact]
    public async Task QuietTestPrintsNothingOnSuccess()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var conf = dir.Write("conf/portico.conf", Config(TestPorts.GetFree()));
        var (code, stdout, stderr) = await PorticoProcess.RunAsync("-tq", "-p", dir.Path, "-c", conf);
        Assert.Equal((0, "", ""), (code, stdout, stderr));
    }

    [Fact]
    public async Task DumpPrintsEveryFileWithoutBindingOrPidFile()
    {
        using var dir = new TempDir();
        var port = TestPorts.GetFree();
        dir.Write("conf/sites/a.conf", $"server {{ listen 127.0.0.1:{port}; return 204; }}\n");
        var conf = dir.Write("conf/portico.conf", "pid logs/portico.pid;\nevents {}\nhttp {\n include sites/*.conf;\n}\n");
        Directory.CreateDirectory(dir.File("logs"));
        using var blocker = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
        blocker.Start(); // -T must not try to bind: a busy port does not matter.
        var (code, stdout, _) = await PorticoProcess.RunAsync("-T", "-p", dir.Path, "-c", conf);
        Assert.Equal(0, code);
        Assert.Equal(
            $"# configuration file {conf}:\npid logs/portico.pid;\nevents {{}}\nhttp {{\n include sites/*.conf;\n}}\n\n" +
            $"# configuration file {dir.File("conf/sites/a.conf")}:\nserver {{ listen 127.0.0.1:{port}; return 204; }}\n\n",
            stdout);
        Assert.False(File.Exists(dir.File("logs/portico.pid")));
    }

    [Fact]
    public async Task UnopenableErrorLogFailsTheTest()
    {
        using var dir = new TempDir();
        var conf = dir.Write("conf/portico.conf", Config(TestPorts.GetFree()));
        var (code, _, stderr) = await PorticoProcess.RunAsync("-t", "-p", dir.Path, "-c", conf);
        Assert.Equal(1, code);
        Assert.StartsWith($"portico: [emerg] open() \"{dir.File("logs/error.log")}\" failed (2: No such file or directory)\n", stderr);
    }

    [Fact]
    public async Task GlobalDirectivesOnTheCommandLine()
    {
        using var dir = new TempDir();
        var conf = dir.Write("conf/portico.conf", "events {}\n");
        var (code, _, stderr) = await PorticoProcess.RunAsync("-t", "-p", dir.Path, "-c", conf, "-g", "worker_processes 2; bogus 1;");
        Assert.Equal(1, code);
        Assert.StartsWith("portico: [emerg] unknown directive \"bogus\" in command line\n", stderr);
    }

    [Fact]
    public async Task EmbeddedDefaultConfigurationWithoutConfigFile()
    {
        using var dir = new TempDir();
        var (code, _, stderr) = await PorticoProcess.RunAsync("-t", "-p", dir.Path);
        Assert.Equal(0, code);
        Assert.Equal("portico: the configuration file <embedded default configuration> syntax is ok\nportico: configuration file <embedded default configuration> test is successful\n", stderr);
        var (_, dump, _) = await PorticoProcess.RunAsync("-T", "-q", "-p", dir.Path);
        Assert.Contains("listen 127.0.0.1:8080 default_server;", dump, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VersionAndHelp()
    {
        var (code, _, stderr) = await PorticoProcess.RunAsync("-v");
        Assert.Equal(0, code);
        Assert.Equal("portico version: portico/0.1.0\n", stderr);
        (code, _, stderr) = await PorticoProcess.RunAsync("-h");
        Assert.Equal(0, code);
        Assert.Contains("-s signal     : send signal", stderr, StringComparison.Ordinal);
        (code, _, stderr) = await PorticoProcess.RunAsync("-x");
        Assert.Equal(1, code);
        Assert.Equal("portico: invalid option: \"x\"\n", stderr);
    }

    [Fact]
    public async Task BadConfigAtStartExitsWithoutPidFile()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var conf = dir.Write("conf/portico.conf", "pid logs/portico.pid;\nevents {}\nhttp {\n server { listen 127.0.0.1:1; location / { retrun 200; } }\n}\n");
        var (code, _, stderr) = await PorticoProcess.RunAsync("-p", dir.Path, "-c", conf, "-e", dir.File("logs/startup.log"));
        Assert.NotEqual(0, code);
        Assert.Contains($"[emerg] unknown directive \"retrun\" in {conf}:4", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.File("logs/portico.pid")));
        var startupLog = await File.ReadAllTextAsync(dir.File("logs/startup.log"));
        Assert.Matches(@"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[emerg\] \d+#\d+: unknown directive ""retrun"" in .*portico.conf:4\n$", startupLog);
    }

    [Fact]
    public async Task BusyPortFailsWithBindMessage()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var port = TestPorts.GetFree();
        using var blocker = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
        blocker.Start();
        var conf = dir.Write("conf/portico.conf", Config(port));
        var (code, _, stderr) = await PorticoProcess.RunAsync("-p", dir.Path, "-c", conf);
        Assert.NotEqual(0, code);
        Assert.Contains($"[emerg] bind() to 127.0.0.1:{port} failed (98: Address already in use)", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.File("logs/portico.pid")));
    }

    [Fact]
    public async Task SecondInstanceOnTheSamePortFails()
    {
        await using var first = await PorticoInstance.StartHttpAsync("server { listen 127.0.0.1:{port}; return 200 first; }");
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var conf = dir.Write("conf/portico.conf", Config(first.Port));
        var (code, _, stderr) = await PorticoProcess.RunAsync("-p", dir.Path, "-c", conf);
        Assert.NotEqual(0, code);
        Assert.Contains($"bind() to 127.0.0.1:{first.Port} failed (98: Address already in use)", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PidFileAppearsOnceServingAndGoesAfterQuit()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var port = TestPorts.GetFree();
        var conf = dir.Write("conf/portico.conf", Config(port));
        var pidFile = dir.File("logs/portico.pid");
        using var process = PorticoProcess.Start("-p", dir.Path, "-c", conf);
        using var client = new HttpClient();

        // Poll (bounded) for the pid file; whenever it exists, the port must already answer.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(pidFile))
        {
            Assert.True(DateTime.UtcNow < deadline, "pid file never appeared: " + process.Output);
            Assert.False(process.HasExited, process.Output);
            await Task.Delay(10);
        }

        var body = await client.GetStringAsync($"http://127.0.0.1:{port}/");
        Assert.Equal("hello from portico\n", body);
        Assert.Equal(process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), (await File.ReadAllTextAsync(pidFile)).Trim());

        // -s quit reads the pid file and sends QUIT.
        var (code, _, stderr) = await PorticoProcess.RunAsync("-p", dir.Path, "-c", conf, "-s", "quit");
        Assert.True(code == 0, stderr);
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(20)), "did not exit after QUIT");
        Assert.Equal(0, process.ExitCode);
        Assert.False(File.Exists(pidFile));
        var log = await File.ReadAllTextAsync(dir.File("logs/error.log"));
        Assert.Contains("[notice]", log, StringComparison.Ordinal);
        Assert.Contains("signal 3 (SIGQUIT) received", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QuitAfterAStartupWarningStillStopsGracefully()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var port = TestPorts.GetFree();
        var conf = dir.Write("conf/portico.conf", Config(port).Replace("listen 127.0.0.1:", "server_name \"a/b\";\n                listen 127.0.0.1:", StringComparison.Ordinal));
        using var process = PorticoProcess.Start("-p", dir.Path, "-c", conf);
        await WaitForAsync(() => File.Exists(dir.File("logs/portico.pid")), process);
        Assert.Contains("[warn] server name \"a/b\" has suspicious symbols", process.Output, StringComparison.Ordinal);
        process.Signal(Signals.SigQuit);
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, process.ExitCode);
    }

    [Fact]
    public async Task SignalWithoutRunningInstance()
    {
        using var dir = new TempDir();
        var conf = dir.Write("conf/portico.conf", "pid logs/none.pid;\nevents {}\n");
        var (code, _, stderr) = await PorticoProcess.RunAsync("-p", dir.Path, "-c", conf, "-s", "reload");
        Assert.Equal(1, code);
        Assert.Equal($"portico: [error] open() \"{dir.File("logs/none.pid")}\" failed (2: No such file or directory)\n", stderr);
    }

    [Fact]
    public async Task ReloadAndReopenThroughSignals()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("logs"));
        var port = TestPorts.GetFree();
        var conf = dir.Write("conf/portico.conf", Config(port));
        using var process = PorticoProcess.Start("-p", dir.Path, "-c", conf);
        using var client = new HttpClient();
        await WaitForAsync(() => File.Exists(dir.File("logs/portico.pid")), process);

        dir.Write("conf/portico.conf", Config(port).Replace("hello from portico", "reloaded", StringComparison.Ordinal));
        var (code, _, _) = await PorticoProcess.RunAsync("-p", dir.Path, "-c", conf, "-s", "reload");
        Assert.Equal(0, code);
        await WaitForAsync(async () => await client.GetStringAsync($"http://127.0.0.1:{port}/") == "reloaded\n", process);

        File.Move(dir.File("logs/error.log"), dir.File("logs/error.log.1"));
        process.Signal(Signals.SigUsr1);
        await WaitForAsync(() => File.Exists(dir.File("logs/error.log")), process);

        process.Signal(Signals.SigTerm);
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.False(File.Exists(dir.File("logs/portico.pid")));
    }

    private static Task WaitForAsync(Func<bool> condition, PorticoProcess process) => WaitForAsync(() => Task.FromResult(condition()), process);

    private static async Task WaitForAsync(Func<Task<bool>> condition, PorticoProcess process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, "condition not met: " + process.Output);
            Assert.False(process.HasExited, process.Output);
            await Task.Delay(20);
        }
    }
}
