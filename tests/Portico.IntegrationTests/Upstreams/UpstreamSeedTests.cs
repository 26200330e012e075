using System.Net;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using Portico.Upstreams;
using static Portico.IntegrationTests.Upstreams.UpstreamKit;

namespace Portico.IntegrationTests.Upstreams;

/// <summary>
/// The seeds' upstream pools (../shared/seeds/001 and 003, and the HAProxy backend's intent) as written,
/// with only addresses and ports replaced; each behaves as its text says.
/// </summary>
public sealed class UpstreamSeedTests
{
    private static async Task<Origin[]> Origins(int n)
    {
        var list = new Origin[n];
        for (var i = 0; i < n; i++)
        {
            list[i] = await Origin.StartAsync(((char)('a' + i)).ToString());
        }

        return list;
    }

    private static string Ports(string text, Origin[] o) => text
        .Replace("127.0.0.1:8080", o[0].Address, StringComparison.Ordinal)
        .Replace("127.0.0.1:8081", o[1].Address, StringComparison.Ordinal)
        .Replace("127.0.0.1:8082", o[2].Address, StringComparison.Ordinal)
        .Replace("listen 80;", "listen 127.0.0.1:{port};", StringComparison.Ordinal);

    [Fact]
    public async Task Seed001_PoolsLeastConnIpHashFailoverAndKeepalive()
    {
        var o = await Origins(3);
        try
        {
            // "Three workers on the same box ... nginx round-robins between them. keepalive 64."
            await using (var portico = await PorticoInstance.StartHttpAsync(Ports("""
                upstream app_backend {
                server 127.0.0.1:8080;
                server 127.0.0.1:8081;
                server 127.0.0.1:8082;
                keepalive 64;
                }
                server {
                listen 80;
                server_name example.com;
                location / {
                proxy_pass http://app_backend;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                }
                }
                """, o)))
            {
                var names = new List<string>();
                for (var i = 0; i < 6; i++)
                {
                    names.Add(await portico.Client.GetStringAsync("/"));
                }

                Assert.Equal("a,b,c,a,b,c", string.Join(",", names));
            }

            // least_conn and ip_hash load as written.
            await using (var portico = await PorticoInstance.StartHttpAsync(Ports("""
                upstream app_backend {
                least_conn; # send to the worker with fewest active connections
                server 127.0.0.1:8080;
                server 127.0.0.1:8081;
                }
                upstream sticky {
                ip_hash; # hash client IP — same client → same worker
                server 127.0.0.1:8080;
                server 127.0.0.1:8081;
                }
                server {
                listen 80;
                location / { proxy_pass http://app_backend; }
                location /sticky { proxy_pass http://sticky; }
                }
                """, o)))
            {
                Assert.Equal(200, (int)(await portico.Client.GetAsync("/")).StatusCode);
                var first = await portico.Client.GetStringAsync("/sticky");
                for (var i = 0; i < 10; i++)
                {
                    Assert.Equal(first, await portico.Client.GetStringAsync("/sticky"));
                }
            }

            // "max_fails=3 fail_timeout=30s ... backup — only used if all primaries are down."
            await using (var portico = await PorticoInstance.StartHttpAsync(Ports("""
                upstream app_backend {
                server 127.0.0.1:8080 max_fails=3 fail_timeout=30s;
                server 127.0.0.1:8081 max_fails=3 fail_timeout=30s;
                server 127.0.0.1:8082 backup;
                }
                server {
                listen 80;
                location / { proxy_pass http://app_backend; }
                }
                """, o)))
            {
                for (var i = 0; i < 10; i++)
                {
                    Assert.NotEqual("c", await portico.Client.GetStringAsync("/"));
                }

                await o[0].KillAsync();
                for (var i = 0; i < 10; i++)
                {
                    Assert.Equal("b", await portico.Client.GetStringAsync("/"));
                }

                // Three failures took a out for 30 s: the error log says so once.
                Assert.Contains("upstream server temporarily disabled", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
                await o[1].KillAsync();
                for (var i = 0; i < 5; i++)
                {
                    Assert.Equal("c", await portico.Client.GetStringAsync("/"));
                }
            }
        }
        finally
        {
            foreach (var x in o)
            {
                await x.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Seed003_AppPoolWithWeightsBackupKeepaliveZoneAndHealthCheck()
    {
        // The seed's hostnames point at loopback addresses of their own (127.0.0.11 ...), one port for all.
        var port = TestPorts.GetFree();
        string[] hosts = ["app1.internal", "app2.internal", "app3.internal", "app4.internal", "app-backup.internal"];
        var origins = new List<RawOrigin>();
        var counts = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        for (var i = 0; i < hosts.Length; i++)
        {
            var address = IPAddress.Parse("127.0.0." + (11 + i));
            UpstreamRegistry.StaticHosts[hosts[i]] = [address];
            var name = hosts[i];
            origins.Add(RawOrigin.Start(async c =>
            {
                var head = await c.ReadHeadAsync();
                if (head is not null)
                {
                    if (head.Target != "/health")
                    {
                        counts.AddOrUpdate(name, 1, (_, n) => n + 1);
                    }

                    await c.RespondAsync(200, name, "Connection: close");
                }
            }, address, port));
        }

        try
        {
            await using var portico = await PorticoInstance.StartHttpAsync($$"""
                upstream app_pool {
                    least_conn;                        # use least-connections algorithm
                    server app1.internal:{{port}}  weight=3;   # weight=3: gets 3× more traffic
                    server app2.internal:{{port}}  weight=3;
                    server app3.internal:{{port}}  weight=1;   # weight=1: canary — gets less traffic
                    server app4.internal:{{port}}  max_fails=3  fail_timeout=30s;
                    server app-backup.internal:{{port}}  backup;
                    # server app5.internal:3000  down;
                    keepalive  32;              # keep up to 32 idle connections per worker
                    zone app_pool 64k;            # shared memory for health state
                }

                server {
                    listen      127.0.0.1:{port};
                    server_name app.example.com;

                    location / {
                        proxy_pass         http://app_pool;
                        proxy_http_version 1.1;             # required for keepalive to upstreams
                        proxy_set_header   Connection "";   # required for keepalive (clear hop header)
                        proxy_set_header   Host              $host;
                        proxy_set_header   X-Real-IP         $remote_addr;
                        proxy_set_header   X-Forwarded-For   $proxy_add_x_forwarded_for;
                        proxy_set_header   X-Forwarded-Proto $scheme;
                        health_check interval=5s fails=2 passes=3 uri=/health;
                    }
                }
                """);

            // Sequential requests (nothing in flight): least_conn ties go by weight, 3:3:1:1, no backup.
            for (var i = 0; i < 80; i++)
            {
                Assert.Equal(200, (int)(await portico.Client.GetAsync("/")).StatusCode);
            }

            Assert.Equal(30, counts.GetValueOrDefault("app1.internal"));
            Assert.Equal(30, counts.GetValueOrDefault("app2.internal"));
            Assert.Equal(10, counts.GetValueOrDefault("app3.internal"));
            Assert.Equal(10, counts.GetValueOrDefault("app4.internal"));
            Assert.Equal(0, counts.GetValueOrDefault("app-backup.internal"));
        }
        finally
        {
            foreach (var o in origins)
            {
                await o.DisposeAsync();
            }

            foreach (var h in hosts)
            {
                UpstreamRegistry.StaticHosts.TryRemove(h, out _);
            }
        }
    }

    [Fact]
    public async Task HaproxySeedIntent_ActiveChecksRiseFallLeastBusyAndHotStandby()
    {
        // backend api_backend: balance leastconn; option httpchk GET /health; inter 5s fall 3 rise 2; api3 backup.
        var o = await Origins(3);
        try
        {
            await using var portico = await PorticoInstance.StartHttpAsync($$"""
                upstream api_backend {
                    least_conn;
                    server {{o[0].Address}};
                    server {{o[1].Address}};
                    server {{o[2].Address}} backup;
                }
                server {
                    listen 127.0.0.1:{port};
                    location / {
                        proxy_pass http://api_backend;
                        health_check interval=100ms fails=3 passes=2 uri=/health;
                    }
                }
                """);
            for (var i = 0; i < 10; i++)
            {
                Assert.NotEqual("c", await portico.Client.GetStringAsync("/"));
            }

            o[0].Sick = true;
            o[1].Sick = true;
            var checks = o[0].Checks;
            await ProxyTest.WaitUntilAsync(() => o[0].Checks >= checks + 4 && o[1].Checks >= checks + 4, "three failed checks");
            await ProxyTest.WaitUntilAsync(async () => await portico.Client.GetStringAsync("/") == "c", "hot standby");
            o[0].Sick = false;
            await ProxyTest.WaitUntilAsync(async () => await portico.Client.GetStringAsync("/") == "a", "a risen");
        }
        finally
        {
            foreach (var x in o)
            {
                await x.DisposeAsync();
            }
        }
    }
}
