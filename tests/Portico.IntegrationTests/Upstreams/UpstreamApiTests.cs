using System.Text.Json;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using static Portico.IntegrationTests.Upstreams.UpstreamKit;

namespace Portico.IntegrationTests.Upstreams;

/// <summary>The nginx Plus-shaped REST API: draining without a reload, over a unix socket as the docs do it.</summary>
public sealed class UpstreamApiTests
{
    private static string Config(Origin a, Origin b, string write = "on") => PorticoInstance.WrapHttp($$"""
        upstream ipfs {
            zone ipfs 64k;
            server {{a.Address}};
            server {{b.Address}};
        }
        server {
            listen 127.0.0.1:{port};
            location / { proxy_pass http://ipfs; proxy_http_version 1.1; proxy_set_header Connection ""; }
        }
        server {
            listen unix:{prefix}/api.sock;
            location /api { api write={{write}}; }
        }
        """);

    [Fact]
    public async Task DrainUnderLoadThenBackWithDownFalse()
    {
        await using var a = await Origin.StartAsync("a");
        await using var b = await Origin.StartAsync("b");
        await using var portico = await PorticoInstance.StartAsync(Config(a, b));
        using var api = UnixClient(portico.Dir.File("api.sock"));

        var (status, versions) = await SendJsonAsync(api, HttpMethod.Get, "/api/");
        Assert.Equal(200, status);
        Assert.Equal(9, versions.EnumerateArray().Last().GetInt32());
        (status, var upstreams) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/");
        Assert.Equal(200, status);
        var peers = upstreams.GetProperty("ipfs").GetProperty("peers");
        Assert.Equal(2, peers.GetArrayLength());
        Assert.Equal(a.Address, peers[0].GetProperty("server").GetString());
        Assert.Equal(0, peers[0].GetProperty("id").GetInt32());
        Assert.Equal("up", peers[0].GetProperty("state").GetString());
        Assert.Equal("ipfs", upstreams.GetProperty("ipfs").GetProperty("zone").GetString());

        await using (var load = new Load(portico.Port))
        {
            await load.AtLeastAsync(100);
            (status, var patched) = await SendJsonAsync(api, HttpMethod.Patch, "/api/9/http/upstreams/ipfs/servers/0", """{"drain":true}""");
            Assert.Equal(200, status);
            Assert.True(patched.GetProperty("drain").GetBoolean());
            (status, var one) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/ipfs");
            Assert.Equal("draining", one.GetProperty("peers")[0].GetProperty("state").GetString());

            // Requests in flight when the PATCH landed finish; after them a gets nothing new.
            await ProxyTest.WaitUntilAsync(() => one.GetProperty("peers")[0].GetProperty("active").GetInt64() >= 0, "active read");
            await load.AtLeastAsync(50);
            var drained = a.Served;
            await load.AtLeastAsync(300);
            Assert.Equal(drained, a.Served);

            (status, patched) = await SendJsonAsync(api, HttpMethod.Patch, "/api/9/http/upstreams/ipfs/servers/0", """{"down":false}""");
            Assert.Equal(200, status);
            Assert.False(patched.GetProperty("down").GetBoolean());
            await ProxyTest.WaitUntilAsync(() => a.Served > drained + 50 || load.Failed > 0, "a serving again");
            Assert.True(load.Failed == 0, load.Failures);
        }

        // The state belongs to the peer: a reload that keeps it keeps "down".
        (status, _) = await SendJsonAsync(api, HttpMethod.Patch, "/api/9/http/upstreams/ipfs/servers/1", """{"down":true}""");
        Assert.Equal(200, status);
        Assert.True(await portico.ReloadAsync(Config(a, b)));
        var (_, after) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/ipfs/servers/1");
        Assert.True(after.GetProperty("down").GetBoolean());
        var served = b.Served;
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("a", await portico.Client.GetStringAsync("/"));
        }

        Assert.Equal(served, b.Served);
    }

    [Fact]
    public async Task DeleteUpstream_ResetsStatisticsAndKeepsState()
    {
        await using var a = await Origin.StartAsync("a");
        await using var b = await Origin.StartAsync("b");
        await using var portico = await PorticoInstance.StartAsync(Config(a, b));
        using var api = UnixClient(portico.Dir.File("api.sock"));
        for (var i = 0; i < 6; i++)
        {
            await portico.Client.GetStringAsync("/");
        }

        var (status, _) = await SendJsonAsync(api, HttpMethod.Patch, "/api/9/http/upstreams/ipfs/servers/1", """{"down":true}""");
        Assert.Equal(200, status);
        var (_, before) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/ipfs");
        Assert.Equal(3, before.GetProperty("peers")[0].GetProperty("requests").GetInt64());
        Assert.Equal(3, before.GetProperty("peers")[0].GetProperty("responses").GetProperty("2xx").GetInt64());

        using var delete = new HttpRequestMessage(HttpMethod.Delete, "/api/9/http/upstreams/ipfs");
        Assert.Equal(204, (int)(await api.SendAsync(delete)).StatusCode);
        var (_, after) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/ipfs");
        var peer = after.GetProperty("peers")[0];
        Assert.Equal(0, peer.GetProperty("requests").GetInt64());
        Assert.Equal(0, peer.GetProperty("responses").GetProperty("2xx").GetInt64());
        Assert.Equal(0, peer.GetProperty("responses").GetProperty("total").GetInt64());
        Assert.Equal(0, peer.GetProperty("sent").GetInt64());
        // The administrative state is not a statistic.
        Assert.Equal("down", after.GetProperty("peers")[1].GetProperty("state").GetString());

        await portico.Client.GetStringAsync("/");
        var (_, counted) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/ipfs");
        Assert.Equal(1, counted.GetProperty("peers")[0].GetProperty("requests").GetInt64());
    }

    [Fact]
    public async Task ErrorsAndWriteOff()
    {
        await using var a = await Origin.StartAsync("a");
        await using var b = await Origin.StartAsync("b");
        await using var portico = await PorticoInstance.StartAsync(Config(a, b, write: "off"));
        using var api = UnixClient(portico.Dir.File("api.sock"));
        var (status, error) = await SendJsonAsync(api, HttpMethod.Patch, "/api/9/http/upstreams/ipfs/servers/0", """{"down":true}""");
        Assert.Equal(405, status);
        Assert.Equal("MethodDisabled", error.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(405, error.GetProperty("error").GetProperty("status").GetInt32());
        Assert.Equal("method disabled", error.GetProperty("error").GetProperty("text").GetString());
        Assert.True(error.TryGetProperty("request_id", out _));
        Assert.StartsWith("https://nginx.org/", error.GetProperty("href").GetString(), StringComparison.Ordinal);

        (status, error) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/nope");
        Assert.Equal(404, status);
        Assert.Equal("UpstreamNotFound", error.GetProperty("error").GetProperty("code").GetString());
        (status, error) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/upstreams/ipfs/servers/7");
        Assert.Equal(404, status);
        Assert.Equal("UpstreamServerNotFound", error.GetProperty("error").GetProperty("code").GetString());
        (status, error) = await SendJsonAsync(api, HttpMethod.Get, "/api/10/");
        Assert.Equal("UnknownVersion", error.GetProperty("error").GetProperty("code").GetString());
        (status, error) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/nothing");
        Assert.Equal("PathNotFound", error.GetProperty("error").GetProperty("code").GetString());
        (status, var http) = await SendJsonAsync(api, HttpMethod.Get, "/api/9/http/");
        Assert.Contains("upstreams", http.EnumerateArray().Select(e => e.GetString()));

        Assert.True(await portico.ReloadAsync(Config(a, b, write: "on")));
        (status, error) = await SendJsonAsync(api, HttpMethod.Patch, "/api/9/http/upstreams/ipfs/servers/0", """{"weight":0}""");
        Assert.Equal(400, status);
        Assert.Equal("UpstreamConfFormatError", error.GetProperty("error").GetProperty("code").GetString());
        (status, error) = await SendJsonAsync(api, HttpMethod.Patch, "/api/9/http/upstreams/ipfs/servers/0", """{"colour":"red"}""");
        Assert.Equal(400, status);
        Assert.Equal("unknown parameter \"colour\"", error.GetProperty("error").GetProperty("text").GetString());
        (status, error) = await SendJsonAsync(api, HttpMethod.Patch, "/api/9/http/upstreams/ipfs/servers/0", "{not json");
        Assert.Equal(415, status);
        Assert.Equal("JsonError", error.GetProperty("error").GetProperty("code").GetString());

        // POST adds a server, DELETE removes one: no reload.
        await using var c = await Origin.StartAsync("c");
        (status, var added) = await SendJsonAsync(api, HttpMethod.Post, "/api/9/http/upstreams/ipfs/servers/", $$"""{"server":"{{c.Address}}","weight":2}""");
        Assert.Equal(201, status);
        Assert.Equal(2, added.GetProperty("id").GetInt32());
        Assert.Equal(2, added.GetProperty("weight").GetInt32());
        await ProxyTest.WaitUntilAsync(async () => await portico.Client.GetStringAsync("/") == "c", "c serving");
        (status, var rest) = await SendJsonAsync(api, HttpMethod.Delete, "/api/9/http/upstreams/ipfs/servers/0");
        Assert.Equal(200, status);
        Assert.Equal(2, rest.GetArrayLength());
        var servedA = a.Served;
        for (var i = 0; i < 10; i++)
        {
            await portico.Client.GetStringAsync("/");
        }

        Assert.Equal(servedA, a.Served);
    }
}
