using System.Net;
using Portico.IntegrationTests.Infrastructure;
using static Portico.IntegrationTests.Tls.TlsTestKit;

namespace Portico.IntegrationTests.Tls;

/// <summary>Cleartext HTTP/2 with prior knowledge beside HTTP/1.1 ("http2 on" on a plain port), HTTP/3's dependency.</summary>
public sealed class Http2Tests
{
    private static string Config(string http2) => $$"""
        server {
            listen 127.0.0.1:{port};
            {{http2}}
            http2_max_concurrent_streams 64;
            location / { return 200 "$server_protocol $http2 $scheme"; }
        }
        """;

    [Fact]
    public async Task Http2OnAPlainPortServesPriorKnowledgeAndHttp11()
    {
        await using var portico = await PorticoInstance.StartHttpAsync(Config("http2 on;"));
        using var h2 = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var response = await h2.GetAsync($"http://127.0.0.1:{portico.Port}/");
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("HTTP/2.0 h2c http", await response.Content.ReadAsStringAsync());

        Assert.Equal("HTTP/1.1  http", await portico.Client.GetStringAsync("/"));
        var raw = await portico.RawAsync("GET / HTTP/1.0\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", raw, StringComparison.Ordinal);

        var curl = await RunAsync("curl", "-sS", "--http2-prior-knowledge", $"http://127.0.0.1:{portico.Port}/");
        Assert.Equal("HTTP/2.0 h2c http", curl.Out);

        var load = await RunAsync("h2load", "-n", "100", "-c", "2", "-m", "8", $"http://127.0.0.1:{portico.Port}/");
        Assert.Contains("requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed, 0 errored", load.Out, StringComparison.Ordinal);
        Assert.Contains("Application protocol: h2c", load.Out, StringComparison.Ordinal);
        // The advertised limit is http2_max_concurrent_streams.
        var verbose = await RunAsync("nghttp", "-nv", $"http://127.0.0.1:{portico.Port}/");
        Assert.Contains("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):64", verbose.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutHttp2OnAPlainPortRefusesThePreface()
    {
        await using var portico = await PorticoInstance.StartHttpAsync(Config(string.Empty));
        using var h2 = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        await Assert.ThrowsAsync<HttpRequestException>(() => h2.GetAsync($"http://127.0.0.1:{portico.Port}/"));
        Assert.Equal("HTTP/1.1  http", await portico.Client.GetStringAsync("/"));
    }

    [Fact]
    public async Task ReloadTurnsCleartextHttp2OnWithoutRebinding()
    {
        await using var portico = await PorticoInstance.StartAsync(PorticoInstance.WrapHttp(Config(string.Empty)));
        Assert.True(await portico.ReloadAsync(PorticoInstance.WrapHttp(Config("http2 on;"))));
        using var h2 = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        Assert.Equal("HTTP/2.0 h2c http", await h2.GetStringAsync($"http://127.0.0.1:{portico.Port}/"));
    }

    [Fact]
    public async Task QuicAndHttp3NameTheMissingLibmsquic()
    {
        Assert.False(Portico.Tls.Http2Module.QuicAvailable, "libmsquic is installed: this test expects the platform without it");
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port} quic;
                return 200;
            }
            """));
        Assert.Contains("[emerg] the \"quic\" parameter of the \"listen\" directive requires HTTP/3, which needs libmsquic: the library was not found on this system", ex.Message, StringComparison.Ordinal);

        ex = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                http3 on;
            }
            """));
        Assert.Contains("[emerg] the \"http3\" directive requires HTTP/3, which needs libmsquic", ex.Message, StringComparison.Ordinal);
    }
}
