using System.Net;
using Portico.IntegrationTests.Infrastructure;
using static Portico.IntegrationTests.RewriteTests;

namespace Portico.IntegrationTests;

/// <summary>"if": every condition of nginx's documentation, and the "if" block as a pseudo-location.</summary>
public class IfTests
{
    [Fact]
    public async Task Conditions()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /var { if ($arg_v) { return 200 "true\n"; } return 200 "false\n"; }
                location /eq { if ($arg_v = "a b") { return 200 "eq\n"; } if ($arg_v != x) { return 200 "ne\n"; } return 200 "x\n"; }
                location /eqvar { set $want "w"; if ($arg_v = ${want}1) { return 200 "match\n"; } return 200 "no\n"; }
                location /re { if ($http_user_agent ~ MSIE) { return 200 "msie\n"; } if ($http_user_agent ~* "opera") { return 200 "opera\n"; } return 200 "other\n"; }
                location /nre { if ($arg_v !~ ^[0-9]+$) { return 200 "not a number\n"; } if ($arg_v !~* ^1) { return 200 "number not starting with 1\n"; } return 200 "starts with 1\n"; }
                location /cookie { if ($http_cookie ~* "id=([^;]+)(?:;|$)") { set $id $1; } return 200 "id=[$id]\n"; }
                location /method { if ($request_method = POST) { return 405; } return 200 "ok\n"; }
            }
            """);

        Assert.Equal("false\n", (await GetAsync(p, "/var")).Body);
        Assert.Equal("false\n", (await GetAsync(p, "/var?v=")).Body);
        Assert.Equal("false\n", (await GetAsync(p, "/var?v=0")).Body);
        Assert.Equal("true\n", (await GetAsync(p, "/var?v=00")).Body);
        Assert.Equal("true\n", (await GetAsync(p, "/var?v=no")).Body);

        // Values are compared as they are: $arg_v is not decoded.
        Assert.Equal("ne\n", (await GetAsync(p, "/eq?v=a%20b")).Body);
        Assert.Equal("x\n", (await GetAsync(p, "/eq?v=x")).Body);
        Assert.Equal("match\n", (await GetAsync(p, "/eqvar?v=w1")).Body);
        Assert.Equal("no\n", (await GetAsync(p, "/eqvar?v=w")).Body);

        using (var msie = new HttpRequestMessage(HttpMethod.Get, "/re"))
        {
            msie.Headers.TryAddWithoutValidation("User-Agent", "Mozilla/4.0 (compatible; MSIE 6.0)");
            Assert.Equal("msie\n", await (await p.Client.SendAsync(msie)).Content.ReadAsStringAsync());
        }

        using (var opera = new HttpRequestMessage(HttpMethod.Get, "/re"))
        {
            opera.Headers.TryAddWithoutValidation("User-Agent", "OPERA/9");
            Assert.Equal("opera\n", await (await p.Client.SendAsync(opera)).Content.ReadAsStringAsync());
        }

        Assert.Equal("other\n", (await GetAsync(p, "/re")).Body);
        Assert.Equal("not a number\n", (await GetAsync(p, "/nre?v=x1")).Body);
        Assert.Equal("number not starting with 1\n", (await GetAsync(p, "/nre?v=21")).Body);
        Assert.Equal("starts with 1\n", (await GetAsync(p, "/nre?v=12")).Body);

        using (var cookie = new HttpRequestMessage(HttpMethod.Get, "/cookie"))
        {
            cookie.Headers.TryAddWithoutValidation("Cookie", "a=1; ID=42; b=2");
            Assert.Equal("id=[42]\n", await (await p.Client.SendAsync(cookie)).Content.ReadAsStringAsync());
        }

        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await p.Client.PostAsync("/method", new StringContent("x"))).StatusCode);
        Assert.Equal("ok\n", (await GetAsync(p, "/method")).Body);
    }

    [Fact]
    public async Task RegexConditionsSetCapturesAndAFailedOneClearsThem()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /c {
                    set $r "none";
                    if ($arg_b ~ ^(x+)(y*)$) { set $r "b:$1:$2"; }
                    if ($arg_c !~* ^Z) { set $r "${r}-notz"; }
                    return 200 "r=[$r] one=[$1]\n";
                }
                location /named { if ($arg_v ~ ^(?<word>[a-z]+)-(?<num>\d+)$) { return 200 "$word $num\n"; } return 200 "[$word]\n"; }
            }
            """);

        Assert.Equal("r=[b:xx:y-notz] one=[]\n", (await GetAsync(p, "/c?b=xxy")).Body);
        Assert.Equal("r=[none] one=[]\n", (await GetAsync(p, "/c?b=q&c=zoo")).Body);
        Assert.Equal("abc 12\n", (await GetAsync(p, "/named?v=abc-12")).Body);
        Assert.Equal("[]\n", (await GetAsync(p, "/named?v=ABC")).Body);
    }

    [Fact]
    public async Task FileTests()
    {
        using var dir = new TempDir();
        var file = dir.Write("html/file.txt", "x");
        var script = dir.Write("html/run.sh", "#!/bin/sh\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        }

        var root = dir.File("html");
        await using var p = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port};
                location /t/ {
                    set $path {{root}}/$arg_p;
                    if (-f $path) { return 200 "file\n"; }
                    if (-d $path) { return 200 "dir\n"; }
                    if (!-e $path) { return 200 "missing\n"; }
                    return 200 "other\n";
                }
                location /x/ {
                    set $path {{root}}/$arg_p;
                    if (-x $path) { return 200 "exec\n"; }
                    if (!-x $path) { return 200 "not exec\n"; }
                }
                location /n/ {
                    set $path {{root}}/$arg_p;
                    if (!-f $path) { return 200 "not a file\n"; }
                    if (!-d $path) { return 200 "not a dir\n"; }
                }
                location /e/ { if (-e {{root}}/$arg_p) { return 200 "exists\n"; } return 200 "absent\n"; }
            }
            """);

        Assert.Equal("file\n", (await GetAsync(p, "/t/?p=file.txt")).Body);
        Assert.Equal("dir\n", (await GetAsync(p, "/t/?p=")).Body);
        Assert.Equal("missing\n", (await GetAsync(p, "/t/?p=nothing")).Body);
        Assert.Equal("exec\n", (await GetAsync(p, "/x/?p=run.sh")).Body);
        Assert.Equal("not exec\n", (await GetAsync(p, "/x/?p=file.txt")).Body);
        Assert.Equal("not exec\n", (await GetAsync(p, "/x/?p=nothing")).Body);
        Assert.Equal("not a file\n", (await GetAsync(p, "/n/?p=")).Body);
        Assert.Equal("not a dir\n", (await GetAsync(p, "/n/?p=file.txt")).Body);
        Assert.Equal("exists\n", (await GetAsync(p, "/e/?p=file.txt")).Body);
        Assert.Equal("exists\n", (await GetAsync(p, "/e/?p=")).Body);
        Assert.Equal("absent\n", (await GetAsync(p, "/e/?p=none")).Body);
        Assert.True(File.Exists(file));
    }

    [Fact]
    public async Task ATrueIfBecomesTheRequestsConfiguration()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /show { return 200 "show args=[$args] status=[$status]\n"; }
                location /x {
                    if ($arg_a) { error_page 404 /show?from=a; }
                    if ($arg_b) { error_page 404 /show?from=b; }
                    return 404;
                }
            }
            """);

        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(p, "/x")).Status);
        Assert.Contains("<title>404 Not Found</title>", (await GetAsync(p, "/x")).Body);
        Assert.Equal("show args=[from=a] status=[404]\n", (await GetAsync(p, "/x?a=1")).Body);
        Assert.Equal("show args=[from=b] status=[404]\n", (await GetAsync(p, "/x?b=1")).Body);

        // Both true: the last one's configuration is the one used ("if is evil").
        var both = await GetAsync(p, "/x?a=1&b=1");
        Assert.Equal(HttpStatusCode.NotFound, both.Status);
        Assert.Equal("show args=[from=b] status=[404]\n", both.Body);
    }

    [Fact]
    public async Task TheBodyBelongsToTheEnclosingScript()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /show { return 200 "show uri=[$uri] args=[$args]\n"; }
                location /y {
                    if ($arg_a) { set $v "a"; }
                    set $w "after";
                    if ($arg_c) { return 200 "v=[$v] w=[$w]\n"; }
                    return 200 "end v=[$v]\n";
                }
                location /z {
                    if ($arg_to) { rewrite ^ /show?from=z last; }
                    return 200 "z\n";
                }
                set $srv "s0";
                if ($arg_srv) { set $srv "s1"; rewrite ^ /srv; }
                location /srv { return 200 "srv uri=[$uri] srv=[$srv]\n"; }
            }
            """);

        Assert.Equal("v=[a] w=[after]\n", (await GetAsync(p, "/y?a=1&c=1")).Body);
        Assert.Equal("end v=[a]\n", (await GetAsync(p, "/y?a=1")).Body);
        Assert.Equal("v=[] w=[after]\n", (await GetAsync(p, "/y?c=1")).Body);
        Assert.Equal("show uri=[/show] args=[from=z&to=1]\n", (await GetAsync(p, "/z?to=1")).Body);
        Assert.Equal("z\n", (await GetAsync(p, "/z")).Body);
        Assert.Equal("srv uri=[/srv] srv=[s1]\n", (await GetAsync(p, "/anything?srv=1")).Body);
        Assert.Equal("srv uri=[/srv] srv=[s0]\n", (await GetAsync(p, "/srv")).Body);
    }

    [Fact]
    public async Task RegexConditionsAreLoggedWithRewriteLog()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                rewrite_log on;
                location / { if ($uri ~ ^/yes) { return 204; } return 200; }
            }
            """);

        Assert.Equal(HttpStatusCode.NoContent, (await GetAsync(p, "/yes")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(p, "/no")).Status);
        var log = await LogContainingAsync(p, "does not match");
        Assert.Contains("[notice]", log);
        Assert.Contains("\"^/yes\" matches \"/yes\"", log);
        Assert.Contains("\"^/yes\" does not match \"/no\"", log);
    }
}
