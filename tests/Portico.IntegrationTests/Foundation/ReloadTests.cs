using System.Collections.Concurrent;
using System.Net.Sockets;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Foundation;

/// <summary>Hot reload: the new snapshot swaps in, a bad configuration keeps the old, sockets come and go.</summary>
public class ReloadTests
{
    private static string Version(string version, string extraServers = "") => PorticoInstance.WrapHttp($$"""
        server {
            listen 127.0.0.1:{port};
            location / { return 200 "{{version}}"; }
        }
        {{extraServers}}
        """);

    [Fact]
    public async Task ReloadUnderLoadLosesNoRequest()
    {
        await using var portico = await PorticoInstance.StartAsync(Version("v0"));
        var failures = new ConcurrentQueue<string>();
        var seen = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        var total = 0;

        async Task ClientLoop()
        {
            using var client = new HttpClient { BaseAddress = portico.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
            for (var i = 0; i < 100_000 && !stop.IsCancellationRequested; i++)
            {
                try
                {
                    var response = await client.GetAsync("/");
                    var body = await response.Content.ReadAsStringAsync();
                    Interlocked.Increment(ref total);
                    if ((int)response.StatusCode != 200)
                    {
                        failures.Enqueue($"{(int)response.StatusCode} {body}");
                    }

                    seen.AddOrUpdate(body, 1, (_, n) => n + 1);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    failures.Enqueue(e.Message);
                }
            }
        }

        var clients = Enumerable.Range(0, 4).Select(_ => Task.Run(ClientLoop)).ToArray();
        var versions = new[] { "v1", "v2", "BAD", "v3", "v4" };
        var current = "v0";
        foreach (var v in versions)
        {
            await Task.Delay(100);
            if (v == "BAD")
            {
                var ok = await portico.ReloadAsync(Version("v9").Replace("return 200", "retrun 200", StringComparison.Ordinal));
                Assert.False(ok);
            }
            else
            {
                Assert.True(await portico.ReloadAsync(Version(v)));
                current = v;
            }

            // After each reload, a fresh request sees exactly the configuration in force.
            Assert.Equal(current, await portico.Client.GetStringAsync("/"));
        }

        await Task.Delay(100);
        stop.Cancel();
        await Task.WhenAll(clients);

        Assert.Empty(failures);
        Assert.True(total > 50, $"only {total} requests made");
        Assert.DoesNotContain("v9", seen.Keys);
        Assert.Subset(new HashSet<string> { "v0", "v1", "v2", "v3", "v4" }, seen.Keys.ToHashSet());
        var log = await portico.ReadErrorLogAsync();
        Assert.Contains(": unknown directive \"retrun\" in " + portico.ConfPath + ":8\n", log, StringComparison.Ordinal);
        Assert.Contains("[emerg]", log, StringComparison.Ordinal);
        Assert.Contains("reload failed, the running configuration stays in force", log, StringComparison.Ordinal);
        Assert.Contains("has no requests left", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListenersAreAddedAndRemovedWithoutDisturbingTheOthers()
    {
        var second = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartAsync(Version("one"));

        // Keep a keep-alive connection on the first socket across the reloads.
        using var kept = new HttpClient(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5), MaxConnectionsPerServer = 1 })
        {
            BaseAddress = portico.Client.BaseAddress,
        };
        Assert.Equal("one", await kept.GetStringAsync("/"));

        var extra = $$"""server { listen 127.0.0.1:{{second}}; location / { return 200 "second"; } }""";
        Assert.True(await portico.ReloadAsync(Version("two", extra)));
        Assert.Equal("two", await kept.GetStringAsync("/"));
        using (var client = new HttpClient())
        {
            Assert.Equal("second", await client.GetStringAsync($"http://127.0.0.1:{second}/"));
        }

        Assert.True(await portico.ReloadAsync(Version("three")));
        Assert.Equal("three", await kept.GetStringAsync("/"));
        await AssertRefusedAsync(second);
    }

    [Fact]
    public async Task ReloadThatCannotBindKeepsTheOldConfiguration()
    {
        await using var portico = await PorticoInstance.StartAsync(Version("old"));
        var busy = TestPorts.GetFree();
        using var blocker = new TcpListener(System.Net.IPAddress.Loopback, busy);
        blocker.Start();
        var extra = $$"""server { listen 127.0.0.1:{{busy}}; return 200 x; }""";
        Assert.False(await portico.ReloadAsync(Version("new", extra)));
        Assert.Equal("old", await portico.Client.GetStringAsync("/"));
        var log = await portico.ReadErrorLogAsync();
        Assert.Matches($@"\[emerg\] \d+#\d+: bind\(\) to 127\.0\.0\.1:{busy} failed \(98: Address already in use\)\n", log);
    }

    private static async Task AssertRefusedAsync(int port)
    {
        using var client = new TcpClient();
        var e = await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(System.Net.IPAddress.Loopback, port));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }
}
