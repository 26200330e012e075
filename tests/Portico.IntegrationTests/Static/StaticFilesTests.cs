using System.Net;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Static;

/// <summary>root, alias, index, types, default content handler: nginx's documented examples on loopback.</summary>
public class StaticFilesTests
{
    private static readonly DateTime Mtime = new(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc);

    private static string Put(PorticoInstance p, string name, string content)
    {
        var path = p.Dir.Write(name, content);
        File.SetLastWriteTimeUtc(path, Mtime);
        return path;
    }

    [Fact]
    public async Task ServesAFileWithNginxsHeaders()
    {
        await using var p = await PorticoInstance.StartHttpAsync("server { listen 127.0.0.1:{port}; root {prefix}/html; }");
        Put(p, "html/a.txt", "hello world\n");
        using var resp = await p.Client.GetAsync("/a.txt");
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("hello world\n", await resp.Content.ReadAsStringAsync());
        Assert.Equal("text/plain", resp.Content.Headers.ContentType!.ToString());
        Assert.Equal(12, resp.Content.Headers.ContentLength);
        Assert.Equal("Thu, 02 Jan 2020 03:04:05 GMT", resp.Content.Headers.GetValues("Last-Modified").Single());
        Assert.Equal("\"5e0d5da5-c\"", resp.Headers.ETag!.ToString());
        Assert.Equal("bytes", resp.Headers.GetValues("Accept-Ranges").Single());
    }

    [Fact]
    public async Task DefaultRootIsHtmlUnderThePrefixAndDefaultIndexIsIndexHtml()
    {
        await using var p = await PorticoInstance.StartHttpAsync("server { listen 127.0.0.1:{port}; }");
        Put(p, "html/index.html", "<h1>welcome</h1>");
        using var resp = await p.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("<h1>welcome</h1>", await resp.Content.ReadAsStringAsync());
        Assert.Equal("text/html", resp.Content.Headers.ContentType!.ToString());
    }

    [Fact]
    public async Task DirectoryWithoutSlashRedirectsAndWithoutIndexIsForbidden()
    {
        await using var p = await PorticoInstance.StartHttpAsync("server { listen 127.0.0.1:{port}; root {prefix}/html; }");
        Put(p, "html/docs/readme.txt", "r");
        Directory.CreateDirectory(p.Dir.File("html/with space"));

        using var redirect = await p.Client.GetAsync("/docs?x=1");
        Assert.Equal(HttpStatusCode.MovedPermanently, redirect.StatusCode);
        Assert.Equal($"http://127.0.0.1:{p.Port}/docs/?x=1", redirect.Headers.Location!.OriginalString);

        using var escaped = await p.Client.GetAsync("/with%20space");
        Assert.Equal($"http://127.0.0.1:{p.Port}/with%20space/", escaped.Headers.Location!.OriginalString);

        using var forbidden = await p.Client.GetAsync("/docs/");
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Contains($"directory index of \"{p.Dir.Path}/html/docs/\" is forbidden, client: 127.0.0.1", await p.ReadErrorLogAsync());
    }

    [Fact]
    public async Task MissingFileIs404WithNginxsErrorLogLineUnlessLogNotFoundIsOff()
    {
        await using var p = await PorticoInstance.StartHttpAsync(
            "server { listen 127.0.0.1:{port}; root {prefix}/html; location /quiet/ { log_not_found off; } }");
        using var missing = await p.Client.GetAsync("/nope.txt");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var quiet = await p.Client.GetAsync("/quiet/nope.txt");
        Assert.Equal(HttpStatusCode.NotFound, quiet.StatusCode);
        using var noDir = await p.Client.GetAsync("/nodir/");
        Assert.Equal(HttpStatusCode.NotFound, noDir.StatusCode);
        var log = await p.ReadErrorLogAsync();
        Assert.Contains($"[error] ", log);
        Assert.Contains($"open() \"{p.Dir.Path}/html/nope.txt\" failed (2: No such file or directory), client: 127.0.0.1, server: , request: \"GET /nope.txt HTTP/1.1\"", log);
        Assert.Contains($"\"{p.Dir.Path}/html/nodir/index.html\" is not found (2: No such file or directory)", log);
        Assert.DoesNotContain("quiet/nope.txt\" failed", log);
    }

    [Fact]
    public async Task MethodsOtherThanGetAndHeadAreNotAllowed()
    {
        await using var p = await PorticoInstance.StartHttpAsync("server { listen 127.0.0.1:{port}; root {prefix}/html; }");
        Put(p, "html/a.txt", "hello");
        using var post = await p.Client.PostAsync("/a.txt", new StringContent("x"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        using var put = await p.Client.PutAsync("/", new StringContent("x"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, put.StatusCode);
        using var postMissing = await p.Client.PostAsync("/missing", new StringContent("x"));
        Assert.Equal(HttpStatusCode.NotFound, postMissing.StatusCode);

        var head = await p.RawAsync("HEAD /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", head);
        Assert.Contains("Content-Length: 5\r\n", head);
        Assert.EndsWith("\r\n\r\n", head);
    }

    [Fact]
    public async Task AliasReplacesTheLocationPrefix()
    {
        // nginx's documentation: location /i/ { alias /data/w3/images/; } serves /i/top.gif from /data/w3/images/top.gif.
        await using var p = await PorticoInstance.StartHttpAsync(
            "server { listen 127.0.0.1:{port}; root {prefix}/html; location /i/ { alias {prefix}/data/w3/images/; } }");
        Put(p, "data/w3/images/top.gif", "GIF89a");
        using var resp = await p.Client.GetAsync("/i/top.gif");
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("image/gif", resp.Content.Headers.ContentType!.ToString());
        Assert.Equal("GIF89a", await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AliasInARegexLocationUsesCaptures()
    {
        // nginx's documentation: location ~ ^/download/(.+)$ { alias /data/$1; }
        await using var p = await PorticoInstance.StartHttpAsync(
            "server { listen 127.0.0.1:{port}; location ~ ^/download/(.+)$ { alias {prefix}/data/$1; } }");
        Put(p, "data/reports/2024.csv", "a,b\n");
        using var resp = await p.Client.GetAsync("/download/reports/2024.csv");
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("a,b\n", await resp.Content.ReadAsStringAsync());
        using var missing = await p.Client.GetAsync("/download/none.csv");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task IndexTriesEachFileAndEndsWithAnAbsoluteOne()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                index index.$arg_lang.html index.htm /fallback.html;
                location = /fallback.html { return 200 "fallback"; }
            }
            """);
        Put(p, "html/a/index.htm", "htm");
        Put(p, "html/b/index.de.html", "deutsch");
        Directory.CreateDirectory(p.Dir.File("html/c"));

        Assert.Equal("htm", await p.Client.GetStringAsync("/a/"));
        Assert.Equal("deutsch", await p.Client.GetStringAsync("/b/?lang=de"));
        Assert.Equal("fallback", await p.Client.GetStringAsync("/c/"));
    }

    [Fact]
    public async Task TypesBlockAndDefaultTypeAndTheBuiltInTable()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            default_type application/octet-stream;
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                location /custom/ { types { text/markdown md; } default_type text/plain; }
            }
            """);
        Put(p, "html/s.CSS", "x");
        Put(p, "html/n.unknown", "x");
        Put(p, "html/custom/r.md", "x");
        Put(p, "html/custom/s.css", "x");
        async Task<string> Type(string uri)
        {
            using var r = await p.Client.GetAsync(uri);
            return r.Content.Headers.ContentType!.ToString();
        }

        Assert.Equal("text/css", await Type("/s.CSS"));
        Assert.Equal("application/octet-stream", await Type("/n.unknown"));
        Assert.Equal("text/markdown", await Type("/custom/r.md"));
        Assert.Equal("text/plain", await Type("/custom/s.css"));
    }

    [Fact]
    public async Task DebiansMimeTypesIncludeWorks()
    {
        await using var p = await PorticoInstance.StartHttpAsync(
            "include /etc/nginx/mime.types;\ndefault_type application/octet-stream;\nserver { listen 127.0.0.1:{port}; root {prefix}/html; }");
        Put(p, "html/doc.pdf", "%PDF");
        using var r = await p.Client.GetAsync("/doc.pdf");
        Assert.Equal("application/pdf", r.Content.Headers.ContentType!.ToString());
    }

    [Fact]
    public async Task DocumentRootAndRequestFilenameVariables()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html/;
                add_header X-Root $document_root;
                add_header X-File $request_filename;
                location /rel/ { root {prefix}/current; add_header X-Real $realpath_root; add_header X-Root $document_root; }
                location /i/ { alias {prefix}/data/; add_header X-Root $document_root; add_header X-File $request_filename; }
            }
            """);
        Put(p, "html/a.txt", "a");
        Put(p, "data/b.txt", "b");
        using var a = await p.Client.GetAsync("/a.txt");
        Assert.Equal(p.Dir.Path + "/html", a.Headers.GetValues("X-Root").Single());
        Assert.Equal(p.Dir.Path + "/html/a.txt", a.Headers.GetValues("X-File").Single());
        Put(p, "releases/v2/rel/c.txt", "c");
        Directory.CreateSymbolicLink(p.Dir.File("current"), p.Dir.File("releases/v2"));
        using var c = await p.Client.GetAsync("/rel/c.txt");
        Assert.Equal(p.Dir.Path + "/current", c.Headers.GetValues("X-Root").Single());
        Assert.Equal(p.Dir.Path + "/releases/v2", c.Headers.GetValues("X-Real").Single());
        using var b = await p.Client.GetAsync("/i/b.txt");
        Assert.Equal(p.Dir.Path + "/data/", b.Headers.GetValues("X-Root").Single());
        Assert.Equal(p.Dir.Path + "/data/b.txt", b.Headers.GetValues("X-File").Single());
    }

    [Fact]
    public async Task DisableSymlinksRefusesLinksWithNginxsErrors()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                location /on/ { disable_symlinks on; }
                location /from/ { disable_symlinks on from={prefix}/html/from; }
            }
            """);
        Put(p, "outside/secret.txt", "secret");
        Directory.CreateDirectory(p.Dir.File("html/on"));
        Directory.CreateDirectory(p.Dir.File("html/from"));
        File.CreateSymbolicLink(p.Dir.File("html/on/link.txt"), p.Dir.File("outside/secret.txt"));
        File.CreateSymbolicLink(p.Dir.File("html/plain-link.txt"), p.Dir.File("outside/secret.txt"));
        Directory.CreateSymbolicLink(p.Dir.File("html/on/dirlink"), p.Dir.File("outside"));
        Directory.CreateSymbolicLink(p.Dir.File("html/from/dirlink"), p.Dir.File("outside"));
        File.CreateSymbolicLink(p.Dir.File("html/from/dirlink2"), p.Dir.File("outside/secret.txt"));

        using var followed = await p.Client.GetAsync("/plain-link.txt");
        Assert.Equal(HttpStatusCode.OK, followed.StatusCode);
        using var link = await p.Client.GetAsync("/on/link.txt");
        Assert.Equal(HttpStatusCode.Forbidden, link.StatusCode);
        using var dirLink = await p.Client.GetAsync("/on/dirlink/secret.txt");
        Assert.Equal(HttpStatusCode.NotFound, dirLink.StatusCode);
        using var fromLink = await p.Client.GetAsync("/from/dirlink2");
        Assert.Equal(HttpStatusCode.Forbidden, fromLink.StatusCode);
        var log = await p.ReadErrorLogAsync();
        Assert.Contains($"openat() \"{p.Dir.Path}/html/on/link.txt\" failed (40: Too many levels of symbolic links)", log);
        Assert.Contains($"openat() \"{p.Dir.Path}/html/on/dirlink/secret.txt\" failed (20: Not a directory)", log);
    }

    [Fact]
    public async Task OpenFileCacheKeepsTheOpenFileWhileValid()
    {
        await using var p = await PorticoInstance.StartHttpAsync(
            "server { listen 127.0.0.1:{port}; root {prefix}/html; open_file_cache max=10 inactive=60s; open_file_cache_valid 60s; }");
        var path = Put(p, "html/cached.txt", "cached body");
        Assert.Equal("cached body", await p.Client.GetStringAsync("/cached.txt"));
        File.Delete(path);

        // nginx serves from the cached descriptor until open_file_cache_valid runs out; so does Portico.
        Assert.Equal("cached body", await p.Client.GetStringAsync("/cached.txt"));
    }

    [Fact]
    public async Task StaticIsTheDefaultContentOfLocationsWithoutOne()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                location /api/ { return 200 "api"; }
                location /files/ { }
            }
            """);
        Put(p, "html/files/f.txt", "file");
        Assert.Equal("api", await p.Client.GetStringAsync("/api/f.txt"));
        Assert.Equal("file", await p.Client.GetStringAsync("/files/f.txt"));
    }

    [Fact]
    public async Task AccessLogCountsTheBytesOfFilesAndRanges()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            log_format bytes '$status $body_bytes_sent $request_uri';
            server { listen 127.0.0.1:{port}; root {prefix}/html; access_log {prefix}/logs/bytes.log bytes; }
            """);
        Put(p, "html/a.txt", "hello world\n");
        await p.Client.GetStringAsync("/a.txt");
        using var range = new HttpRequestMessage(HttpMethod.Get, "/a.txt?r");
        range.Headers.TryAddWithoutValidation("Range", "bytes=0-4");
        using (await p.Client.SendAsync(range))
        {
        }

        await p.QuiesceAsync();
        var log = await File.ReadAllTextAsync(p.Dir.File("logs/bytes.log"));
        Assert.Contains("200 12 /a.txt\n", log);
        Assert.Contains("206 5 /a.txt?r\n", log);
    }
}
