using Portico.Static;

namespace Portico.Tests.Static;

public class MimeTypesTests
{
    [Theory]
    [InlineData("/index.html", "text/html")]
    [InlineData("/a/b/style.CSS", "text/css")]
    [InlineData("/app.js", "application/javascript")]
    [InlineData("/img/photo.JPG", "image/jpeg")]
    [InlineData("/doc.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")]
    [InlineData("/font.woff2", "font/woff2")]
    [InlineData("/archive.tar.gz", "application/octet-stream")]
    [InlineData("/module.wasm", "application/wasm")]
    [InlineData("/video.webm", "video/webm")]
    [InlineData("/data.json", "application/json")]
    public void BuiltInTableIsNginxMimeTypes(string uri, string expected)
    {
        Assert.Equal(expected, MimeTypes.Default.ContentTypeFor(uri, "application/octet-stream"));
    }

    [Theory]
    [InlineData("/README", "")]
    [InlineData("/.htaccess", "")]
    [InlineData("/dir.d/file", "")]
    [InlineData("/a/.hidden", "")]
    [InlineData("/a.b/c.txt", "txt")]
    [InlineData("/x.tar.gz", "gz")]
    [InlineData("/trailing.", "")]
    [InlineData("/a/b.", "")]
    public void ExtensionIsNginxExten(string uri, string expected)
    {
        Assert.Equal(expected, MimeTypes.Extension(uri).ToString());
    }

    [Fact]
    public void UnknownExtensionUsesDefaultType()
    {
        Assert.Equal("text/plain", MimeTypes.Default.ContentTypeFor("/x.unknownext", "text/plain"));
        Assert.Equal("text/plain", MimeTypes.Default.ContentTypeFor("/README", "text/plain"));
    }

    [Fact]
    public void CustomTableLooksUpCaseInsensitively()
    {
        var t = new MimeTypes([new("md", "text/markdown"), new("html", "text/x-custom")]);
        Assert.Equal("text/markdown", t.Find("MD"));
        Assert.Equal("text/x-custom", t.Find("html"));
        Assert.Null(t.Find("css"));
        Assert.Null(t.Find(""));
    }

    [Fact]
    public void BuiltInTableHasEveryEntryOfDebianMimeTypes()
    {
        const string path = "/etc/nginx/mime.types";
        Assert.True(File.Exists(path), "nginx (Debian's nginx-common) provides /etc/nginx/mime.types; test.sh installs it");
        var text = File.ReadAllText(path);
        var body = text[(text.IndexOf('{') + 1)..text.LastIndexOf('}')];
        var checkedCount = 0;
        foreach (var statement in body.Split(';'))
        {
            var words = statement.Split([' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries);
            for (var i = 1; i < words.Length; i++)
            {
                Assert.Equal(words[0], MimeTypes.Default.Find(words[i]));
                checkedCount++;
            }
        }

        Assert.Equal(checkedCount, MimeTypes.Default.Count);
        Assert.True(checkedCount > 100);
    }
}
