using System.Net;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>proxy_pass together with rewrite, if, error_page, add_header, access_log and HTTP/2 clients.</summary>
public sealed class ProxyWithOtherModulesTests
{
    private static RawOrigin StatusOrigin() => RawOrigin.Start(async c =>
    {
        if (await c.ReadHeadAsync() is { } req)
        {
            var status = req.Target.Contains("/404", StringComparison.Ordinal) ? 404
                : req.Target.Contains("/500", StringComparison.Ordinal) ? 500
                : req.Target.Contains("/401", StringComparison.Ordinal) ? 401 : 200;
            await c.RespondAsync(status, $"origin {status} {req.Target}", "WWW-Authenticate: Basic realm=\"x\"", "X-Origin: yes");
        }
    });

    [Fact]
    public async Task InterceptErrors_HandsNamedStatusesToErrorPage()
    {
        await using var origin = StatusOrigin();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location /on/ { proxy_pass http://{{origin.Address}}; proxy_intercept_errors on; error_page 404 401 /err; }
            location /off/ { proxy_pass http://{{origin.Address}}; error_page 404 /err; }
            location = /err { return 200 "custom page"; }
            """));
        var intercepted = await ProxyTest.RawAsync(portico, "GET /on/404 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 404", intercepted, StringComparison.Ordinal);
        Assert.EndsWith("custom page", intercepted, StringComparison.Ordinal);

        var unauthorized = await ProxyTest.RawAsync(portico, "GET /on/401 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 401", unauthorized, StringComparison.Ordinal);
        Assert.Contains("WWW-Authenticate: Basic realm=\"x\"", unauthorized, StringComparison.Ordinal);
        Assert.EndsWith("custom page", unauthorized, StringComparison.Ordinal);

        // A status no error_page names passes through, as does everything with intercept off.
        var notNamed = await ProxyTest.RawAsync(portico, "GET /on/500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 500", notNamed, StringComparison.Ordinal);
        Assert.EndsWith("origin 500 /on/500", notNamed, StringComparison.Ordinal);
        var off = await ProxyTest.RawAsync(portico, "GET /off/404 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.EndsWith("origin 404 /off/404", off, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ErrorPageForProxyFailures()
    {
        var port = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location / { proxy_pass http://127.0.0.1:{{port}}; error_page 502 504 = @down; }
            location @down { return 200 "maintenance"; }
            """));
        var response = await ProxyTest.RawAsync(portico, "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.EndsWith("maintenance", response, StringComparison.Ordinal);
    }

    [Theory]
    // rewrite ... break inside the proxied location: the URI part of proxy_pass is ignored, the changed URI is sent.
    [InlineData("location /r/ { rewrite ^/r/(.*)$ /changed/$1 break; proxy_pass http://ORIGIN/base/; }", "/r/x%20y", "/changed/x%20y")]
    [InlineData("location /r/ { rewrite ^ /p?a=1 break; proxy_pass http://ORIGIN; }", "/r/x?old=1", "/p?a=1&old=1")]
    [InlineData("location /r/ { rewrite ^ /p?a=1? break; proxy_pass http://ORIGIN; }", "/r/x?old=1", "/p?a=1")]
    [InlineData("location /r/ { rewrite ^/r/(.*)$ /z/$1 break; proxy_pass http://ORIGIN; }", "/r/deep", "/z/deep")]
    // rewrite ... last finds the new location, whose URI part applies.
    [InlineData("location /old/ { rewrite ^/old/(.*)$ /new/$1 last; } location /new/ { proxy_pass http://ORIGIN/base/; }", "/old/x?q", "/base/x?q")]
    // An internal redirect (error_page) passes the URI as it is then, escaped (nginx 1.22 sends the same).
    [InlineData("location /e/ { error_page 418 = /target/a%20b; return 418; } location /target/ { proxy_pass http://ORIGIN; }", "/e/", "/target/a%2520b")]
    // A named location (error_page = @name): the request target as received (nginx 1.22 sends the same).
    [InlineData("location /n/ { error_page 418 = @named; return 418; } location @named { proxy_pass http://ORIGIN; }", "/n/a%20b?q=1", "/n/a%20b?q=1")]
    public async Task AfterRewrites(string locations, string requested, string expected)
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server(locations.Replace("ORIGIN", origin.Address, StringComparison.Ordinal)));
        var response = await ProxyTest.RawAsync(portico, $"GET {requested} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.True(origin.Requests.TryDequeue(out var seen), response + await portico.ReadErrorLogAsync());
        Assert.Equal(expected, seen!.Target);
    }

    [Fact]
    public async Task ProxyPassInIfBlocks()
    {
        await using var one = RawOrigin.Start();
        await using var two = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location / {
                if ($http_x_alt) { proxy_pass http://{{two.Address}}; }
                proxy_pass http://{{one.Address}};
            }
            location /inherit/ {
                proxy_pass http://{{one.Address}};
                proxy_set_header X-If $flag;
                if ($arg_flag) { set $flag yes; }
            }
            """));
        await ProxyTest.RawAsync(portico, "GET /a HTTP/1.1\r\nHost: t\r\nX-Alt: 1\r\nConnection: close\r\n\r\n");
        await ProxyTest.RawAsync(portico, "GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.True(two.Requests.TryDequeue(out var alt));
        Assert.Equal("/a", alt!.Target);
        Assert.True(one.Requests.TryDequeue(out var plain));
        Assert.Equal("/b", plain!.Target);

        // An "if" without proxy_pass uses its location's.
        await ProxyTest.RawAsync(portico, "GET /inherit/x?flag=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.True(one.Requests.TryDequeue(out var inherited));
        Assert.Equal("/inherit/x?flag=1", inherited!.Target);
        Assert.Equal("yes", inherited.Header("X-If"));
    }

    [Fact]
    public async Task AddHeaderAppliesToProxiedResponses()
    {
        await using var origin = StatusOrigin();
        var down = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            add_header X-Added yes;
            add_header X-Always on always;
            location / { proxy_pass http://{{origin.Address}}; }
            location /down/ { proxy_pass http://127.0.0.1:{{down}}; }
            """));
        var ok = await ProxyTest.RawAsync(portico, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.Contains("X-Added: yes", ok, StringComparison.Ordinal);
        Assert.Contains("X-Always: on", ok, StringComparison.Ordinal);
        Assert.Contains("X-Origin: yes", ok, StringComparison.Ordinal);
        var failed = await ProxyTest.RawAsync(portico, "GET /down/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502", failed, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Added", failed, StringComparison.Ordinal);
        Assert.Contains("X-Always: on", failed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AccessLogCarriesTheUpstreamVariables()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.ReadBodyAsync();
                await c.WriteAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App: v1\r\nSet-Cookie: s=9\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 42\r\n\r\n");
            }
        });
        var down = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            location / { proxy_pass http://{{origin.Address}}; proxy_http_version 1.1; }
            location /down/ { proxy_pass http://127.0.0.1:{{down}}; }
            access_log {prefix}/logs/up.log up;
            """, """
            log_format up '$status|$upstream_addr|$upstream_status|$upstream_http_x_app|$upstream_cookie_s|$upstream_trailer_x_sum|$request_body|$upstream_bytes_received|$upstream_response_length|$upstream_connect_time|$upstream_header_time|$upstream_response_time';
            """));
        await ProxyTest.RawAsync(portico, "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        await ProxyTest.RawAsync(portico, "GET /down/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        var path = portico.Dir.File("logs/up.log");
        await ProxyTest.WaitUntilAsync(() => File.Exists(path) && File.ReadAllLines(path).Length >= 2, "two access log lines");
        var lines = await File.ReadAllLinesAsync(path);
        var ok = lines[0].Split('|');
        Assert.Equal("200", ok[0]);
        Assert.Equal(origin.Address, ok[1]);
        Assert.Equal("200", ok[2]);
        Assert.Equal("v1", ok[3]);
        Assert.Equal("9", ok[4]);
        Assert.Equal("42", ok[5]);
        Assert.Equal("hello", ok[6]);
        Assert.True(long.Parse(ok[7], System.Globalization.CultureInfo.InvariantCulture) > 20);
        Assert.Equal("2", ok[8]);
        Assert.Matches(@"^\d+\.\d{3}$", ok[9]);
        Assert.Matches(@"^\d+\.\d{3}$", ok[10]);
        Assert.Matches(@"^\d+\.\d{3}$", ok[11]);

        var failed = lines[1].Split('|');
        Assert.Equal("502", failed[0]);
        Assert.Equal($"127.0.0.1:{down}", failed[1]);
        Assert.Equal("502", failed[2]);
        Assert.Equal("-", failed[3]);
        Assert.Equal("-", failed[10]);
    }

    [Fact]
    public async Task TrailersReachHttp2Clients()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.WriteAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port};
                http2 on;
                location /on/ { proxy_pass http://{{origin.Address}}; proxy_http_version 1.1; proxy_pass_trailers on; }
                location /off/ { proxy_pass http://{{origin.Address}}; proxy_http_version 1.1; }
            }
            """);
        using var client = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var on = await client.GetAsync($"http://127.0.0.1:{portico.Port}/on/");
        Assert.Equal("hello", await on.Content.ReadAsStringAsync());
        Assert.Equal(HttpVersion.Version20, on.Version);
        Assert.True(on.TrailingHeaders.TryGetValues("X-Sum", out var sum));
        Assert.Equal("42", Assert.Single(sum));

        using var off = await client.GetAsync($"http://127.0.0.1:{portico.Port}/off/");
        Assert.Equal("hello", await off.Content.ReadAsStringAsync());
        Assert.False(off.TrailingHeaders.Contains("X-Sum"));
    }
}
