using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;

namespace Portico.IntegrationTests.Upstreams;

/// <summary>A tiny authoritative DNS server on 127.0.0.1 (UDP) for one name, whose answer the test changes.</summary>
public sealed class TestDnsServer : IAsyncDisposable
{
    private readonly UdpClient _udp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private volatile IPAddress[] _addresses;
    private int _queries;

    public TestDnsServer(string name, uint ttl, params IPAddress[] addresses)
    {
        Name = name.TrimEnd('.');
        Ttl = ttl;
        _addresses = addresses;
        _udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        Port = ((IPEndPoint)_udp.Client.LocalEndPoint!).Port;
        _loop = Task.Run(LoopAsync);
    }

    public string Name { get; }
    public uint Ttl { get; }
    public int Port { get; }
    public int Queries => Volatile.Read(ref _queries);

    public void Answer(params IPAddress[] addresses) => _addresses = addresses;

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            UdpReceiveResult received;
            try
            {
                received = await _udp.ReceiveAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            Interlocked.Increment(ref _queries);
            var reply = Reply(received.Buffer);
            if (reply is not null)
            {
                await _udp.SendAsync(reply, received.RemoteEndPoint);
            }
        }
    }

    /// <summary>RFC 1035: the question echoed, A records for the name (NXDOMAIN for other names), nothing for AAAA.</summary>
    private byte[]? Reply(byte[] query)
    {
        if (query.Length < 12)
        {
            return null;
        }

        var pos = 12;
        var labels = new List<string>();
        while (pos < query.Length && query[pos] != 0)
        {
            var len = query[pos];
            labels.Add(System.Text.Encoding.ASCII.GetString(query, pos + 1, len));
            pos += len + 1;
        }

        pos++;
        var type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(pos));
        var questionEnd = pos + 4;
        var name = string.Join('.', labels);
        var known = name.Equals(Name, StringComparison.OrdinalIgnoreCase);
        var answers = known && type == 1 ? _addresses : [];
        var response = new List<byte>();
        response.AddRange(query.AsSpan(0, 2).ToArray());
        response.AddRange([0x84, (byte)(known ? 0x00 : 0x03)]);
        response.AddRange([0, 1]);
        response.AddRange([0, (byte)answers.Length, 0, 0, 0, 0]);
        response.AddRange(query.AsSpan(12, questionEnd - 12).ToArray());
        foreach (var a in answers)
        {
            response.AddRange([0xc0, 0x0c, 0, 1, 0, 1]);
            var ttl = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(ttl, Ttl);
            response.AddRange(ttl);
            response.AddRange([0, 4]);
            response.AddRange(a.GetAddressBytes());
        }

        return [.. response];
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _udp.Dispose();
        await _loop;
        _stop.Dispose();
    }
}

/// <summary>resolver and "server ... resolve": peers follow DNS without a reload.</summary>
public sealed class ResolverTests
{
    [Fact]
    public async Task PeersFollowTheRecordsOnTheirTtlWithoutReload()
    {
        var port = TestPorts.GetFree();
        await using var one = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.RespondAsync(200, "one", "Connection: close");
            }
        }, IPAddress.Parse("127.0.0.1"), port);
        await using var two = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.RespondAsync(200, "two", "Connection: close");
            }
        }, IPAddress.Parse("127.0.0.2"), port);
        await using var dns = new TestDnsServer("app.portico.test", 1, IPAddress.Parse("127.0.0.1"));
        await using var portico = await PorticoInstance.StartAsync(PorticoInstance.WrapHttp($$"""
            resolver 127.0.0.1:{{dns.Port}} ipv6=off;
            resolver_timeout 2s;
            upstream dynamic {
                zone dynamic 64k;
                server app.portico.test:{{port}} resolve;
            }
            server {
                listen 127.0.0.1:{port};
                location / { proxy_pass http://dynamic; }
            }
            """));
        await ProxyTest.WaitUntilAsync(async () => await (await portico.Client.GetAsync("/")).Content.ReadAsStringAsync() == "one", "first answer");
        dns.Answer(IPAddress.Parse("127.0.0.2"));
        await ProxyTest.WaitUntilAsync(async () => await (await portico.Client.GetAsync("/")).Content.ReadAsStringAsync() == "two", "second answer");
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("two", await portico.Client.GetStringAsync("/"));
        }

        Assert.True(dns.Queries >= 2);
    }

    [Fact]
    public async Task ResolveWithoutResolverIsAnError()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartAsync(PorticoInstance.WrapHttp("""
            upstream dynamic { server app.portico.test:80 resolve; }
            server { listen 127.0.0.1:{port}; location / { proxy_pass http://dynamic; } }
            """)));
        Assert.Contains("no resolver defined to resolve names at run time in upstream \"dynamic\"", e.Message, StringComparison.Ordinal);
    }
}
