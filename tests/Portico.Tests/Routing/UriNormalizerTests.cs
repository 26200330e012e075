using Portico.Routing;

namespace Portico.Tests.Routing;

public class UriNormalizerTests
{
    [Theory]
    [InlineData("/", "/")]
    [InlineData("/a/b", "/a/b")]
    [InlineData("/a//b", "/a/b")]
    [InlineData("/a/./b", "/a/b")]
    [InlineData("/a/../b", "/b")]
    [InlineData("/a/b/..", "/a/")]
    [InlineData("/a/.", "/a/")]
    [InlineData("/a/%2e%2e/b", "/b")]
    [InlineData("/a%2fb", "/a/b")]
    [InlineData("/a%2F..%2Fb", "/b")]
    [InlineData("/%41%42", "/AB")]
    [InlineData("/caf%C3%A9", "/café")]
    [InlineData("/x%20y", "/x y")]
    [InlineData("/a/b/", "/a/b/")]
    [InlineData("/..a/b", "/..a/b")]
    public void Normalizes(string raw, string expected)
    {
        Assert.True(UriNormalizer.TryNormalize(raw, mergeSlashes: true, out var uri));
        Assert.Equal(expected, uri);
    }

    [Theory]
    [InlineData("/..")]
    [InlineData("/../etc/passwd")]
    [InlineData("/a/../../b")]
    [InlineData("/%2e%2e/x")]
    [InlineData("/a%00b")]
    [InlineData("relative")]
    public void RejectsWhatNginxAnswersWith400(string raw) =>
        Assert.False(UriNormalizer.TryNormalize(raw, mergeSlashes: true, out _));

    [Fact]
    public void KeepsDoubleSlashesWhenMergeSlashesIsOff()
    {
        Assert.True(UriNormalizer.TryNormalize("/a//b", mergeSlashes: false, out var uri));
        Assert.Equal("/a//b", uri);
    }

    [Theory]
    [InlineData("/p?a=1&b=2", "/p", "a=1&b=2", null)]
    [InlineData("/p", "/p", "", null)]
    [InlineData("http://h.example:81/p?x", "/p", "x", "h.example:81")]
    [InlineData("http://h.example", "/", "", "h.example")]
    public void SplitsTargets(string target, string path, string query, string? host)
    {
        UriNormalizer.SplitTarget(target, out var p, out var q, out var h);
        Assert.Equal((path, query, host), (p, q, h));
    }
}
