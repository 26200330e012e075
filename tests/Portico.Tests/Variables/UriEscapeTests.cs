using Portico.Variables;

namespace Portico.Tests.Variables;

/// <summary>nginx's ngx_escape_uri (ARGS, REFRESH) and ngx_unescape_uri (REDIRECT).</summary>
public class UriEscapeTests
{
    [Theory]
    [InlineData("a b", "a%20b")]
    [InlineData("a+b", "a%2Bb")]
    [InlineData("a&b=c;d#e%f?g", "a%26b=c%3Bd%23e%25f%3Fg")]
    [InlineData("a/b:c@d!$'()*,", "a/b:c@d!$'()*,")]
    [InlineData("\"<>\\^`{|}", "%22%3C%3E%5C%5E%60%7B%7C%7D")]
    [InlineData("é", "%C3%A9")]
    [InlineData("~_.-", "~_.-")]
    [InlineData("plain", "plain")]
    public void Args(string input, string expected)
    {
        Assert.Equal(expected, UriEscape.Escape(input, UriEscapeKind.Args));
    }

    [Theory]
    [InlineData("/a b\"<>'", "/a%20b%22%3C%3E%27")]
    [InlineData("http://h/x?a=1&b=2#f", "http://h/x?a=1&b=2#f")]
    [InlineData("/%41", "/%41")]
    public void Refresh(string input, string expected)
    {
        Assert.Equal(expected, UriEscape.Escape(input, UriEscapeKind.Refresh));
    }

    [Theory]
    [InlineData("http://h/a%20b", "http://h/a%20b")]
    [InlineData("http://h/%41%62", "http://h/Ab")]
    [InlineData("/%2F%25%20", "//%25%20")]
    [InlineData("/a%3Fb%41", "/a?b%41")]
    [InlineData("/x?y=%41", "/x?y=%41")]
    [InlineData("/a%zz", "/azz")]
    [InlineData("/a%4", "/a")]
    [InlineData("/a%4z", "/a")]
    [InlineData("/no-escapes", "/no-escapes")]
    public void UnescapeRedirect(string input, string expected)
    {
        Assert.Equal(expected, UriEscape.UnescapeRedirect(input));
    }

    [Fact]
    public void HeaderValuesCarryOnlyAscii()
    {
        Assert.Equal("/%C3%A9?a", UriEscape.ForHeader("/é?a"));
        Assert.Equal("/plain", UriEscape.ForHeader("/plain"));
    }
}
