using System.Text.Json;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using static Portico.IntegrationTests.Upstreams.UpstreamKit;

namespace Portico.IntegrationTests.Upstreams;

/// <summary>Active health checks (nginx Plus syntax): peers leave before a client request fails and come back after "passes".</summary>
public sealed class HealthCheckTests
{
    [Fact]
    public async Task UnhealthyOriginIsRemovedBeforeClientsSeeItAndReturnsAfterPasses()
    {
        await using var a = await Origin.StartAsync("a");
        await using var b = await Origin.StartAsync("b");
        await using var portico = await PorticoInstance.StartAsync(PorticoInstance.WrapHttp($$"""
            upstream app_pool {
                zone app_pool 64k;
                server {{a.Address}};
                server {{b.Address}};
            }
            match ok {
                status 200;
                body ~ "healthy";
            }
            server {
                listen 127.0.0.1:{port};
                location / {
                    proxy_pass http://app_pool;
                    health_check interval=100ms fails=2 passes=3 uri=/health match=ok;
                }
            }
            server {
                listen unix:{prefix}/api.sock;
                location /api { api; }
            }
            """));
        using var api = UnixClient(portico.Dir.File("api.sock"));
        async Task<string> StateOfA()
        {
            var (_, json) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/app_pool");
            return json.GetProperty("peers")[0].GetProperty("state").GetString()!;
        }

        // Checks run with no traffic at all.
        await ProxyTest.WaitUntilAsync(() => a.Checks >= 2 && b.Checks >= 2, "checks without traffic");
        Assert.Equal(0, a.Served + b.Served);

        a.Sick = true;
        await ProxyTest.WaitUntilAsync(async () => await StateOfA() == "unhealthy", "a unhealthy");
        for (var i = 0; i < 30; i++)
        {
            var response = await portico.Client.GetAsync("/");
            Assert.Equal(200, (int)response.StatusCode);
            Assert.Equal("b", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(0, a.Served);
        var checks = a.Checks;
        a.Sick = false;
        await ProxyTest.WaitUntilAsync(async () => await StateOfA() == "up", "a healthy again");
        Assert.True(a.Checks >= checks + 3);
        await ProxyTest.WaitUntilAsync(async () => await portico.Client.GetStringAsync("/") == "a", "a serving");
        var (_, group) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/app_pool");
        var hc = group.GetProperty("peers")[0].GetProperty("health_checks");
        Assert.True(hc.GetProperty("unhealthy").GetInt64() >= 1);
        Assert.True(hc.GetProperty("last_passed").GetBoolean());
        var log = await portico.ReadErrorLogAsync();
        Assert.Contains($"peer is unhealthy while checking response, health check \"ok\" of peer {a.Address} in upstream \"app_pool\"", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MandatoryChecksKeepNewPeersOutUntilTheyPass()
    {
        await using var a = await Origin.StartAsync("a");
        a.Sick = true;
        await using var b = await Origin.StartAsync("b");
        await using var portico = await PorticoInstance.StartAsync(PorticoInstance.WrapHttp($$"""
            upstream app_pool {
                server {{a.Address}};
                server {{b.Address}};
            }
            server {
                listen 127.0.0.1:{port};
                location / {
                    proxy_pass http://app_pool;
                    health_check interval=100ms uri=/health mandatory;
                }
            }
            """));
        for (var i = 0; i < 10; i++)
        {
            var response = await portico.Client.GetAsync("/");
            Assert.True(response.StatusCode == System.Net.HttpStatusCode.BadGateway || await response.Content.ReadAsStringAsync() == "b");
        }

        // The second check starts once the first round was recorded.
        await ProxyTest.WaitUntilAsync(() => b.Checks >= 2, "b checked");
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("b", await portico.Client.GetStringAsync("/"));
        }

        Assert.Equal(0, a.Served);
    }
}
