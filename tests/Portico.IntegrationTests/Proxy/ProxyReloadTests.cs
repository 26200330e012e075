using Portico.IntegrationTests.Infrastructure;
using Portico.Proxy;
using Portico.Upstreams.Transport;

namespace Portico.IntegrationTests.Proxy;

/// <summary>Connection pools belong to the peer and its settings: reloads keep them while unchanged and close dropped ones.</summary>
public sealed class ProxyReloadTests
{
    private static TransportHandle PoolOf(PorticoInstance portico)
    {
        var location = portico.Host.Current!.Servers[0].Locations.Find("/x", null).Location!;
        var proxy = Assert.IsType<ProxyHandler>(location.Content);
        return Assert.Single(proxy.Location.Pools.Values);
    }

    [Fact]
    public async Task PoolsSurviveReloadsAndAreClosedWhenDropped()
    {
        await using var one = RawOrigin.Start();
        await using var two = RawOrigin.Start();
        string Config(RawOrigin origin, string extra = "") => PorticoInstance.WrapHttp(ProxyTest.Server($"location / {{ proxy_pass http://{origin.Address}; {extra} }}"));
        await using var portico = await PorticoInstance.StartAsync(Config(one));
        Assert.StartsWith("HTTP/1.1 200", await ProxyTest.RawAsync(portico, "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
        var first = PoolOf(portico);

        // Same peer and settings (other directives changed): the same pool.
        Assert.True(await portico.ReloadAsync(Config(one, "proxy_set_header X-New 1;")));
        Assert.Same(first, PoolOf(portico));
        Assert.StartsWith("HTTP/1.1 200", await ProxyTest.RawAsync(portico, "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
        Assert.False(first.Closed);

        // Another peer: a new pool, and the old one is closed once idle.
        Assert.True(await portico.ReloadAsync(Config(two)));
        Assert.NotSame(first, PoolOf(portico));
        Assert.True(first.Closed);
        Assert.StartsWith("HTTP/1.1 200", await ProxyTest.RawAsync(portico, "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
        Assert.Single(two.Requests);
    }
}
