using System.Net;
using System.Net.Sockets;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Foundation;

/// <summary>listen forms: IPv4, IPv6, unix sockets, options; several servers on one socket.</summary>
public class ListenTests
{
    [Fact]
    public async Task UnixSocketIpv6AndOptions()
    {
        using var sockDir = new TempDir();
        var sock = sockDir.File("portico.sock");
        var v6 = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port} backlog=64 reuseport so_keepalive=on;
                listen [::1]:{{v6}};
                listen unix:{{sock}};
                location / { return 200 "$server_addr $remote_addr\n"; }
            }
            """);

        Assert.Equal("127.0.0.1 127.0.0.1\n", await portico.Client.GetStringAsync("/"));

        using (var client = new HttpClient())
        {
            Assert.Equal("::1 ::1\n", await client.GetStringAsync($"http://[::1]:{v6}/"));
        }

        using var unixClient = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(sock), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        });
        Assert.Equal("unix:" + sock + " unix:\n", await unixClient.GetStringAsync("http://localhost/"));
    }

    [Fact]
    public async Task ReusePortLetsAnotherProcessShareTheSocket()
    {
        await using var portico = await PorticoInstance.StartHttpAsync("""
            server { listen 127.0.0.1:{port} reuseport; return 200 ok; }
            """);
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        other.SetRawSocketOption(1, 15, BitConverter.GetBytes(1)); // SO_REUSEPORT
        other.Bind(new IPEndPoint(IPAddress.Loopback, portico.Port));
        other.Listen();
    }

    [Fact]
    public async Task SeveralServersShareOneSocketByName()
    {
        await using var portico = await PorticoInstance.StartHttpAsync("""
            server { listen 127.0.0.1:{port}; server_name a.test; return 200 a; }
            server { listen 127.0.0.1:{port} default_server; server_name b.test; return 200 b; }
            """);
        Assert.Single(portico.Host.ListenerKeys);
        Assert.Equal("a", await Get(portico, "a.test"));
        Assert.Equal("b", await Get(portico, "b.test"));
        Assert.Equal("b", await Get(portico, "other.test"));
    }

    private static async Task<string> Get(PorticoInstance portico, string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Host = host;
        var response = await portico.Client.SendAsync(request);
        return await response.Content.ReadAsStringAsync();
    }
}
