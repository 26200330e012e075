using System.Net;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Static;

/// <summary>add_header and expires: statuses, "always", inheritance, every content source.</summary>
public class HeadersTests
{
    [Fact]
    public async Task AppliesToStaticReturnRedirectsAndErrorPages()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                add_header X-Frame-Options DENY;
                add_header X-Request-Seen yes always;
                location = /ret { return 200 "ok"; }
                location = /moved { return 301 /elsewhere; }
                location = /teapot { return 418; }
            }
            """);
        p.Dir.Write("html/a.txt", "a");
        async Task<(HttpStatusCode, string?, string?)> Get(string uri)
        {
            using var r = await p.Client.GetAsync(uri);
            return (r.StatusCode,
                r.Headers.TryGetValues("X-Frame-Options", out var f) ? string.Join("|", f) : null,
                r.Headers.TryGetValues("X-Request-Seen", out var s) ? string.Join("|", s) : null);
        }

        Assert.Equal((HttpStatusCode.OK, "DENY", "yes"), await Get("/a.txt"));
        Assert.Equal((HttpStatusCode.OK, "DENY", "yes"), await Get("/ret"));
        Assert.Equal((HttpStatusCode.MovedPermanently, "DENY", "yes"), await Get("/moved"));
        Assert.Equal((HttpStatusCode.NotFound, null, "yes"), await Get("/missing"));
        Assert.Equal(((HttpStatusCode)418, null, "yes"), await Get("/teapot"));
    }

    [Fact]
    public async Task ALevelWithItsOwnAddHeaderReplacesTheInheritedOnes()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            add_header X-Http h;
            server {
                listen 127.0.0.1:{port};
                location /own/ { add_header X-Own o; return 200; }
                location /inherit/ { return 200; }
            }
            """);
        using var own = await p.Client.GetAsync("/own/");
        Assert.False(own.Headers.Contains("X-Http"));
        Assert.Equal("o", own.Headers.GetValues("X-Own").Single());
        using var inherit = await p.Client.GetAsync("/inherit/");
        Assert.Equal("h", inherit.Headers.GetValues("X-Http").Single());
    }

    [Fact]
    public async Task SeedImmutableAssets()
    {
        // The seed: expires 1y; add_header Cache-Control "public, immutable";
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                location /assets/ { expires 1y; add_header Cache-Control "public, immutable"; }
            }
            """);
        p.Dir.Write("html/assets/app.js", "x");
        var raw = await p.RawAsync("GET /assets/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.Contains("\r\nCache-Control: max-age=31536000\r\nCache-Control: public, immutable\r\n", raw);
        using var r = await p.Client.GetAsync("/assets/app.js");
        var date = r.Headers.Date!.Value;
        Assert.Equal(date.AddSeconds(31536000), r.Content.Headers.Expires);
    }

    [Fact]
    public async Task ExpiresVariantsAndEtagRemoval()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                location /epoch/ { alias {prefix}/html/; expires epoch; }
                location /max/ { alias {prefix}/html/; expires max; }
                location /neg/ { alias {prefix}/html/; expires -1; }
                location /zero/ { alias {prefix}/html/; expires 0; }
                location /mod/ { alias {prefix}/html/; expires modified 1d; }
                location /var/ { alias {prefix}/html/; expires $arg_e; }
                location /noetag/ { alias {prefix}/html/; add_header ETag ""; }
                location /err/ { expires 1h; return 404; }
            }
            """);
        var path = p.Dir.Write("html/a.txt", "a");
        File.SetLastWriteTimeUtc(path, new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc));
        async Task<(string? Expires, string? CacheControl, DateTimeOffset? Date)> Get(string uri)
        {
            using var r = await p.Client.GetAsync(uri);
            return (r.Content.Headers.TryGetValues("Expires", out var e) ? e.Single() : null,
                r.Headers.TryGetValues("Cache-Control", out var c) ? string.Join("|", c) : null,
                r.Headers.Date);
        }

        Assert.Equal(("Thu, 01 Jan 1970 00:00:01 GMT", "no-cache"), Pair(await Get("/epoch/a.txt")));
        Assert.Equal(("Thu, 31 Dec 2037 23:55:55 GMT", "max-age=315360000"), Pair(await Get("/max/a.txt")));
        var neg = await Get("/neg/a.txt");
        Assert.Equal("no-cache", neg.CacheControl);
        Assert.Equal(neg.Date!.Value.AddSeconds(-1).ToString("r"), neg.Expires);
        var zero = await Get("/zero/a.txt");
        Assert.Equal("max-age=0", zero.CacheControl);
        Assert.Equal(zero.Date!.Value.ToString("r"), zero.Expires);
        Assert.Equal(("Fri, 03 Jan 2020 03:04:05 GMT", "no-cache"), Pair(await Get("/mod/a.txt")));
        var variable = await Get("/var/a.txt?e=2h");
        Assert.Equal("max-age=7200", variable.CacheControl);
        Assert.Equal((null, null), Pair(await Get("/var/a.txt?e=off")));
        Assert.Equal((null, null), Pair(await Get("/var/a.txt?e=bogus")));
        Assert.Equal((null, null), Pair(await Get("/err/")));

        using var noEtag = await p.Client.GetAsync("/noetag/a.txt");
        Assert.Null(noEtag.Headers.ETag);
    }

    private static (string?, string?) Pair((string? E, string? C, DateTimeOffset? D) x) => (x.E, x.C);
}
