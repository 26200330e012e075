using Portico.Config.Syntax;

namespace Portico.Config.Tests;

public class LexerTests
{
    private static List<Directive> Parse(string text) =>
        new ConfigParser(new MemoryFileSystem(), "/etc/portico/").ParseText(text, "t.conf");

    [Fact]
    public void QuotesAndEscapes()
    {
        var d = Parse("a \"x y\" 'q\\'s' \"t\\tn\\n\" \\\"bare;")[0];
        Assert.Equal(["x y", "q's", "t\tn\n", "\"bare"], d.Args.Select(a => a.Value));
        Assert.True(d.Args[0].Quoted);
        Assert.False(d.Args[3].Quoted);
    }

    [Fact]
    public void CommentsOnlyAtTokenStart()
    {
        var d = Parse("a b#c # comment\n;")[0];
        Assert.Equal(["b#c"], d.Args.Select(a => a.Value));
    }

    [Fact]
    public void VariableBracesDoNotOpenBlocks()
    {
        var d = Parse("set $a ${b}c;")[0];
        Assert.Equal("${b}c", d.Args[1].Value);
    }

    [Fact]
    public void EmptyQuotedArgument()
    {
        var d = Parse("proxy_set_header Connection \"\";")[0];
        Assert.Equal(string.Empty, d.Args[1].Value);
    }

    [Fact]
    public void BlocksNestAndKeepLines()
    {
        var list = Parse("http {\n  server {\n    listen 80;\n  }\n}\n");
        var server = list[0].Block![0];
        Assert.Equal("server", server.Name);
        Assert.Equal(3, server.Block![0].Line);
    }

    [Fact]
    public void DumpListsEveryFileOnce()
    {
        var fs = new MemoryFileSystem()
            .Add("/c/main.conf", "include a.conf;\ninclude a.conf;\n")
            .Add("/c/a.conf", "pid x;\n");
        var parser = new ConfigParser(fs, "/c/");
        parser.ParseFile("/c/main.conf");
        var dump = parser.Dump.Render();
        Assert.Equal("# configuration file /c/main.conf:\ninclude a.conf;\ninclude a.conf;\n\n# configuration file /c/a.conf:\npid x;\n\n", dump);
    }
}
