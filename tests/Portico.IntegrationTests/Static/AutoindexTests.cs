using System.Net;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Static;

/// <summary>autoindex in its four formats, over HTTP.</summary>
public class AutoindexTests
{
    private static readonly DateTime Mtime = new(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc);

    private static async Task<PorticoInstance> StartAsync()
    {
        var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                location /html/ { alias {prefix}/pub/; autoindex on; }
                location /json/ { alias {prefix}/pub/; autoindex on; autoindex_format json; }
                location /jsonp/ { alias {prefix}/pub/; autoindex on; autoindex_format jsonp; }
                location /xml/ { alias {prefix}/pub/; autoindex on; autoindex_format xml; }
                location /off/ { alias {prefix}/pub/; }
            }
            """);
        p.Dir.Write("pub/report.pdf", new string('x', 20000));
        p.Dir.Write("pub/.hidden", "h");
        Directory.CreateDirectory(p.Dir.File("pub/sub"));
        File.SetLastWriteTimeUtc(p.Dir.File("pub/report.pdf"), Mtime);
        Directory.SetLastWriteTimeUtc(p.Dir.File("pub/sub"), Mtime);
        return p;
    }

    [Fact]
    public async Task HtmlListing()
    {
        await using var p = await StartAsync();
        using var resp = await p.Client.GetAsync("/html/");
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("text/html", resp.Content.Headers.ContentType!.ToString());
        Assert.Equal(
            "<html>\r\n<head><title>Index of /html/</title></head>\r\n<body>\r\n<h1>Index of /html/</h1><hr><pre><a href=\"../\">../</a>\r\n" +
            "<a href=\"sub/\">sub/</a>                                               02-Jan-2020 03:04                   -\r\n" +
            "<a href=\"report.pdf\">report.pdf</a>                                         02-Jan-2020 03:04               20000\r\n" +
            "</pre><hr></body>\r\n</html>\r\n",
            await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task JsonJsonpAndXml()
    {
        await using var p = await StartAsync();
        const string json = "[\r\n{ \"name\":\"sub\", \"type\":\"directory\", \"mtime\":\"Thu, 02 Jan 2020 03:04:05 GMT\" },\r\n" +
            "{ \"name\":\"report.pdf\", \"type\":\"file\", \"mtime\":\"Thu, 02 Jan 2020 03:04:05 GMT\", \"size\":20000 }\r\n]";
        using var j = await p.Client.GetAsync("/json/");
        Assert.Equal("application/json", j.Content.Headers.ContentType!.ToString());
        Assert.Equal(json, await j.Content.ReadAsStringAsync());

        using var jp = await p.Client.GetAsync("/jsonp/?callback=show");
        Assert.Equal("application/javascript", jp.Content.Headers.ContentType!.ToString());
        Assert.Equal("/* callback */\r\nshow(" + json + ");", await jp.Content.ReadAsStringAsync());

        using var noCallback = await p.Client.GetAsync("/jsonp/");
        Assert.Equal("application/json", noCallback.Content.Headers.ContentType!.ToString());
        using var bad = await p.Client.GetAsync("/jsonp/?callback=alert(1)");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        using var x = await p.Client.GetAsync("/xml/");
        Assert.Equal("text/xml; charset=utf-8", x.Content.Headers.ContentType!.ToString());
        Assert.Equal("<?xml version=\"1.0\"?>\r\n<list>\r\n<directory mtime=\"2020-01-02T03:04:05Z\">sub</directory>\r\n" +
            "<file mtime=\"2020-01-02T03:04:05Z\" size=\"20000\">report.pdf</file>\r\n</list>\r\n", await x.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task OffMeansForbiddenAndMissingDirectoryIsNotFound()
    {
        await using var p = await StartAsync();
        using var off = await p.Client.GetAsync("/off/");
        Assert.Equal(HttpStatusCode.Forbidden, off.StatusCode);
        using var missing = await p.Client.GetAsync("/html/nothere/");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        // The index module runs before autoindex and finds the directory missing, as in nginx.
        Assert.Contains($"\"{p.Dir.Path}/pub/nothere/index.html\" is not found (2: No such file or directory)", await p.ReadErrorLogAsync());
    }
}
