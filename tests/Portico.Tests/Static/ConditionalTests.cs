using Microsoft.AspNetCore.Http;
using Portico.Static;

namespace Portico.Tests.Static;

public class ConditionalTests
{
    private const long Mtime = 1577934245; // Thu, 02 Jan 2020 03:04:05 GMT
    private const string Tag = "\"5e0d5da5-c\"";

    private static int Eval(IfModifiedSince mode = IfModifiedSince.Exact, params (string, string)[] headers)
    {
        var h = new HeaderDictionary();
        foreach (var (k, v) in headers)
        {
            h[k] = v;
        }

        return Conditional.Evaluate(h, Mtime, Tag, mode);
    }

    [Fact]
    public void EtagAndDateFormatsAreNginxs()
    {
        Assert.Equal(Tag, Conditional.Etag(Mtime, 12));
        Assert.Equal("Thu, 02 Jan 2020 03:04:05 GMT", Conditional.FormatHttpTime(Mtime));
        Assert.Equal(Mtime, Conditional.ParseHttpTime("Thu, 02 Jan 2020 03:04:05 GMT"));
        Assert.Equal(Mtime, Conditional.ParseHttpTime("Thursday, 02-Jan-20 03:04:05 GMT"));
        Assert.Equal(Mtime, Conditional.ParseHttpTime("Thu Jan  2 03:04:05 2020"));
        Assert.Null(Conditional.ParseHttpTime("yesterday"));
    }

    [Fact]
    public void NoConditionsSend()
    {
        Assert.Equal(200, Eval());
    }

    [Theory]
    [InlineData("Thu, 02 Jan 2020 03:04:05 GMT", IfModifiedSince.Exact, 304)]
    [InlineData("Thu, 02 Jan 2020 03:04:06 GMT", IfModifiedSince.Exact, 200)]
    [InlineData("Thu, 02 Jan 2020 03:04:06 GMT", IfModifiedSince.Before, 304)]
    [InlineData("Thu, 02 Jan 2020 03:04:04 GMT", IfModifiedSince.Before, 200)]
    [InlineData("Thu, 02 Jan 2020 03:04:05 GMT", IfModifiedSince.Off, 200)]
    [InlineData("garbage", IfModifiedSince.Exact, 200)]
    public void IfModifiedSinceHeader(string value, IfModifiedSince mode, int expected)
    {
        Assert.Equal(expected, Eval(mode, ("If-Modified-Since", value)));
    }

    [Theory]
    [InlineData("\"5e0d5da5-c\"", 304)]
    [InlineData("W/\"5e0d5da5-c\"", 304)]
    [InlineData("\"other\", \"5e0d5da5-c\"", 304)]
    [InlineData("*", 304)]
    [InlineData("\"other\"", 200)]
    [InlineData("\"5e0d5da5-c\"x", 200)]
    public void IfNoneMatch(string value, int expected)
    {
        Assert.Equal(expected, Eval(IfModifiedSince.Exact, ("If-None-Match", value)));
    }

    [Fact]
    public void BothConditionsMustHold()
    {
        Assert.Equal(200, Eval(IfModifiedSince.Exact, ("If-Modified-Since", "Thu, 02 Jan 2020 03:04:05 GMT"), ("If-None-Match", "\"x\"")));
        Assert.Equal(304, Eval(IfModifiedSince.Exact, ("If-Modified-Since", "Thu, 02 Jan 2020 03:04:05 GMT"), ("If-None-Match", Tag)));
    }

    [Theory]
    [InlineData("If-Match", "\"other\"", 412)]
    [InlineData("If-Match", "W/\"5e0d5da5-c\"", 412)]
    [InlineData("If-Match", "\"5e0d5da5-c\"", 200)]
    [InlineData("If-Unmodified-Since", "Thu, 02 Jan 2020 03:04:04 GMT", 412)]
    [InlineData("If-Unmodified-Since", "Thu, 02 Jan 2020 03:04:05 GMT", 200)]
    public void Preconditions(string header, string value, int expected)
    {
        Assert.Equal(expected, Eval(IfModifiedSince.Exact, (header, value)));
    }
}
