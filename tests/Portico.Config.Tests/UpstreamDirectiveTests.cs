namespace Portico.Config.Tests;

/// <summary>Golden tests for upstream blocks and their directives: nginx's messages and positions.</summary>
public class UpstreamDirectiveTests
{
    private const string F = ConfigHarness.Main;

    private static string Upstream(string body) => ConfigHarness.Http("upstream u {\n" + body + "\n}");

    [Theory]
    [InlineData("server 127.0.0.1:1 weight=0;", "[emerg] invalid parameter \"weight=0\" in " + F + ":4")]
    [InlineData("server 127.0.0.1:1 max_fails=x;", "[emerg] invalid parameter \"max_fails=x\" in " + F + ":4")]
    [InlineData("server 127.0.0.1:1 fail_timeout=1x;", "[emerg] invalid parameter \"fail_timeout=1x\" in " + F + ":4")]
    [InlineData("server 127.0.0.1:1 bogus;", "[emerg] invalid parameter \"bogus\" in " + F + ":4")]
    [InlineData("ip_hash;\nserver 127.0.0.1:1 backup;", "[emerg] balancing method does not support parameter \"backup\" in " + F + ":5")]
    [InlineData("hash $uri;\nserver 127.0.0.1:1 backup;", "[emerg] balancing method does not support parameter \"backup\" in " + F + ":5")]
    [InlineData("hash $uri ketama;\nserver 127.0.0.1:1;", "[emerg] invalid parameter \"ketama\" in " + F + ":4")]
    [InlineData("random three;\nserver 127.0.0.1:1;", "[emerg] invalid parameter \"three\" in " + F + ":4")]
    [InlineData("least_time first_byte;\nserver 127.0.0.1:1;", "[emerg] invalid value \"first_byte\" in \"least_time\" directive in " + F + ":4")]
    [InlineData("server 127.0.0.1:1;\nkeepalive x;", "[emerg] invalid value \"x\" in \"keepalive\" directive in " + F + ":5")]
    [InlineData("server 127.0.0.1:1;\nkeepalive 8 global;", "[emerg] invalid parameter \"global\" in " + F + ":5")]
    [InlineData("server 127.0.0.1:1;\nkeepalive 8;\nkeepalive 9;", "[emerg] \"keepalive\" directive is duplicate in " + F + ":6")]
    [InlineData("server 127.0.0.1:1;\nqueue 10 timeout=x;", "[emerg] invalid parameter \"timeout=x\" in " + F + ":5")]
    [InlineData("server 127.0.0.1:1;\nresolver 127.0.0.1 ipv4=off ipv6=off;", "[emerg] \"ipv4\" and \"ipv6\" cannot both be \"off\" in " + F + ":5")]
    [InlineData("server 127.0.0.1:x;", "[emerg] invalid port in upstream \"127.0.0.1:x\" in " + F + ":4")]
    [InlineData("server unix:;", "[emerg] no path in the unix domain socket in upstream \"unix:\" in " + F + ":4")]
    [InlineData("", "[emerg] no servers are inside upstream in " + F + ":3")]
    public void ReportsNginxMessage(string body, string expected) =>
        Assert.Equal(expected, ConfigHarness.FirstError(Upstream(body)));

    [Fact]
    public void DuplicateUpstream() =>
        Assert.Equal("[emerg] duplicate upstream \"u\" in " + F + ":4",
            ConfigHarness.FirstError(ConfigHarness.Http("upstream u { server 127.0.0.1:1; }\nupstream u { server 127.0.0.1:2; }")));

    [Fact]
    public void RedefinedMethodWarns()
    {
        var result = ConfigHarness.Load(Upstream("least_conn;\nip_hash;\nserver 127.0.0.1:1;"));
        Assert.True(result.Success);
        Assert.Contains(result.Warnings, w => w.ToString() == "[warn] load balancing method redefined in " + F + ":5");
    }

    [Theory]
    [InlineData("proxy_next_upstream error bogus;", "[emerg] invalid value \"bogus\" in \"proxy_next_upstream\" directive in " + F + ":5")]
    [InlineData("proxy_next_upstream updating;", "[emerg] invalid value \"updating\" in \"proxy_next_upstream\" directive in " + F + ":5")]
    [InlineData("proxy_next_upstream_tries x;", "[emerg] \"proxy_next_upstream_tries\" directive invalid number in " + F + ":5")]
    [InlineData("proxy_next_upstream_timeout 1x;", "[emerg] \"proxy_next_upstream_timeout\" directive invalid value in " + F + ":5")]
    [InlineData("health_check interval=0;", "[emerg] invalid parameter \"interval=0\" in " + F + ":5")]
    [InlineData("health_check fails=x;", "[emerg] invalid parameter \"fails=x\" in " + F + ":5")]
    [InlineData("health_check persistent;", "[emerg] \"persistent\" requires \"mandatory\" in " + F + ":5")]
    [InlineData("health_check type=grpc;", "[emerg] invalid parameter \"type=grpc\" in " + F + ":5")]
    [InlineData("api write=maybe;", "[emerg] invalid parameter \"write=maybe\" in " + F + ":5")]
    public void LocationDirectives(string body, string expected) =>
        Assert.Equal(expected, ConfigHarness.FirstError(ConfigHarness.Http("server {\nlocation / {\n" + body + "\n}\n}")));

    [Fact]
    public void MatchBlockLines()
    {
        Assert.True(ConfigHarness.Load(ConfigHarness.Http("""
            match ok {
                status 200-399;
                status ! 301 302;
                header Content-Type = text/html;
                header ! X-Accel-Redirect;
                header X-Thing ~ "^a";
                body !~ "maintenance";
            }
            """)).Success);
        Assert.Equal("[emerg] unknown directive \"require\" in " + F + ":4",
            ConfigHarness.FirstError(ConfigHarness.Http("match ok {\nrequire $x;\n}")));
        Assert.Equal("[emerg] invalid parameter \"2000\" in " + F + ":4",
            ConfigHarness.FirstError(ConfigHarness.Http("match ok {\nstatus 2000;\n}")));
    }

    [Fact]
    public async Task HealthCheckNeedsAnUpstreamAndAKnownMatch()
    {
        Assert.Equal("[emerg] \"health_check\" requires \"proxy_pass\" to an upstream group in " + F + ":7",
            await CompileHarness.FirstErrorAsync(CompileHarness.Http("server {\nlocation / {\nproxy_pass http://127.0.0.1:1;\nhealth_check;\n}\n}")));
        Assert.Equal("[emerg] match \"nope\" not found in " + F + ":8",
            await CompileHarness.FirstErrorAsync(CompileHarness.Http("upstream u { server 127.0.0.1:1; }\nserver {\nlocation / {\nproxy_pass http://u;\nhealth_check match=nope;\n}\n}")));
        Assert.Equal("[emerg] host not found in upstream \"no-such-host.invalid:80\" in " + F + ":5",
            await CompileHarness.FirstErrorAsync(CompileHarness.Http("upstream u {\nserver no-such-host.invalid:80;\n}")));
    }
}
