using System.Net;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Static;

/// <summary>try_files (pre-content phase): files, directories, =code, @named and URI fallbacks.</summary>
public class TryFilesTests
{
    [Fact]
    public async Task SinglePageApplication()
    {
        // The seed's front end: try_files $uri $uri/ /index.html;
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/dist;
                location / { try_files $uri $uri/ /index.html; }
            }
            """);
        p.Dir.Write("dist/index.html", "<app/>");
        p.Dir.Write("dist/assets/app.js", "console.log(1)");
        p.Dir.Write("dist/docs/index.html", "docs");

        using var asset = await p.Client.GetAsync("/assets/app.js");
        Assert.Equal("console.log(1)", await asset.Content.ReadAsStringAsync());
        Assert.Equal("application/javascript", asset.Content.Headers.ContentType!.ToString());

        using var route = await p.Client.GetAsync("/users/42/settings?tab=1");
        Assert.Equal(HttpStatusCode.OK, route.StatusCode);
        Assert.Equal("<app/>", await route.Content.ReadAsStringAsync());
        Assert.Equal("text/html", route.Content.Headers.ContentType!.ToString());

        using var dir = await p.Client.GetAsync("/docs");
        Assert.Equal(HttpStatusCode.MovedPermanently, dir.StatusCode);
        Assert.Equal($"http://127.0.0.1:{p.Port}/docs/", dir.Headers.Location!.OriginalString);
        Assert.Equal("docs", await p.Client.GetStringAsync("/docs/"));
    }

    [Fact]
    public async Task CodeNamedLocationAndUriWithArguments()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                location /code/ { try_files $uri =404; }
                location /named/ { try_files $uri @backend; }
                location @backend { return 200 "backend $uri"; }
                location /php/ { try_files $uri /front?path=$uri&$args; }
                location = /front { return 200 "front $args"; }
                location /nowhere/ { try_files $uri @missing; }
            }
            """);
        p.Dir.Write("html/code/here.txt", "here");

        Assert.Equal("here", await p.Client.GetStringAsync("/code/here.txt"));
        using var code = await p.Client.GetAsync("/code/gone.txt");
        Assert.Equal(HttpStatusCode.NotFound, code.StatusCode);
        Assert.Equal("backend /named/x", await p.Client.GetStringAsync("/named/x"));
        Assert.Equal("front path=/php/a&q=1", await p.Client.GetStringAsync("/php/a?q=1"));
        using var missing = await p.Client.GetAsync("/nowhere/x");
        Assert.Equal(HttpStatusCode.InternalServerError, missing.StatusCode);
        Assert.Contains("could not find named location \"@missing\"", await p.ReadErrorLogAsync());
    }

    [Fact]
    public async Task UriFallbackWithoutArgumentsDropsTheQueryString()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location / { try_files $uri /fallback; }
                location = /fallback { return 200 "args=[$args]"; }
            }
            """);
        Assert.Equal("args=[]", await p.Client.GetStringAsync("/x?a=1"));
    }

    [Fact]
    public async Task TryFilesWithAliasStripsTheLocationPrefix()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /static/ { alias {prefix}/assets/; try_files $uri $uri.html =404; }
            }
            """);
        p.Dir.Write("assets/page.html", "page");
        p.Dir.Write("assets/raw.txt", "raw");
        Assert.Equal("raw", await p.Client.GetStringAsync("/static/raw.txt"));
        using var page = await p.Client.GetAsync("/static/page");
        Assert.Equal("page", await page.Content.ReadAsStringAsync());
        Assert.Equal("text/html", page.Content.Headers.ContentType!.ToString());
    }

    [Fact]
    public async Task ServerLevelTryFilesAppliesWhenNoLocationMatchesAndIsNotInherited()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                try_files $uri /index.html;
                location /loc/ { }
            }
            """);
        p.Dir.Write("html/index.html", "index");
        Assert.Equal("index", await p.Client.GetStringAsync("/anything"));
        using var inLocation = await p.Client.GetAsync("/loc/anything");
        Assert.Equal(HttpStatusCode.NotFound, inLocation.StatusCode);
    }
}
