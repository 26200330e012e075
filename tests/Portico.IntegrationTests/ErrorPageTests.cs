using System.Net;
using Portico.IntegrationTests.Infrastructure;
using static Portico.IntegrationTests.RewriteTests;

namespace Portico.IntegrationTests;

/// <summary>error_page, recursive_error_pages and internal, as nginx's documentation describes them.</summary>
public class ErrorPageTests
{
    private const string Server = """
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
            location /k { error_page 403 /show?k; return 404; }
            location /l { error_page 404 @nonexistent; return 404; }
            location /m { error_page 404 /$arg_t; return 404; }
            location /n { error_page 404 /loop; return 404; }
            location /loop { error_page 404 /loop; recursive_error_pages on; return 404; }
            location /o { internal; return 200 "internal uri=[$uri]\n"; }
            location /p { error_page 404 /o; return 404; }
            location /q { error_page 502 503 504 =200 /show?q; return 503; }
            location /r { error_page 404 = @named; return 404; }
            location /s { error_page 404 /cycle; recursive_error_pages on; return 404; }
            location /cycle { error_page 404 /cycle2; recursive_error_pages on; return 404; }
            location /cycle2 { recursive_error_pages on; rewrite ^ /cycle last; }
            location /u { error_page 404 /u2; recursive_error_pages on; return 404; }
            location /u2 { error_page 404 /u; recursive_error_pages on; return 404; }
            location /v { error_page 404 @v; recursive_error_pages on; return 404; }
            location @v { error_page 404 @v; recursive_error_pages on; return 404; }
        }
        """;

    [Fact]
    public async Task RedirectsToAUriAsGetWithTheOriginalStatus()
    {
        await using var p = await PorticoInstance.StartHttpAsync(Server);

        var post = await p.Client.PostAsync("/a?q=1", new StringContent("body"));
        Assert.Equal(HttpStatusCode.NotFound, post.StatusCode);
        Assert.Equal("show uri=[/show] args=[] method=[GET] status=[404]\n", await post.Content.ReadAsStringAsync());

        // HEAD stays HEAD.
        using var head = new HttpRequestMessage(HttpMethod.Head, "/a");
        var headResponse = await p.Client.SendAsync(head);
        Assert.Equal(HttpStatusCode.NotFound, headResponse.StatusCode);
        Assert.Equal("text/plain", headResponse.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task EqualsSignsChangeTheStatus()
    {
        await using var p = await PorticoInstance.StartHttpAsync(Server);

        var b = await GetAsync(p, "/b?q=1");
        Assert.Equal(HttpStatusCode.OK, b.Status);
        Assert.Equal("show uri=[/show] args=[] method=[GET] status=[200]\n", b.Body);

        var c = await GetAsync(p, "/c?q=1");
        Assert.Equal(HttpStatusCode.OK, c.Status);
        Assert.Equal("show uri=[/show] args=[x=1] method=[GET] status=[200]\n", c.Body);

        var q = await GetAsync(p, "/q");
        Assert.Equal(HttpStatusCode.OK, q.Status);
        Assert.Equal("show uri=[/show] args=[q] method=[GET] status=[200]\n", q.Body);
    }

    [Fact]
    public async Task NamedLocationsKeepTheMethodAndTheUri()
    {
        await using var p = await PorticoInstance.StartHttpAsync(Server);

        var d = await p.Client.PostAsync("/d?q=1", new StringContent("x"));
        Assert.Equal(HttpStatusCode.NotFound, d.StatusCode);
        Assert.Equal("named uri=[/d] args=[q=1] method=[POST] status=[404]\n", await d.Content.ReadAsStringAsync());

        var j = await GetAsync(p, "/j");
        Assert.Equal((HttpStatusCode)418, j.Status);
        Assert.Equal("named uri=[/j] args=[] method=[GET] status=[418]\n", j.Body);

        var r = await GetAsync(p, "/r");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Equal("named uri=[/r] args=[] method=[GET] status=[200]\n", r.Body);
    }

    [Fact]
    public async Task UrlsAreRedirects()
    {
        await using var p = await PorticoInstance.StartHttpAsync(Server);

        var e = await GetAsync(p, "/e");
        Assert.Equal(HttpStatusCode.Redirect, e.Status);
        Assert.Equal("http://example.com/e", e.Response.Headers.Location!.OriginalString);
        Assert.Contains("<title>302 Found</title>", e.Body);

        var f = await GetAsync(p, "/f");
        Assert.Equal(HttpStatusCode.MovedPermanently, f.Status);
        Assert.Equal("http://example.com/f", f.Response.Headers.Location!.OriginalString);
        Assert.Contains("<title>301 Moved Permanently</title>", f.Body);
    }

    [Fact]
    public async Task OneErrorPageUnlessRecursive()
    {
        await using var p = await PorticoInstance.StartHttpAsync(Server);

        // /missing itself ends with 404: without recursive_error_pages that is the answer.
        var g = await GetAsync(p, "/g");
        Assert.Equal(HttpStatusCode.NotFound, g.Status);
        Assert.Contains("<title>404 Not Found</title>", g.Body);

        var h = await GetAsync(p, "/h");
        Assert.Equal(HttpStatusCode.NotFound, h.Status);
        Assert.Equal("show uri=[/show] args=[] method=[GET] status=[404]\n", h.Body);

        // Recursive in the target only: the first error_page already counted.
        Assert.Contains("<title>404 Not Found</title>", (await GetAsync(p, "/n")).Body);
    }

    [Fact]
    public async Task PagesAreReplacedPerLevel()
    {
        await using var p = await PorticoInstance.StartHttpAsync(Server);

        // /k defines error_page for 403 only: the server's 404 page is not inherited.
        var k = await GetAsync(p, "/k");
        Assert.Equal(HttpStatusCode.NotFound, k.Status);
        Assert.Contains("<title>404 Not Found</title>", k.Body);

        // A location without error_page inherits the server's.
        Assert.Equal("show uri=[/show] args=[] method=[GET] status=[404]\n", (await GetAsync(p, "/zzz")).Body);
    }

    [Fact]
    public async Task ErrorsWhileRedirecting()
    {
        await using var p = await PorticoInstance.StartHttpAsync(Server);

        var i = await GetAsync(p, "/i");
        Assert.Equal(HttpStatusCode.InternalServerError, i.Status);
        Assert.Contains("<title>500 Internal Server Error</title>", i.Body);

        var l = await GetAsync(p, "/l");
        Assert.Equal(HttpStatusCode.InternalServerError, l.Status);
        Assert.Contains("could not find named location \"@nonexistent\", client: 127.0.0.1, server: localhost, request: \"GET /l HTTP/1.1\"",
            await LogContainingAsync(p, "could not find named location"));

        // The same cycles and messages as nginx 1.22 gives for this configuration.
        Assert.Equal(HttpStatusCode.InternalServerError, (await GetAsync(p, "/s")).Status);
        Assert.Contains("rewrite or internal redirection cycle while processing \"/cycle\", client: 127.0.0.1, server: localhost, request: \"GET /s HTTP/1.1\"",
            await LogContainingAsync(p, "while processing \"/cycle\""));
        Assert.Equal(HttpStatusCode.InternalServerError, (await GetAsync(p, "/u")).Status);
        Assert.Contains("rewrite or internal redirection cycle while internally redirecting to \"/u2\"",
            await LogContainingAsync(p, "while internally redirecting"));
        Assert.Equal(HttpStatusCode.InternalServerError, (await GetAsync(p, "/v")).Status);
        Assert.Contains("rewrite or internal redirection cycle while redirect to named location \"@v\"",
            await LogContainingAsync(p, "while redirect to named location"));
    }

    [Fact]
    public async Task UriWithVariablesIsSplitAtTheQuestionMark()
    {
        await using var p = await PorticoInstance.StartHttpAsync(Server);

        // The variable's value is used as is: "%3F" is not a "?".
        Assert.Equal("show uri=[/show%3Fz=2] args=[] method=[GET] status=[404]\n", (await GetAsync(p, "/m?t=show%3Fz=2")).Body);
    }

    [Fact]
    public async Task InternalLocationsOnlyForRedirects()
    {
        await using var p = await PorticoInstance.StartHttpAsync(Server);

        // A client request for /o is a 404 (then the server's error_page applies).
        var direct = await GetAsync(p, "/o");
        Assert.Equal(HttpStatusCode.NotFound, direct.Status);
        Assert.Equal("show uri=[/show] args=[] method=[GET] status=[404]\n", direct.Body);

        var viaErrorPage = await GetAsync(p, "/p");
        Assert.Equal(HttpStatusCode.NotFound, viaErrorPage.Status);
        Assert.Equal("internal uri=[/o]\n", viaErrorPage.Body);
    }

    [Fact]
    public async Task InternalLocationsReachedByRewrite()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /int { internal; return 200 "internal [$uri]\n"; }
                location /toint { rewrite ^ /int last; }
            }
            """);

        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(p, "/int")).Status);
        Assert.Equal("internal [/int]\n", (await GetAsync(p, "/toint")).Body);
    }

    [Fact]
    public async Task StatusesThatCloseTheConnectionSkipErrorPages()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                error_page 408 444 /show;
                location /show { return 200 "show\n"; }
                location /t { return 408; }
                location /c { return 444; }
            }
            """);

        Assert.Equal(string.Empty, await p.RawAsync("GET /t HTTP/1.1\r\nHost: x\r\n\r\n"));
        Assert.Equal(string.Empty, await p.RawAsync("GET /c HTTP/1.1\r\nHost: x\r\n\r\n"));
    }

    [Fact]
    public async Task MsieRefresh()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                msie_refresh on;
                location /ret { return 301 "/a b\"<>'"; }
                location /see { return 303 /a; }
                location /ep { error_page 404 =303 http://h/x; return 404; }
                location /rw { rewrite ^ http://h/x?a=1; }
                location /empty { return 302; }
                location /off { msie_refresh off; return 302 /a; }
            }
            """);
        const string Msie = "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\n";

        var ret = await p.RawAsync("GET /ret HTTP/1.1\r\nHost: x\r\n" + Msie + "Connection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", ret);
        Assert.DoesNotContain("Location:", ret);
        Assert.Contains("Content-Type: text/html\r\n", ret);
        Assert.EndsWith("\r\n\r\n<html><head><meta http-equiv=\"Refresh\" content=\"0; URL=/a%20b%22%3C%3E%27\"></head><body></body></html>\r\n", ret);
        Assert.Contains("Content-Length: 104\r\n", ret);

        // Only 301 and 302 are refreshed, except for error_page's URL redirects.
        var see = await p.RawAsync("GET /see HTTP/1.1\r\nHost: x\r\n" + Msie + "Connection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 303 See Other\r\n", see);
        var ep = await p.RawAsync("GET /ep HTTP/1.1\r\nHost: x\r\n" + Msie + "Connection: close\r\n\r\n");
        Assert.EndsWith("<meta http-equiv=\"Refresh\" content=\"0; URL=http://h/x\"></head><body></body></html>\r\n", ep);
        var rw = await p.RawAsync("GET /rw HTTP/1.1\r\nHost: x\r\n" + Msie + "Connection: close\r\n\r\n");
        Assert.EndsWith("<meta http-equiv=\"Refresh\" content=\"0; URL=http://h/x?a=1\"></head><body></body></html>\r\n", rw);
        var empty = await p.RawAsync("GET /empty HTTP/1.1\r\nHost: x\r\n" + Msie + "Connection: close\r\n\r\n");
        Assert.EndsWith("<meta http-equiv=\"Refresh\" content=\"0; URL=\"></head><body></body></html>\r\n", empty);

        var off = await p.RawAsync("GET /off HTTP/1.1\r\nHost: x\r\n" + Msie + "Connection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 302 Moved Temporarily\r\n", off);

        // Other browsers get the redirect.
        var other = await p.RawAsync("GET /ret HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 301 Moved Permanently\r\n", other);
    }
}
