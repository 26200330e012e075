using Microsoft.AspNetCore.Http;
using Portico.Pipeline;

namespace Portico.Tests.Pipeline;

/// <summary>The parsing behind $arg_NAME, $cookie_NAME, $request_uri and nginx's time formats.</summary>
public class CoreVariableTests
{
    [Theory]
    [InlineData("a=1&b=2", "a", "1")]
    [InlineData("a=1&b=2", "b", "2")]
    [InlineData("A=1", "a", "1")]
    [InlineData("xa=1&a=2", "a", "2")]
    [InlineData("a&a=3", "a", "3")]
    [InlineData("a", "a", null)]
    [InlineData("a=", "a", "")]
    [InlineData("ab=1", "a", null)]
    [InlineData("a=1=2&c", "a", "1=2")]
    [InlineData("", "a", null)]
    [InlineData("q=a%20b", "q", "a%20b")]
    public void Arg(string args, string name, string? expected)
    {
        Assert.Equal(expected, HttpCoreModule.Arg(args, name));
    }

    [Theory]
    [InlineData("id=42", "id", "42")]
    [InlineData("a=1; ID=42; b=2", "id", "42")]
    [InlineData("a=1;id = 7 ;b=2", "id", "7 ")]
    [InlineData("idx=1; id=2", "id", "2")]
    [InlineData("a=1, id=3", "id", "3")]
    [InlineData("a=1", "id", null)]
    [InlineData("id", "id", null)]
    public void Cookie(string header, string name, string? expected)
    {
        var context = new DefaultHttpContext();
        context.Request.Headers.Cookie = header;
        Assert.Equal(expected, HttpCoreModule.Cookie(context.Request, name));
    }

    [Fact]
    public void CookieLooksAtEveryCookieHeader()
    {
        var context = new DefaultHttpContext();
        context.Request.Headers.Cookie = new Microsoft.Extensions.Primitives.StringValues(["a=1", "b=2"]);
        Assert.Equal("2", HttpCoreModule.Cookie(context.Request, "b"));
    }

    [Fact]
    public void RequestIdsAreDistinctHexAcrossRefillsOfTheRandomPool()
    {
        // 256 ids use up one 4 KiB draw of random bytes; 1 000 cross three refills.
        var ids = new HashSet<string>();
        for (var i = 0; i < 1000; i++)
        {
            var id = HttpCoreModule.NewRequestId();
            Assert.Matches("^[0-9a-f]{32}$", id);
            Assert.NotEqual(new string('0', 32), id);
            ids.Add(id);
        }

        Assert.Equal(1000, ids.Count);
    }

    [Theory]
    [InlineData("/a/b?x=1", "/a/b?x=1")]
    [InlineData("/a?", "/a?")]
    [InlineData("http://example.com/a?x", "/a?x")]
    [InlineData("http://example.com", "/")]
    [InlineData("https://example.com?x=1", "/?x=1")]
    [InlineData("*", "*")]
    public void RequestUri(string target, string expected)
    {
        Assert.Equal(expected, HttpCoreModule.RequestUri(target));
    }

    [Theory]
    [InlineData(0, "0.000")]
    [InlineData(1, "0.001")]
    [InlineData(1999, "1.999")]
    [InlineData(1700000000123, "1700000000.123")]
    [InlineData(-5, "0.000")]
    public void SecondsWithMilliseconds(long ms, string expected)
    {
        Assert.Equal(expected, HttpCoreModule.FormatSeconds(ms));
    }
}
