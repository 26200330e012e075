using System.Net;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests;

/// <summary>ngx_http_rewrite_module's rewrite, set, break and the server-level script, from nginx's documentation.</summary>
public class RewriteTests
{
    private const string Show = "location /show { return 200 \"uri=[$uri] args=[$args] request=[$request_uri]\\n\"; }";

    internal static async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> GetAsync(PorticoInstance p, string path, string? host = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        var response = await p.Client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    /// <summary>The error log once it holds <paramref name="text"/> (the writer is asynchronous); bounded.</summary>
    internal static async Task<string> LogContainingAsync(PorticoInstance p, string text)
    {
        var log = string.Empty;
        for (var i = 0; i < 100 && !log.Contains(text, StringComparison.Ordinal); i++)
        {
            log = await p.ReadErrorLogAsync();
        }

        return log;
    }

    [Fact]
    public async Task CapturesAndArguments()
    {
        await using var p = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port};
                {{Show}}
                location /keep/ { rewrite ^/keep/(.*)$ /show/$1 last; }
                location /new/ { rewrite ^/new/(\w+)/(\w+)$ /show?a=$2&b=$1 last; }
                location /drop/ { rewrite ^/drop/(.*)$ /show/$1? last; }
                location /only/ { rewrite ^/only/(.*)$ /show?x=$1? last; }
                location /named/ { rewrite ^/named/(?<first>\w+)$ /show/$first last; }
            }
            """);

        Assert.Equal("uri=[/show/a/b] args=[q=1] request=[/keep/a/b?q=1]\n", (await GetAsync(p, "/keep/a/b?q=1")).Body);
        Assert.Equal("uri=[/show] args=[a=two&b=one&q=1] request=[/new/one/two?q=1]\n", (await GetAsync(p, "/new/one/two?q=1")).Body);
        Assert.Equal("uri=[/show] args=[a=two&b=one] request=[/new/one/two]\n", (await GetAsync(p, "/new/one/two")).Body);
        Assert.Equal("uri=[/show/z] args=[] request=[/drop/z?q=1]\n", (await GetAsync(p, "/drop/z?q=1")).Body);
        Assert.Equal("uri=[/show] args=[x=z] request=[/only/z?q=1]\n", (await GetAsync(p, "/only/z?q=1")).Body);
        Assert.Equal("uri=[/show/word] args=[] request=[/named/word]\n", (await GetAsync(p, "/named/word")).Body);
    }

    [Fact]
    public async Task CapturesAreEscapedInArgumentsWhenTheUriWasEscaped()
    {
        await using var p = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port};
                {{Show}}
                location /rw/ { rewrite ^/rw/(.*)$ /show/$1?u=$1 last; }
                location ~ ^/cap/(.*)$ { set $x $1; return 200 "set=[$x] return=[$1]\n"; }
            }
            """);

        // The URI part gets the decoded capture; the arguments an escaped one (nginx's quoted_uri / plus_in_uri).
        Assert.Equal("uri=[/show/a b] args=[u=a%20b&q=1] request=[/rw/a%20b?q=1]\n", (await GetAsync(p, "/rw/a%20b?q=1")).Body);
        Assert.Equal("uri=[/show/a+b] args=[u=a%2Bb] request=[/rw/a+b]\n", (await GetAsync(p, "/rw/a+b")).Body);
        Assert.Equal("uri=[/show/ab] args=[u=ab] request=[/rw/ab]\n", (await GetAsync(p, "/rw/ab")).Body);

        // "set" escapes captures too (the script engine quotes until a rewrite ran); "return" does not.
        Assert.Equal("set=[a%20b] return=[a b]\n", (await GetAsync(p, "/cap/a%20b")).Body);
        Assert.Equal("set=[plain] return=[plain]\n", (await GetAsync(p, "/cap/plain")).Body);
    }

    [Fact]
    public async Task RedirectFlagsAndAbsoluteReplacements()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                server_name localhost;
                location /abs/ { rewrite ^/abs/(.*)$ http://example.com/$1?z=1; return 200 "not reached"; }
                location /sch/ { rewrite ^/sch/(.*)$ $scheme://example.org/$1; }
                location /perm/ { rewrite ^/perm/(.*)$ /new/$1 permanent; }
                location /temp/ { rewrite ^/temp/(.*)$ /new/$1? redirect; }
                location /enc/ { rewrite ^/enc/(.*)$ https://example.com/$1 redirect; }
            }
            """);

        var abs = await GetAsync(p, "/abs/a%20b?q=1");
        Assert.Equal(HttpStatusCode.Redirect, abs.Status);
        Assert.Equal("http://example.com/a%20b?z=1&q=1", abs.Response.Headers.Location!.OriginalString);
        Assert.Contains("<title>302 Found</title>", abs.Body);

        var sch = await GetAsync(p, "/sch/x?q");
        Assert.Equal(HttpStatusCode.Redirect, sch.Status);
        Assert.Equal("http://example.org/x?q", sch.Response.Headers.Location!.OriginalString);

        var perm = await GetAsync(p, "/perm/x?q=1");
        Assert.Equal(HttpStatusCode.MovedPermanently, perm.Status);
        Assert.Equal($"http://127.0.0.1:{p.Port}/new/x?q=1", perm.Response.Headers.Location!.OriginalString);

        var temp = await GetAsync(p, "/temp/x?q=1");
        Assert.Equal(HttpStatusCode.Redirect, temp.Status);
        Assert.Equal($"http://127.0.0.1:{p.Port}/new/x", temp.Response.Headers.Location!.OriginalString);

        // A redirect escapes captures and unescapes printable ASCII: "%41" arrives as "A", "%20" stays.
        var enc = await GetAsync(p, "/enc/%41%20b");
        Assert.Equal("https://example.com/A%20b", enc.Response.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task StatusLineOfATemporaryRedirectIsNginxs()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server { listen 127.0.0.1:{port}; location / { rewrite ^ http://example.com/; } }
            """);
        var raw = await p.RawAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 302 Moved Temporarily\r\n", raw);
    }

    [Fact]
    public async Task LastSearchesAgainBreakStaysAndNoFlagContinuesTheScript()
    {
        await using var p = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port};
                {{Show}}
                location /last { rewrite ^ /show last; return 200 "not reached\n"; }
                location /brk { rewrite ^ /elsewhere break; return 200 "after break\n"; }
                location /brk2 { rewrite ^ /elsewhere break; }
                location /elsewhere { return 200 "elsewhere\n"; }
                location /none { rewrite ^/none(.*)$ /show$1; set $v "continued"; return 200 "v=[$v] uri=[$uri]\n"; }
                location /none2 { rewrite ^/none2(.*)$ /show$1; set $v "continued"; }
            }
            """);

        Assert.Equal("uri=[/show] args=[] request=[/last]\n", (await GetAsync(p, "/last")).Body);

        // "break": the rest of the script is skipped and the request stays in this location (no content: 404).
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(p, "/brk")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(p, "/brk2")).Status);

        // No flag: the script goes on (return ends it here), then the location is searched again.
        Assert.Equal("v=[continued] uri=[/show/x]\n", (await GetAsync(p, "/none/x")).Body);
        Assert.Equal("uri=[/show/y] args=[] request=[/none2/y]\n", (await GetAsync(p, "/none2/y")).Body);
    }

    [Fact]
    public async Task BreakDirectiveStopsTheScript()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /b {
                    set $q "one";
                    if ($arg_stop) { set $q "two"; break; }
                    set $q "three";
                    return 200 "q=[$q]\n";
                }
            }
            """);

        Assert.Equal("q=[three]\n", (await GetAsync(p, "/b")).Body);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(p, "/b?stop=1")).Status);
    }

    [Fact]
    public async Task ServerLevelScriptRunsBeforeTheLocationIsFound()
    {
        await using var p = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port};
                set $from_server "yes";
                rewrite ^(/download/.*)/media/(.*)\..*$ $1/mp3/$2.mp3 last;
                rewrite ^(/download/.*)/audio/(.*)\..*$ $1/mp3/$2.ra last;
                set $from_server "not after last";
                location /download/ { return 200 "download uri=[$uri] server=[$from_server]\n"; }
                location / { return 403; }
            }
            """);

        Assert.Equal("download uri=[/download/x/mp3/song.mp3] server=[yes]\n", (await GetAsync(p, "/download/x/media/song.wav")).Body);
        Assert.Equal("download uri=[/download/y/mp3/talk.ra] server=[yes]\n", (await GetAsync(p, "/download/y/audio/talk.wav")).Body);
        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(p, "/other")).Status);
        Assert.Equal("download uri=[/download/z] server=[not after last]\n", (await GetAsync(p, "/download/z")).Body);
    }

    [Fact]
    public async Task SetAssignsTextVariablesAndArgs()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /s {
                    set $a "x";
                    set $b "${a}y$a";
                    set $args "new=1";
                    set $A "upper";
                    return 200 "b=[$b] args=[$args] arg=[$arg_new] is_args=[$is_args] a=[$a]\n";
                }
            }
            """);

        Assert.Equal("b=[xyx] args=[new=1] arg=[1] is_args=[?] a=[upper]\n", (await GetAsync(p, "/s?old=2")).Body);
    }

    [Fact]
    public async Task UninitializedVariablesWarnUnlessTurnedOff()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /warn { return 200 "[$later]"; }
                location /quiet { uninitialized_variable_warn off; return 200 "[$later2]"; }
                location /set { set $later "x"; set $later2 "y"; return 200 "$later$later2"; }
            }
            """);

        Assert.Equal("[]", (await GetAsync(p, "/warn")).Body);
        Assert.Equal("[]", (await GetAsync(p, "/quiet")).Body);
        Assert.Equal("xy", (await GetAsync(p, "/set")).Body);
        var log = await LogContainingAsync(p, "using uninitialized \"later\" variable");
        Assert.Contains("[warn]", log);
        Assert.Contains("using uninitialized \"later\" variable, client: 127.0.0.1, server: , request: \"GET /warn HTTP/1.1\"", log);
        Assert.DoesNotContain("\"later2\"", log);
    }

    [Fact]
    public async Task RewriteLogWritesNoticesToTheErrorLog()
    {
        await using var p = await PorticoInstance.StartHttpAsync($$"""
            server {
                listen 127.0.0.1:{port};
                server_name localhost;
                rewrite_log on;
                {{Show}}
                location /a/ {
                    rewrite ^/nomatch /x;
                    rewrite ^/a/(.*)$ /show?v=$1 last;
                }
                location /r { rewrite ^ /target? permanent; }
            }
            """);

        await GetAsync(p, "/a/b?c=d");
        await GetAsync(p, "/r?q");
        var log = await LogContainingAsync(p, "rewritten redirect");
        Assert.Contains("[notice]", log);
        Assert.Contains("\"^/nomatch\" does not match \"/a/b\", client: 127.0.0.1, server: localhost, request: \"GET /a/b?c=d HTTP/1.1\"", log);
        Assert.Contains("\"^/a/(.*)$\" matches \"/a/b\", client: 127.0.0.1", log);
        Assert.Contains("rewritten data: \"/show\", args: \"v=b&c=d\", client: 127.0.0.1", log);
        Assert.Contains("rewritten redirect: \"/target\", client: 127.0.0.1", log);
    }

    [Fact]
    public async Task TenRewriteCyclesThen500()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                rewrite_log on;
                location /loop { rewrite ^ /loop last; }
                location /ten { set $n "${n}i"; if ($n != iiiiiiiiiii) { rewrite ^ /ten last; } return 200 "n=[$n]\n"; }
                location /eleven { set $n "${n}i"; if ($n != iiiiiiiiiiii) { rewrite ^ /eleven last; } return 200 "n=[$n]\n"; }
            }
            """);

        // Ten rewrites still serve the request; the eleventh is one too many.
        Assert.Equal("n=[iiiiiiiiiii]\n", (await GetAsync(p, "/ten")).Body);
        Assert.Equal(HttpStatusCode.InternalServerError, (await GetAsync(p, "/eleven")).Status);

        var loop = await GetAsync(p, "/loop");
        Assert.Equal(HttpStatusCode.InternalServerError, loop.Status);
        Assert.Contains("<title>500 Internal Server Error</title>", loop.Body);
        var log = await LogContainingAsync(p, "cycle while processing \"/loop\"");
        Assert.Contains("[error]", log);
        Assert.Contains("rewrite or internal redirection cycle while processing \"/loop\", client: 127.0.0.1", log);

        // nginx runs the rewrite eleven times: ten more URI changes are allowed after the first.
        var matches = log.Split('\n').Count(l => l.Contains("\"^\" matches \"/loop\"", StringComparison.Ordinal));
        Assert.Equal(11, matches);
    }

    [Fact]
    public async Task AnEmptyRewrittenUriIsAnError()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server { listen 127.0.0.1:{port}; location / { rewrite ^ $arg_to; return 200 "kept\n"; } }
            """);

        Assert.Equal(HttpStatusCode.InternalServerError, (await GetAsync(p, "/x")).Status);
        Assert.Contains("the rewritten URI has a zero length", await LogContainingAsync(p, "zero length"));
    }

    [Fact]
    public async Task ReturnSetsTheStatusBeforeItsText()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /s { return 202 "[$status]"; }
                location /r { return 302; }
                location /t { return 304 /x; }
            }
            """);

        var s = await GetAsync(p, "/s");
        Assert.Equal(HttpStatusCode.Accepted, s.Status);
        Assert.Equal("[202]", s.Body);

        // "return 302;" sends an empty Location, as nginx does.
        var raw = await p.RawAsync("GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.Contains("\r\nLocation: \r\n", raw);

        var notModified = await p.RawAsync("GET /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 304 Not Modified\r\n", notModified);
        Assert.Contains("Content-Type: text/plain\r\n", notModified);
    }
}
