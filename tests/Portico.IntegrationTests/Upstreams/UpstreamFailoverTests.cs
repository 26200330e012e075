using Microsoft.AspNetCore.Http;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using static Portico.IntegrationTests.Upstreams.UpstreamKit;

namespace Portico.IntegrationTests.Upstreams;

/// <summary>upstream blocks with real origins: retries, passive health, backups, no live upstreams, keepalive.</summary>
public sealed class UpstreamFailoverTests
{
    private static string Http(string upstream, string location, string extra = "") => PorticoInstance.WrapHttp($$"""
        {{upstream}}
        {{extra}}
        server {
            listen 127.0.0.1:{port};
            location / {
                {{location}}
            }
        }
        """);

    [Fact]
    public async Task RetriesListEveryAttemptInUpstreamAddrAndStatus()
    {
        await using var good = await Origin.StartAsync("good");
        var dead = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartAsync(Http(
            $"upstream backend {{ server 127.0.0.1:{dead}; server {good.Address}; }}",
            "proxy_pass http://backend; add_header X-Addr $upstream_addr always; add_header X-Status $upstream_status always;"));
        var response = await portico.Client.GetAsync("/");
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("good", await response.Content.ReadAsStringAsync());
        Assert.Equal($"127.0.0.1:{dead}, {good.Address}", response.Headers.GetValues("X-Addr").Single());
        Assert.Equal("502, 200", response.Headers.GetValues("X-Status").Single());
        var log = await portico.ReadErrorLogAsync();
        Assert.Contains("connect() failed (111: Connection refused) while connecting to upstream", log, StringComparison.Ordinal);
        Assert.Contains("upstream server temporarily disabled while connecting to upstream", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LaterRequestsOnAConnectionStartWithNothingOfEarlierOnes()
    {
        // Requests reuse the context (and the proxy's objects) of requests that ended before them.
        await using var sick = await Origin.StartAsync("sick");
        await using var good = await Origin.StartAsync("good");
        sick.Sick = true;
        await using var portico = await PorticoInstance.StartAsync(PorticoInstance.WrapHttp($$"""
            upstream retry { server {{sick.Address}} max_fails=0; server {{good.Address}}; }
            upstream single { server {{good.Address}}; }
            upstream broken { server {{sick.Address}} max_fails=0; }
            server {
                listen 127.0.0.1:{port};
                add_header X-Addr $upstream_addr always;
                add_header X-Status $upstream_status always;
                location /retry { proxy_pass http://retry; proxy_next_upstream http_500; }
                location /one { proxy_pass http://single; }
                location /broken { proxy_pass http://broken; }
            }
            """));

        for (var round = 0; round < 3; round++)
        {
            var retried = await portico.Client.GetAsync("/retry");
            Assert.Equal("good", await retried.Content.ReadAsStringAsync());
            Assert.EndsWith("200", retried.Headers.GetValues("X-Status").Single(), StringComparison.Ordinal);

            var one = await portico.Client.GetAsync("/one");
            Assert.Equal(200, (int)one.StatusCode);
            Assert.Equal("good", await one.Content.ReadAsStringAsync());
            Assert.Equal(good.Address, one.Headers.GetValues("X-Addr").Single());
            Assert.Equal("200", one.Headers.GetValues("X-Status").Single());

            var broken = await portico.Client.GetAsync("/broken");
            Assert.Equal(500, (int)broken.StatusCode);
            Assert.Equal(sick.Address, broken.Headers.GetValues("X-Addr").Single());
            Assert.Equal("500", broken.Headers.GetValues("X-Status").Single());
        }
    }

    [Fact]
    public async Task StatusRetriesFollowProxyNextUpstreamAndTries()
    {
        await using var sick = await Origin.StartAsync("sick");
        await using var good = await Origin.StartAsync("good");
        sick.Sick = true;
        await using var portico = await PorticoInstance.StartAsync(Http(
            $"upstream backend {{ server {sick.Address} max_fails=0; server {good.Address}; }}",
            "proxy_pass http://backend; proxy_next_upstream http_500; add_header X-Status $upstream_status always;"));
        var response = await portico.Client.GetAsync("/");
        Assert.Equal("good", await response.Content.ReadAsStringAsync());
        Assert.Equal("500, 200", response.Headers.GetValues("X-Status").Single());

        // proxy_next_upstream_tries 1: the 500 goes to the client as it is.
        Assert.True(await portico.ReloadAsync(Http(
            $"upstream backend {{ server {sick.Address} max_fails=0; server {good.Address}; }}",
            "proxy_pass http://backend; proxy_next_upstream http_500; proxy_next_upstream_tries 1;")));
        var statuses = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            statuses.Add((int)(await portico.Client.GetAsync("/")).StatusCode);
        }

        Assert.Contains(500, statuses);
        Assert.Contains(200, statuses);

        // POST is not retried unless non_idempotent.
        Assert.True(await portico.ReloadAsync(Http(
            $"upstream backend {{ server {sick.Address} max_fails=0; server {good.Address}; }}",
            "proxy_pass http://backend; proxy_next_upstream http_500;")));
        var posts = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            posts.Add((int)(await portico.Client.PostAsync("/", new StringContent("x"))).StatusCode);
        }

        Assert.Contains(500, posts);
    }

    [Fact]
    public async Task NoLiveUpstreamsIs502WithNginxLogLine()
    {
        await using var origin = await Origin.StartAsync("a");
        await using var portico = await PorticoInstance.StartAsync(Http(
            $"upstream backend {{ server {origin.Address} down; server 127.0.0.1:1 down; }}",
            "proxy_pass http://backend;", "log_format up '$status $upstream_addr $upstream_status'; access_log logs/up.log up;"));
        var response = await portico.Client.GetAsync("/x");
        Assert.Equal(502, (int)response.StatusCode);
        var log = await portico.ReadErrorLogAsync();
        Assert.Contains("[error]", log, StringComparison.Ordinal);
        Assert.Contains("no live upstreams while connecting to upstream, client: 127.0.0.1, server: , request: \"GET /x HTTP/1.1\", upstream: \"http://backend/x\"", log, StringComparison.Ordinal);
        Assert.Equal(0, origin.Served);
        Assert.Equal("502 backend 502", (await File.ReadAllTextAsync(portico.Dir.File("logs/up.log"))).Trim());
    }

    [Fact]
    public async Task FailoverUnderLoadWithOriginsKilledAndRevived()
    {
        await using var a = await Origin.StartAsync("a");
        await using var b = await Origin.StartAsync("b");
        await using var portico = await PorticoInstance.StartAsync(Http(
            $"upstream backend {{ server {a.Address} max_fails=1 fail_timeout=1s; server {b.Address} max_fails=1 fail_timeout=1s; }}",
            "proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";"));
        await using (var load = new Load(portico.Port))
        {
            await load.AtLeastAsync(100);
            await a.KillAsync();
            var servedA = a.Served;
            var servedB = b.Served;
            await load.AtLeastAsync(200);
            // Every request answered since went to b. The load's four workers may each have had one request
            // counted by b (or answered by a while it shut down) before the snapshot and by the load after it.
            Assert.Equal(servedA, a.Served);
            Assert.True(b.Served - servedB >= 200 - 4, $"b served {b.Served - servedB} of the 200");
            await a.ReviveAsync();
            servedA = a.Served;
            await ProxyTest.WaitUntilAsync(() => a.Served > servedA + 20 || load.Failed > 0, "a back in rotation");
            await b.KillAsync();
            await load.AtLeastAsync(200);
            await b.ReviveAsync();
            await load.AtLeastAsync(100);
            Assert.True(load.Failed == 0, load.Failures);
        }
    }

    [Fact]
    public async Task BackupServesOnlyWhilePrimariesAreDown()
    {
        await using var a = await Origin.StartAsync("a");
        await using var b = await Origin.StartAsync("b");
        await using var spare = await Origin.StartAsync("spare");
        await using var portico = await PorticoInstance.StartAsync(Http(
            $"upstream backend {{ server {a.Address} max_fails=3 fail_timeout=1s; server {b.Address} max_fails=3 fail_timeout=1s; server {spare.Address} backup; }}",
            "proxy_pass http://backend;"));
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(200, (int)(await portico.Client.GetAsync("/")).StatusCode);
        }

        Assert.Equal(0, spare.Served);
        await a.KillAsync();
        await b.KillAsync();
        for (var i = 0; i < 20; i++)
        {
            var response = await portico.Client.GetAsync("/");
            Assert.Equal("spare", await response.Content.ReadAsStringAsync());
        }

        await a.ReviveAsync();
        await b.ReviveAsync();
        await ProxyTest.WaitUntilAsync(async () => await (await portico.Client.GetAsync("/")).Content.ReadAsStringAsync() != "spare", "primaries back");
        var spareBefore = spare.Served;
        for (var i = 0; i < 20; i++)
        {
            Assert.NotEqual("spare", await (await portico.Client.GetAsync("/")).Content.ReadAsStringAsync());
        }

        Assert.Equal(spareBefore, spare.Served);
    }

    [Fact]
    public async Task KeepaliveReusesConnectionsFor1000SequentialRequests()
    {
        await using var origin = await Origin.StartAsync("k");
        await using var portico = await PorticoInstance.StartAsync(Http(
            $"upstream backend {{ server {origin.Address}; keepalive 2; }}",
            "proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";"));
        for (var i = 0; i < 1000; i++)
        {
            var response = await portico.Client.GetAsync("/");
            Assert.Equal(200, (int)response.StatusCode);
        }

        Assert.Equal(1000, origin.Served);
        Assert.InRange(origin.Connections.Count, 1, 2);
    }

    [Fact]
    public async Task KeepaliveZeroClosesEveryConnection()
    {
        await using var origin = await Origin.StartAsync("k");
        await using var portico = await PorticoInstance.StartAsync(Http(
            $"upstream backend {{ server {origin.Address}; keepalive 0; }}",
            "proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";"));
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(200, (int)(await portico.Client.GetAsync("/")).StatusCode);
        }

        Assert.Equal(20, origin.Connections.Count);
    }

    [Fact]
    public async Task MaxConnsWithQueueWaitsForASlot()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inside = 0;
        var maxInside = 0;
        await using var origin = await TestOrigin.StartAsync(async ctx =>
        {
            var now = Interlocked.Increment(ref inside);
            InterlockedMax(ref maxInside, now);
            await release.Task;
            Interlocked.Decrement(ref inside);
            await ctx.Response.WriteAsync("ok");
        });
        await using var portico = await PorticoInstance.StartAsync(Http(
            $"upstream backend {{ server {origin.Address} max_conns=2; queue 10 timeout=30s; }}",
            "proxy_pass http://backend;"));
        var requests = Enumerable.Range(0, 6).Select(_ => portico.Client.GetAsync("/")).ToArray();
        await ProxyTest.WaitUntilAsync(() => Volatile.Read(ref inside) == 2, "two requests at the origin");
        release.SetResult();
        foreach (var r in requests)
        {
            Assert.Equal(200, (int)(await r).StatusCode);
        }

        Assert.Equal(2, maxInside);
    }

    [Fact]
    public async Task MaxConnsWithoutQueueAnswers502WhenEverySlotIsTaken()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inside = 0;
        await using var origin = await TestOrigin.StartAsync(async ctx =>
        {
            Interlocked.Increment(ref inside);
            await release.Task;
            await ctx.Response.WriteAsync("ok");
        });
        await using var portico = await PorticoInstance.StartAsync(Http(
            $"upstream backend {{ server {origin.Address} max_conns=1; server 127.0.0.1:1 down; }}",
            "proxy_pass http://backend;"));
        var first = portico.Client.GetAsync("/");
        await ProxyTest.WaitUntilAsync(() => Volatile.Read(ref inside) == 1, "one request at the origin");
        Assert.Equal(502, (int)(await portico.Client.GetAsync("/")).StatusCode);
        release.SetResult();
        Assert.Equal(200, (int)(await first).StatusCode);
        Assert.Equal(1, Volatile.Read(ref inside));
        Assert.Contains("no live upstreams", await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
