using System.Net;
using Portico.Upstreams;

namespace Portico.Tests.Upstreams;

public class UpstreamTests
{
    [Theory]
    [InlineData(UpstreamFailure.Error, 502)]
    [InlineData(UpstreamFailure.InvalidHeader, 502)]
    [InlineData(UpstreamFailure.Timeout, 504)]
    [InlineData(UpstreamFailure.Http504, 504)]
    [InlineData(UpstreamFailure.Http500, 500)]
    [InlineData(UpstreamFailure.Http503, 503)]
    [InlineData(UpstreamFailure.Http404, 404)]
    [InlineData(UpstreamFailure.Error | UpstreamFailure.NonIdempotent, 502)]
    public void ClientStatusOfTheLastFailure(UpstreamFailure failure, int status) =>
        Assert.Equal(status, UpstreamFailures.ClientStatus(failure));

    [Fact]
    public void NextUpstreamPolicy()
    {
        var policy = UpstreamFailures.DefaultNextUpstream;
        Assert.True(UpstreamFailures.AllowsNext(policy, UpstreamFailure.Error));
        Assert.True(UpstreamFailures.AllowsNext(policy, UpstreamFailure.Timeout));
        Assert.False(UpstreamFailures.AllowsNext(policy, UpstreamFailure.Http502));
        Assert.False(UpstreamFailures.AllowsNext(policy, UpstreamFailure.Error | UpstreamFailure.NonIdempotent));
        Assert.True(UpstreamFailures.AllowsNext(policy | UpstreamFailure.NonIdempotent, UpstreamFailure.Error | UpstreamFailure.NonIdempotent));
        Assert.False(UpstreamFailures.AllowsNext(UpstreamFailure.Off, UpstreamFailure.Error));
        Assert.True(UpstreamFailures.TryParse("http_429", out var f) && f == UpstreamFailure.Http429);
        Assert.False(UpstreamFailures.TryParse("http_418", out _));
    }

    private static UpstreamPeer Peer(string ip, int port) =>
        new(new IPEndPoint(IPAddress.Parse(ip), port), UpstreamPeer.NameOf(new IPEndPoint(IPAddress.Parse(ip), port)), new PeerState());

    [Fact]
    public void RoundRobinIteratorsNeverRepeatAPeerAndRotateTheStart()
    {
        var peers = new[] { Peer("10.0.0.1", 80), Peer("10.0.0.2", 80), Peer("10.0.0.3", 80) };
        var balancer = new RoundRobinBalancer(peers);
        for (var request = 0; request < 4; request++)
        {
            var it = balancer.Begin(null!);
            var seen = new List<string>();
            while (it.TryNext(out var p))
            {
                seen.Add(p.Name);
                it.Report(p, UpstreamFailure.Http404);
            }

            Assert.Equal(3, seen.Distinct().Count());
            // Retries continue the cycle after the request's own pick: each request takes one position of it.
            Assert.Equal(peers[request % 3].Name, seen[0]);
            Assert.Equal(0, it.Remaining);
        }

        Assert.All(peers, p => Assert.Equal(0, p.State.Active));
        Assert.All(peers, p => Assert.Equal(4, p.State.Requests));
    }

    [Fact]
    public void PeerNames()
    {
        Assert.Equal("[::1]:8080", UpstreamPeer.NameOf(new IPEndPoint(IPAddress.IPv6Loopback, 8080)));
        Assert.Equal("unix:/run/x.sock", UpstreamPeer.NameOf(new System.Net.Sockets.UnixDomainSocketEndPoint("/run/x.sock")));
    }

    [Fact]
    public void StateVariablesFormatLikeNginx()
    {
        var states = new UpstreamStates();
        states.Add("a:1").Status = 502;
        var b = states.Add("b:1");
        b.Status = 200;
        b.ResponseTime = 1234;
        states.BeginExchange();
        states.Add("c:1").Status = 404;
        Assert.Equal("a:1, b:1 : c:1", states.Format(s => s.Peer ?? string.Empty));
        Assert.Equal("502, 200 : 404", states.Format(s => s.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal("-, 1.234 : -", states.Format(s => UpstreamStates.Milliseconds(s.ResponseTime)));
    }

    [Fact]
    public void UpstreamHeaderVariables()
    {
        KeyValuePair<string, string>[] headers = [new("X-Thing", "1"), new("x-thing", "2"), new("Set-Cookie", "sid=abc; Path=/"), new("Set-Cookie", "other=x")];
        Assert.Equal("1, 2", UpstreamStates.Header(headers, "x_thing"));
        Assert.Null(UpstreamStates.Header(headers, "x_missing"));
        Assert.Equal("abc", UpstreamStates.SetCookie(headers, "sid"));
        Assert.Equal("x", UpstreamStates.SetCookie(headers, "other"));
    }

    [Fact]
    public void ResolvingAnAddressLiteralNeedsNoResolver()
    {
        Assert.Equal([IPAddress.Parse("127.0.0.1")], UpstreamRegistry.ResolveHost("127.0.0.1"));
        Assert.Equal([IPAddress.IPv6Loopback], UpstreamRegistry.ResolveHost("[::1]"));
        Assert.Null(UpstreamRegistry.ResolveHost("no-such-host.invalid"));
    }
}
