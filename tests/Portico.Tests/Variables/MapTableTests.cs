using System.Text.RegularExpressions;
using Portico.Variables;

namespace Portico.Tests.Variables;

/// <summary>map's lookup: nginx's precedence and its key checks (ngx_hash_add_key).</summary>
public class MapTableTests
{
    private static MapTable<string> Hostnames()
    {
        // The example of nginx's documentation.
        var t = new MapTable<string>(true);
        Assert.Equal(MapKeyResult.Ok, t.Add("example.com", "1"));
        Assert.Equal(MapKeyResult.Ok, t.Add("*.example.com", "1*"));
        Assert.Equal(MapKeyResult.Ok, t.Add("example.org", "2"));
        Assert.Equal(MapKeyResult.Ok, t.Add("*.example.org", "2*"));
        Assert.Equal(MapKeyResult.Ok, t.Add(".example.net", "3"));
        Assert.Equal(MapKeyResult.Ok, t.Add("wap.*", "4"));
        return t;
    }

    [Theory]
    [InlineData("example.com", "1")]
    [InlineData("EXAMPLE.com", "1")]
    [InlineData("www.example.com", "1*")]
    [InlineData("a.b.example.org", "2*")]
    [InlineData("example.net", "3")]
    [InlineData("www.example.net", "3")]
    [InlineData("wap.example.io", "4")]
    [InlineData("wap.a.b", "4")]
    [InlineData("wap", null)]
    [InlineData("example.io", null)]
    [InlineData("", null)]
    public void HostnamesPrecedence(string host, string? expected)
    {
        Assert.Equal(expected, Hostnames().Find(host, out _, out _));
    }

    [Fact]
    public void LongestWildcardWins()
    {
        var t = new MapTable<string>(true);
        t.Add("*.example.com", "short");
        t.Add("*.a.example.com", "long");
        t.Add("www.*", "www");
        t.Add("www.a.*", "www.a");
        Assert.Equal("long", t.Find("x.a.example.com", out _, out _));
        Assert.Equal("short", t.Find("x.b.example.com", out _, out _));
        Assert.Equal("www.a", t.Find("www.a.example", out _, out _));
        Assert.Equal("www", t.Find("www.b.example", out _, out _));
    }

    [Fact]
    public void ExactBeatsWildcardsAndWildcardsBeatRegexes()
    {
        var t = new MapTable<string>(true);
        t.AddRegex(new Regex("example"), "regex");
        t.Add("*.example.com", "wild");
        t.Add("www.example.com", "exact");
        Assert.Equal("exact", t.Find("www.example.com", out var m1, out _));
        Assert.Null(m1);
        Assert.Equal("wild", t.Find("a.example.com", out _, out _));
        Assert.Equal("regex", t.Find("example.org", out var m2, out _));
        Assert.NotNull(m2);
    }

    [Fact]
    public void RegexesAreTriedInOrderAndNotOnEmptyValues()
    {
        var t = new MapTable<string>(false);
        t.AddRegex(new Regex("^a"), "first");
        t.AddRegex(new Regex("b"), "second");
        t.AddRegex(new Regex("^$"), "empty");
        Assert.Equal("first", t.Find("ab", out _, out _));
        Assert.Equal("second", t.Find("cb", out _, out _));
        Assert.Null(t.Find(string.Empty, out _, out _));
    }

    [Fact]
    public void WithoutHostnamesWildcardsAreLiteral()
    {
        var t = new MapTable<string>(false);
        Assert.Equal(MapKeyResult.Ok, t.Add("*.example.com", "literal"));
        Assert.Null(t.Find("www.example.com", out _, out _));
        Assert.Equal("literal", t.Find("*.example.com", out _, out _));
        Assert.Equal(MapKeyResult.Ok, t.Add(string.Empty, "empty"));
        Assert.Equal("empty", t.Find(string.Empty, out _, out _));
    }

    [Theory]
    [InlineData("example.com", "EXAMPLE.COM")]
    [InlineData(".example.com", "example.com")]
    [InlineData("example.com", ".example.com")]
    [InlineData("*.example.com", ".example.com")]
    [InlineData(".example.com", "*.example.com")]
    [InlineData("www.*", "www.*")]
    public void ConflictingKeys(string first, string second)
    {
        var t = new MapTable<string>(true);
        Assert.Equal(MapKeyResult.Ok, t.Add(first, "1"));
        Assert.Equal(MapKeyResult.Conflict, t.Add(second, "2"));
    }

    [Fact]
    public void AnExactNameAndItsStarWildcardDoNotConflict()
    {
        var t = new MapTable<string>(true);
        Assert.Equal(MapKeyResult.Ok, t.Add("example.com", "1"));
        Assert.Equal(MapKeyResult.Ok, t.Add("*.example.com", "2"));
    }

    [Theory]
    [InlineData("*.*.example.com")]
    [InlineData("a..b")]
    [InlineData("www.*.com")]
    [InlineData("*")]
    [InlineData("*example.com")]
    public void InvalidWildcards(string key)
    {
        Assert.Equal(MapKeyResult.InvalidWildcard, new MapTable<string>(true).Add(key, "x"));
    }

    [Fact]
    public void ConvertKeepsEveryEntryAndTheOrderOfRegexes()
    {
        var t = Hostnames();
        t.AddRegex(new Regex("^z"), "z1");
        t.AddRegex(new Regex("^zz"), "z2");
        var c = t.Convert(v => "<" + v + ">");
        Assert.Equal("<1*>", c.Find("a.example.com", out _, out _));
        Assert.Equal("<3>", c.Find("example.net", out _, out _));
        Assert.Equal("<z1>", c.Find("zz", out _, out _));
        Assert.Equal(MapKeyResult.Conflict, c.Add("example.net", "again"));
    }
}
