using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests;

/// <summary>access_log, log_format and per-level error_log as a client and an operator see them.</summary>
public sealed class AccessLogTests
{
    /// <summary>
    /// Waits until the server has handed <paramref name="lines"/> access log lines to its writer (a client sees
    /// the response before the server logs it, as with nginx), then until the writer has written them.
    /// </summary>
    private static async Task LoggedAsync(PorticoInstance p, int lines)
    {
        for (var i = 0; i < 2000 && p.Host.Writer.AccessLines < lines; i++)
        {
            await Task.Delay(5);
        }

        Assert.True(p.Host.Writer.AccessLines >= lines, $"{p.Host.Writer.AccessLines} of {lines} lines logged");
        await p.Host.Writer.WhenIdleAsync();
    }

    private static async Task<string[]> LinesAsync(PorticoInstance p, string name)
    {
        await p.Host.Writer.WhenIdleAsync();
        var path = p.Dir.File(name);
        return File.Exists(path) ? (await File.ReadAllTextAsync(path, Encoding.UTF8)).Split('\n', StringSplitOptions.RemoveEmptyEntries) : [];
    }

    [Fact]
    public async Task WithoutAccessLogEveryRequestGoesToLogsAccessLogInCombined()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server { listen 127.0.0.1:{port}; location / { return 200 "ok"; } location /gone { return 410; } }
            """);
        await p.Client.GetAsync("/x?y=1");
        await p.Client.GetAsync("/gone");
        await LoggedAsync(p, 2);
        var lines = await LinesAsync(p, "logs/access.log");
        Assert.Equal(2, lines.Length);
        Assert.Matches("^127\\.0\\.0\\.1 - - \\[[^\\]]+\\] \"GET /x\\?y=1 HTTP/1\\.1\" 200 2 \"-\" \"-\"$", lines[0]);
        Assert.Matches("\"GET /gone HTTP/1\\.1\" 410 \\d+ \"-\" \"-\"$", lines[1]);
    }

    [Fact]
    public async Task JsonAndDefaultEscapingOfHostileBytes()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            log_format j escape=json '{"ua":"$http_user_agent","arg":"$arg_a","none":"$http_x_none","status":$status}';
            log_format d '$http_user_agent|$arg_a|$http_x_none';
            log_format n escape=none '$http_user_agent|$http_x_none|';
            server {
                listen 127.0.0.1:{port};
                access_log logs/j.log j;
                access_log logs/d.log d;
                access_log logs/n.log n;
                location / { return 204; }
            }
            """);
        // UTF-8 "é" as two bytes, a control byte, DEL, a quote, a backslash, a tab.
        var ua = "\u001f\u007f\u00c3\u00a9\"\\\t.";
        await p.RawAsync($"GET /?a=%22x\"\\ HTTP/1.1\r\nHost: h\r\nUser-Agent: {ua}\r\nConnection: close\r\n\r\n");
        await LoggedAsync(p, 3);

        Assert.Equal(["{\"ua\":\"\\u001F\u007fé\\\"\\\\\\t.\",\"arg\":\"%22x\\\"\\\\\",\"none\":\"\",\"status\":204}"], await LinesAsync(p, "logs/j.log"));
        Assert.Equal(["\\x1F\\x7F\\xC3\\xA9\\x22\\x5C\\x09.|%22x\\x22\\x5C|-"], await LinesAsync(p, "logs/d.log"));
        Assert.Equal(["\u001f\u007fé\"\\\t.||"], await LinesAsync(p, "logs/n.log"));
    }

    [Fact]
    public async Task IfConditionSkipsEmptyAndZero()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            log_format u '$request_uri';
            server { listen 127.0.0.1:{port}; access_log logs/if.log u if=$arg_log; location / { return 200; } }
            """);
        foreach (var q in new[] { "/?log=1", "/?log=0", "/", "/?log=", "/?log=yes" })
        {
            await p.Client.GetAsync(q);
        }

        await LoggedAsync(p, 2);
        Assert.Equal(["/?log=1", "/?log=yes"], await LinesAsync(p, "logs/if.log"));
    }

    [Fact]
    public async Task EachLevelUsesItsOwnListAndOffStopsLogging()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            log_format u '$uri $status';
            access_log logs/http.log u;
            server {
                listen 127.0.0.1:{port};
                location /inherit { return 200; }
                location /own { access_log logs/own.log u; access_log logs/own2.log u; return 200; }
                location /off { access_log off; return 200; }
            }
            """);
        foreach (var q in new[] { "/inherit", "/own", "/off", "/none" })
        {
            await p.Client.GetAsync(q);
        }

        await LoggedAsync(p, 4);
        Assert.Equal(["/inherit 200", "/none 404"], await LinesAsync(p, "logs/http.log"));
        Assert.Equal(["/own 200"], await LinesAsync(p, "logs/own.log"));
        Assert.Equal(["/own 200"], await LinesAsync(p, "logs/own2.log"));
        Assert.False(File.Exists(p.Dir.File("logs/access.log")));
    }

    [Fact]
    public async Task ByteCountsAndLogVariables()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            log_format v '$status $body_bytes_sent $bytes_sent $request_length $request_completion $pipe "$sent_http_content_type" "$sent_http_x_none" $connection_time';
            server { listen 127.0.0.1:{port}; access_log logs/v.log v; location / { return 200 "hello\n"; } location /close { return 444; } }
            """);
        var request = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        var response = await p.RawAsync(request, untilClose: true);
        await p.RawAsync("GET /close HTTP/1.1\r\nHost: h\r\n\r\n");
        await LoggedAsync(p, 3);
        var lines = await LinesAsync(p, "logs/v.log");
        Assert.Equal(3, lines.Length);

        // The response's header block as Kestrel wrote it, and the request as it was sent.
        var first = response[..(response.IndexOf("hello\n", StringComparison.Ordinal) + 6)];
        var headerSize = first.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4;
        Assert.Matches($"^200 6 {headerSize + 6} 28 OK \\. \"text/plain\" \"-\" \\d+\\.\\d{{3}}$", lines[0]);

        // The second request arrived with the first: pipelined.
        Assert.Matches("^200 6 \\d+ 47 OK p \"text/plain\" \"-\" ", lines[1]);

        // 444 closes the connection without a response.
        Assert.Matches("^444 0 0 32  \\. \"-\" \"-\" ", lines[2]);
    }

    [Fact]
    public async Task BadRequestsAreLoggedByTheServer()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server { listen 127.0.0.1:{port}; location / { return 200; } }
            """);
        await p.RawAsync("GET /../etc/passwd HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        await LoggedAsync(p, 1);
        var lines = await LinesAsync(p, "logs/access.log");
        Assert.Matches("\"GET /\\.\\./etc/passwd HTTP/1\\.1\" 400 \\d+ \"-\" \"-\"$", Assert.Single(lines));
    }

    [Fact]
    public async Task RequestsTheHttpServerRejectsAreLoggedWithTheLineAsReceived()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server { listen 127.0.0.1:{port}; location / { return 200; } }
            """);
        Assert.StartsWith("HTTP/1.1 400", await p.RawAsync("GARBAGE\r\n\r\n"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 400", await p.RawAsync("GET /\u0001\u007f\u00ff HTTP/1.1\r\nHost: h\r\n\r\n"), StringComparison.Ordinal);
        // Read until the server closes: it answers the good request, then rejects the bad line and closes.
        Assert.StartsWith("HTTP/1.1 200", await p.RawAsync("GET /ok HTTP/1.1\r\nHost: h\r\n\r\nBAD LINE\r\n\r\n", untilClose: true), StringComparison.Ordinal);
        await LoggedAsync(p, 4);
        var lines = await LinesAsync(p, "logs/access.log");

        // What nginx 1.22 logs for the same bytes (its 400 page has a body, Kestrel's has none).
        Assert.Matches("^127\\.0\\.0\\.1 - - \\[[^\\]]+\\] \"GARBAGE\" 400 0 \"-\" \"-\"$", lines[0]);
        Assert.EndsWith("] \"GET /\\x01\\x7F\\xFF HTTP/1.1\" 400 0 \"-\" \"-\"", lines[1], StringComparison.Ordinal);
        Assert.EndsWith("] \"GET /ok HTTP/1.1\" 200 0 \"-\" \"-\"", lines[2], StringComparison.Ordinal);
        Assert.EndsWith("] \"BAD LINE\" 400 0 \"-\" \"-\"", lines[3], StringComparison.Ordinal);
    }

    [Fact]
    public async Task VariablesInTheFileName()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            log_format u '$host $uri';
            open_log_file_cache max=4 inactive=1m;
            server { listen 127.0.0.1:{port}; server_name _; access_log logs/by-$host.log u; location / { return 200; } }
            """);
        await p.RawAsync("GET /1 HTTP/1.1\r\nHost: one.example\r\nConnection: close\r\n\r\n");
        await p.RawAsync("GET /2 HTTP/1.1\r\nHost: two.example\r\nConnection: close\r\n\r\n");
        await p.RawAsync("GET /3 HTTP/1.1\r\nHost: one.example\r\nConnection: close\r\n\r\n");
        await LoggedAsync(p, 3);
        Assert.Equal(["one.example /1", "one.example /3"], await LinesAsync(p, "logs/by-one.example.log"));
        Assert.Equal(["two.example /2"], await LinesAsync(p, "logs/by-two.example.log"));
    }

    [Fact]
    public async Task ErrorLogPerLevelGetsRequestErrorsInNginxShape()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            error_log logs/http-error.log info;
            server {
                listen 127.0.0.1:{port};
                server_name site.example;
                error_log logs/server-error.log info;
                location /loc { error_log logs/loc-error.log info; access_log /nonexistent-portico/$host.log; return 200; }
                location /srv { access_log /nonexistent-portico/$host.log; return 200; }
            }
            """);
        await p.RawAsync("GET /loc?x HTTP/1.1\r\nHost: site.example\r\nReferer: http://r/\r\nConnection: close\r\n\r\n");
        await p.RawAsync("GET /srv HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n");
        await LoggedAsync(p, 2);
        await p.QuiesceAsync();

        var loc = await File.ReadAllTextAsync(p.Dir.File("logs/loc-error.log"));
        Assert.Matches(
            "^\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d \\[crit\\] \\d+#\\d+: \\*\\d+ open\\(\\) \"/nonexistent-portico/site\\.example\\.log\" failed \\(2: No such file or directory\\) while logging request, client: 127\\.0\\.0\\.1, server: site\\.example, request: \"GET /loc\\?x HTTP/1\\.1\", host: \"site\\.example\", referrer: \"http://r/\"\n$",
            loc);
        var srv = await File.ReadAllTextAsync(p.Dir.File("logs/server-error.log"));
        Assert.Contains("request: \"GET /srv HTTP/1.1\", host: \"site.example\"", srv, StringComparison.Ordinal);
        Assert.DoesNotContain("/loc", srv, StringComparison.Ordinal);
        var http = File.Exists(p.Dir.File("logs/http-error.log")) ? await File.ReadAllTextAsync(p.Dir.File("logs/http-error.log")) : string.Empty;
        Assert.DoesNotContain("open()", http, StringComparison.Ordinal);
        Assert.DoesNotContain("open()", await p.ReadErrorLogAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReopenAfterRotationWritesToTheNewFile()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            log_format u '$uri';
            server { listen 127.0.0.1:{port}; access_log logs/rot.log u; location / { return 200; } }
            """);
        await p.Client.GetAsync("/before");
        await LoggedAsync(p, 1);

        // logrotate's sequence: rename, then USR1 (-s reopen).
        var path = p.Dir.File("logs/rot.log");
        File.Move(path, path + ".1");
        await p.Client.GetAsync("/between");
        await LoggedAsync(p, 2);
        p.Host.ReopenLogs();
        await p.Client.GetAsync("/after");
        await LoggedAsync(p, 3);

        Assert.Equal(["/after"], await LinesAsync(p, "logs/rot.log"));
        Assert.Equal(["/before", "/between"], await LinesAsync(p, "logs/rot.log.1"));
    }

    [Fact]
    public async Task BufferedLogsAreWrittenWhenFullOrAtShutdownAndGzipIsReadable()
    {
        var p = await PorticoInstance.StartHttpAsync("""
            log_format u '$uri';
            server {
                listen 127.0.0.1:{port};
                access_log logs/buf.log u buffer=64k;
                access_log logs/small.log u buffer=8;
                access_log logs/z.log.gz u gzip=5 flush=1h;
                location / { return 200; }
            }
            """);
        var dir = new TempDir();
        try
        {
            await p.Client.GetAsync("/one");
            await p.Client.GetAsync("/two");
            await LoggedAsync(p, 6);
            Assert.Empty(await LinesAsync(p, "logs/buf.log"));
            Assert.Empty(await LinesAsync(p, "logs/z.log.gz"));

            // "/one\n" fits the 8-byte buffer, "/two\n" does not: the first is written.
            Assert.Equal(["/one"], await LinesAsync(p, "logs/small.log"));

            foreach (var f in new[] { "buf.log", "small.log", "z.log.gz" })
            {
                File.Copy(p.Dir.File("logs/" + f), dir.File(f));
            }

            await p.Host.StopAsync(graceful: true);
            Assert.Equal("/one\n/two\n", await File.ReadAllTextAsync(p.Dir.File("logs/buf.log")));
            Assert.Equal("/one\n/two\n", await File.ReadAllTextAsync(p.Dir.File("logs/small.log")));
            await using var gz = new GZipStream(File.OpenRead(p.Dir.File("logs/z.log.gz")), CompressionMode.Decompress);
            using var reader = new StreamReader(gz);
            Assert.Equal("/one\n/two\n", await reader.ReadToEndAsync());
        }
        finally
        {
            await p.DisposeAsync();
            dir.Dispose();
        }
    }

    [Fact]
    public async Task ReloadChangesTheLogs()
    {
        const string Before = """
            log_format u 'a $uri';
            server { listen 127.0.0.1:{port}; access_log logs/r.log u buffer=64k; location / { return 200; } }
            """;
        const string After = """
            log_format u 'b $uri';
            server { listen 127.0.0.1:{port}; access_log logs/r.log u; location / { return 200; } }
            """;
        await using var p = await PorticoInstance.StartHttpAsync(Before);
        await p.Client.GetAsync("/1");
        await LoggedAsync(p, 1);
        Assert.True(await p.ReloadAsync(PorticoInstance.WrapHttp(After)));
        await p.Client.GetAsync("/2");
        await LoggedAsync(p, 2);
        Assert.Equal(["a /1", "b /2"], await LinesAsync(p, "logs/r.log"));
    }

    [Fact]
    public async Task StartupFailsWhenALogCannotBeOpened()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => PorticoInstance.StartHttpAsync("""
            server { listen 127.0.0.1:{port}; access_log /nonexistent-portico/a.log; }
            """));
        Assert.Contains("[emerg] open() \"/nonexistent-portico/a.log\" failed (2: No such file or directory)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LogLinesTimesAreNginxs()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            log_format t '[$time_local] [$time_iso8601] [$msec] [$request_time]';
            server { listen 127.0.0.1:{port}; access_log logs/t.log t; location / { return 200; } }
            """);
        await p.Client.GetAsync("/");
        await LoggedAsync(p, 1);
        var line = Assert.Single(await LinesAsync(p, "logs/t.log"));
        Assert.Matches(new Regex(@"^\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] \[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\] \[\d{10}\.\d{3}\] \[\d+\.\d{3}\]$"), line);
    }
}
