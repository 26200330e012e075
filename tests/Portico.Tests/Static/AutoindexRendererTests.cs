using System.Text;
using Portico.Static;

namespace Portico.Tests.Static;

public class AutoindexRendererTests
{
    private const long Mtime = 1577934245; // 02-Jan-2020 03:04:05 UTC

    private static NativeFiles.DirEntry Dir(string name) => new(Encoding.UTF8.GetBytes(name), new FileStat(0x41ed, 0, 4096, Mtime, 1, 1));

    private static NativeFiles.DirEntry File(string name, long size) => new(Encoding.UTF8.GetBytes(name), new FileStat(0x81a4, 0, size, Mtime, 2, 1));

    private static List<NativeFiles.DirEntry> Sample()
    {
        var list = new List<NativeFiles.DirEntry>
        {
            File("big.bin", 20000),
            File("a b&c<d>.txt", 3),
            Dir("Some long directory name that exceeds fifty characters ok"),
        };
        AutoindexRenderer.Sort(list);
        return list;
    }

    [Fact]
    public void HtmlIsNginxsByteForByte()
    {
        // Captured from nginx 1.22 (autoindex on) for the same entries.
        const string expected =
            "<html>\r\n<head><title>Index of /ai/</title></head>\r\n<body>\r\n<h1>Index of /ai/</h1><hr><pre><a href=\"../\">../</a>\r\n" +
            "<a href=\"Some%20long%20directory%20name%20that%20exceeds%20fifty%20characters%20ok/\">Some long directory name that exceeds fifty cha..&gt;</a> 02-Jan-2020 03:04                   -\r\n" +
            "<a href=\"a%20b%26c%3Cd%3E.txt\">a b&amp;c&lt;d&gt;.txt</a>                                       02-Jan-2020 03:04                   3\r\n" +
            "<a href=\"big.bin\">big.bin</a>                                            02-Jan-2020 03:04               20000\r\n" +
            "</pre><hr></body>\r\n</html>\r\n";
        Assert.Equal(expected, Encoding.UTF8.GetString(AutoindexRenderer.Html("/ai/", Sample(), exactSize: true, 0)));
    }

    [Fact]
    public void HtmlWithScaledSizes()
    {
        var text = Encoding.UTF8.GetString(AutoindexRenderer.Html("/an/", Sample(), exactSize: false, 0));
        Assert.Contains("02-Jan-2020 03:04       -\r\n", text);
        Assert.Contains("02-Jan-2020 03:04       3\r\n", text);
        Assert.Contains("02-Jan-2020 03:04     20K\r\n", text);
    }

    [Theory]
    [InlineData(9999, "   9999")]
    [InlineData(10000, "    10K")]
    [InlineData(1048575, "  1024K")]
    [InlineData(1048576, "     1M")]
    [InlineData(1572864, "     2M")]
    [InlineData(1073741824, "     1G")]
    public void ScaledSizeRoundsLikeNginx(long size, string expected)
    {
        var text = Encoding.UTF8.GetString(AutoindexRenderer.Html("/", [File("f", size)], exactSize: false, 0));
        Assert.Contains("03:04 " + expected + "\r\n", text);
    }

    [Fact]
    public void LocalTimeShiftsByTheOffset()
    {
        var text = Encoding.UTF8.GetString(AutoindexRenderer.Html("/", [File("f", 1)], exactSize: true, 2 * 3600));
        Assert.Contains(" 02-Jan-2020 05:04 ", text);
    }

    [Fact]
    public void DirectoryNameOfFiftyBytesHasNoRoomForTheSlash()
    {
        var name = new string('d', 50);
        var text = Encoding.UTF8.GetString(AutoindexRenderer.Html("/", [Dir(name)], exactSize: true, 0));
        Assert.Contains("<a href=\"" + name + "/\">" + name + "</a> 02-Jan-2020", text);
    }

    [Fact]
    public void JsonAndJsonp()
    {
        const string entries =
            "[\r\n{ \"name\":\"Some long directory name that exceeds fifty characters ok\", \"type\":\"directory\", \"mtime\":\"Thu, 02 Jan 2020 03:04:05 GMT\" },\r\n" +
            "{ \"name\":\"a b&c<d>.txt\", \"type\":\"file\", \"mtime\":\"Thu, 02 Jan 2020 03:04:05 GMT\", \"size\":3 },\r\n" +
            "{ \"name\":\"big.bin\", \"type\":\"file\", \"mtime\":\"Thu, 02 Jan 2020 03:04:05 GMT\", \"size\":20000 }\r\n]";
        Assert.Equal(entries, Encoding.UTF8.GetString(AutoindexRenderer.Json(Sample(), null)));
        Assert.Equal("/* callback */\r\nfoo(" + entries + ");", Encoding.UTF8.GetString(AutoindexRenderer.Json(Sample(), "foo")));
        Assert.Equal("[\r\n]", Encoding.UTF8.GetString(AutoindexRenderer.Json([], null)));
    }

    [Fact]
    public void JsonEscapesQuotesAndControls()
    {
        var text = Encoding.UTF8.GetString(AutoindexRenderer.Json([File("q\"b\\\n\u0001", 1)], null));
        Assert.Contains("\"name\":\"q\\\"b\\\\\\n\\u0001\"", text);
    }

    [Fact]
    public void Xml()
    {
        const string expected = "<?xml version=\"1.0\"?>\r\n<list>\r\n" +
            "<directory mtime=\"2020-01-02T03:04:05Z\">Some long directory name that exceeds fifty characters ok</directory>\r\n" +
            "<file mtime=\"2020-01-02T03:04:05Z\" size=\"3\">a b&amp;c&lt;d&gt;.txt</file>\r\n" +
            "<file mtime=\"2020-01-02T03:04:05Z\" size=\"20000\">big.bin</file>\r\n</list>\r\n";
        Assert.Equal(expected, Encoding.UTF8.GetString(AutoindexRenderer.Xml(Sample())));
    }

    [Theory]
    [InlineData("foo", true)]
    [InlineData("jQuery_1.2", true)]
    [InlineData("a-b", false)]
    [InlineData("alert(1)", false)]
    public void JsonpCallbackNames(string name, bool valid)
    {
        Assert.Equal(valid, AutoindexRenderer.ValidCallback(name));
    }
}
