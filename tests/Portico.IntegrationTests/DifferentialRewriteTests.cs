using System.Text;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests;

/// <summary>
/// One configuration on nginx and on Portico, the same raw requests to both: status code, Location,
/// Content-Type and body must agree (the product name in default pages aside).
/// </summary>
public class DifferentialRewriteTests
{
    /// <summary>What is compared of a response.</summary>
    private sealed record Seen(string Status, string? Location, string? ContentType, string Extra, string Body)
    {
        public static Seen Parse(string raw, int port)
        {
            var end = raw.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0)
            {
                return new Seen(raw.Length == 0 ? "closed" : "partial", null, null, string.Empty, string.Empty);
            }

            var lines = raw[..end].Split("\r\n");
            string? location = null, type = null;
            var extra = new StringBuilder();
            foreach (var line in lines[1..])
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                var name = line[..colon];
                var value = line[(colon + 1)..].Trim();
                if (name.Equals("Location", StringComparison.OrdinalIgnoreCase))
                {
                    location = value.Replace(":" + port.ToString(System.Globalization.CultureInfo.InvariantCulture), ":{port}", StringComparison.Ordinal);
                }
                else if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                {
                    type = value;
                }
                else if (name.StartsWith("X-", StringComparison.OrdinalIgnoreCase))
                {
                    extra.Append(name).Append(": ").Append(value).Append("; ");
                }
            }

            var body = raw[(end + 4)..]
                .Replace("nginx/1.22.1", "PRODUCT", StringComparison.Ordinal)
                .Replace("portico/" + Portico.Pipeline.Product.Version, "PRODUCT", StringComparison.Ordinal)
                .Replace("<center>nginx</center>", "<center>PRODUCT</center>", StringComparison.Ordinal)
                .Replace("<center>portico</center>", "<center>PRODUCT</center>", StringComparison.Ordinal);

            // The status code only: reason phrases nginx leaves empty (418 ...) differ from Kestrel's.
            return new Seen(lines[0].Split(' ')[1], location, type, extra.ToString(), body);
        }
    }

    private static async Task CompareAsync(string config, IEnumerable<string> requests)
    {
        await using var nginx = await NginxReference.StartHttpAsync(config, string.Empty);
        await using var portico = await PorticoInstance.StartHttpAsync(config);
        var differences = new StringBuilder();
        foreach (var request in requests)
        {
            var expected = Seen.Parse(await RawHttp.SendAsync(nginx.Port, request), nginx.Port);
            var actual = Seen.Parse(await portico.RawAsync(request), portico.Port);
            if (expected != actual)
            {
                differences.Append(request.Split("\r\n")[0]).Append('\n')
                    .Append("  nginx:   ").Append(expected).Append('\n')
                    .Append("  portico: ").Append(actual).Append('\n');
            }
        }

        Assert.True(differences.Length == 0, differences.ToString());
    }

    private static string Get(string target, string headers = "") =>
        $"GET {target} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n";

    [Fact]
    public async Task DefaultPages()
    {
        // 407 is left out: nginx 1.22 has no page for it, current nginx (and Portico) do.
        int[] codes = [301, 302, 303, 307, 308, 400, 401, 402, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416,
            421, 429, 494, 495, 496, 497, 498, 500, 501, 502, 503, 504, 505, 507, 418, 506, 599, 300, 304, 201, 204];
        var locations = new StringBuilder();
        foreach (var c in codes)
        {
            locations.Append($"location = /{c} {{ return {c}; }}\nlocation = /off/{c} {{ server_tokens off; return {c}; }}\n");
        }

        string[] agents =
        [
            string.Empty,
            "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\n",
            "User-Agent: Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n",
        ];
        var requests = new List<string>();
        foreach (var c in codes)
        {
            foreach (var agent in agents)
            {
                requests.Add(Get($"/{c}", agent));
                requests.Add(Get($"/off/{c}", agent));
            }
        }

        requests.Add("HEAD /404 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        await CompareAsync($"server {{ listen 127.0.0.1:{{port}}; server_name localhost;\n{locations}}}", requests);
    }

    [Fact]
    public async Task RewriteSetIfAndMap()
    {
        const string Config = """
            map $http_host $name { hostnames; default 0; example.com 1; *.example.com 2; .example.net 3; wap.* 4; }
            map $arg_ua $mobile { default 0; "~Opera Mini" 1; ~*(iphone|android) "m:$1"; \default literal; "" empty; }
            server {
                listen 127.0.0.1:{port};
                server_name localhost;
                location /show { return 200 "uri=[$uri] args=[$args] request=[$request_uri] status=[$status]\n"; }
                location ~ ^/cap/(.*)$ { set $x $1; return 200 "set=[$x] return=[$1]\n"; }
                location /rw/ { rewrite ^/rw/(.*)$ /show?u=$1 last; }
                location /rw2/ { rewrite ^/rw2/(.*)$ /show?u=$1? last; }
                location /rw3/ { rewrite ^/rw3/(.*)$ /show last; }
                location /rw4/ { rewrite ^/rw4/(.*)$ /show? last; }
                location /rd/ { rewrite ^/rd/(.*)$ http://example.com/$1?z=1; }
                location /rd2/ { rewrite ^/rd2/(.*)$ /new/$1 permanent; }
                location /rd3/ { rewrite ^/rd3/(.*)$ /new/$1? redirect; }
                location /loop { rewrite ^ /loop last; }
                location /ifs { if ($arg_a) { return 200 "a\n"; } if ($arg_b = "x") { return 200 "b\n"; } return 200 "none\n"; }
                location /if2 {
                    set $r "none";
                    if ($arg_b ~ ^(x+)(y*)$) { set $r "b:$1:$2"; }
                    if ($arg_c !~* ^Z) { set $r "${r}-notz"; }
                    return 200 "r=[$r] one=[$1]\n";
                }
                location /x {
                    if ($arg_a) { error_page 404 /show?from=a; }
                    if ($arg_b) { error_page 404 /show?from=b; }
                    return 404;
                }
                location /map { return 200 "name=[$name] mobile=[$mobile] one=[$1]\n"; }
                location /status { return 202 "[$status]"; }
                location /r302 { return 302; }
                location /m { msie_refresh on; return 301 "/a b\"<>'"; }
                location /evil { set $true 1; if ($true) { add_header X-First 1; } if ($true) { add_header X-Second 2; } return 204; }
                location /evil2 { add_header X-Outer 1; if ($arg_a) { add_header X-Inner 1; } return 200 "evil2\n"; }
            }
            """;
        string[] targets =
        [
            "/cap/a%20b", "/cap/a+b", "/rw/a%20b?q=1", "/rw/a+b?q=1", "/rw2/x?q=1", "/rw3/x?q=1", "/rw4/x?q=1",
            "/rd/a%20b?q=1", "/rd/a?q=1", "/rd2/x?q=1", "/rd3/x?q=1", "/loop", "/ifs?a=0", "/ifs?a=1", "/ifs?b=x",
            "/if2?b=xxy", "/if2?b=q&c=zoo", "/if2?c=a", "/x", "/x?a=1", "/x?b=1", "/x?a=1&b=1",
            "/map?ua=Opera%20Mini", "/map?ua=IPHONE5", "/map?ua=default", "/map?ua=", "/status", "/r302", "/m",
            "/evil", "/evil2", "/evil2?a=1",
        ];
        var requests = targets.Select(t => Get(t)).ToList();
        foreach (var host in (string[])["example.com", "www.example.com", "example.net", "x.example.net", "wap.foo.bar", "EXAMPLE.COM", "other.org"])
        {
            requests.Add($"GET /map HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        }

        requests.Add(Get("/m", "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\n"));
        await CompareAsync(Config, requests);
    }

    [Fact]
    public async Task ErrorPages()
    {
        const string Config = """
            server {
                listen 127.0.0.1:{port};
                server_name localhost;
                error_page 404 /show;
                location /show { return 200 "show uri=[$uri] args=[$args] method=[$request_method] status=[$status]\n"; }
                location @named { return 200 "named uri=[$uri] args=[$args] method=[$request_method] status=[$status]\n"; }
                location /a { return 404; }
                location /b { error_page 404 = /show; return 404; }
                location /c { error_page 404 =200 /show?x=1; return 404; }
                location /d { error_page 404 @named; return 404; }
                location /e { error_page 404 http://example.com/e; return 404; }
                location /f { error_page 404 =301 http://example.com/f; return 404; }
                location /g { error_page 404 /missing; return 404; }
                location /h { error_page 404 /missing2; recursive_error_pages on; return 404; }
                location /missing2 { error_page 404 /show; return 404; }
                location /i { error_page 500 /show; rewrite ^ /i last; }
                location /j { error_page 404 =418 @named; return 404; }
                location /k { error_page 403 /show; return 404; }
                location /l { error_page 404 @nonexistent; return 404; }
                location /m { error_page 404 /$arg_t; return 404; }
                location /o { internal; return 200 "internal\n"; }
                location /p { error_page 404 /o; return 404; }
                location /u { error_page 404 /u2; recursive_error_pages on; return 404; }
                location /u2 { error_page 404 /u; recursive_error_pages on; return 404; }
                location /v { error_page 404 @v; recursive_error_pages on; return 404; }
                location @v { error_page 404 @v; recursive_error_pages on; return 404; }
                location /w { error_page 408 /show; return 408; }
            }
            """;
        var requests = new List<string>();
        foreach (var t in (string[])["/a?q=1", "/b?q=1", "/c?q=1", "/d?q=1", "/e", "/f", "/g", "/h", "/i", "/j", "/k", "/l", "/m?t=show%3Fz=2", "/o", "/p", "/u", "/v", "/w", "/zzz"])
        {
            requests.Add(Get(t));
            requests.Add($"POST {t} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        }

        requests.Add("HEAD /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        await CompareAsync(Config, requests);
    }
}
