using Portico.Rewrite;

namespace Portico.Tests.Rewrite;

/// <summary>How nginx splits a rewrite replacement into URI and arguments, and when it redirects.</summary>
public class RewriteReplacementTests
{
    [Fact]
    public void WithoutQuestionMarkTheArgumentsAreKept()
    {
        var r = RewriteReplacement.Parse("/show/$1", false);
        Assert.Equal("/show/$1", r.UriText);
        Assert.Null(r.ArgsText);
        Assert.True(r.AddArgs);
        Assert.False(r.IsRedirect);
    }

    [Fact]
    public void AQuestionMarkStartsNewArgumentsAndTheOldOnesAreAppended()
    {
        var r = RewriteReplacement.Parse("/show?u=$1&v=2", false);
        Assert.Equal("/show", r.UriText);
        Assert.Equal("u=$1&v=2", r.ArgsText);
        Assert.True(r.AddArgs);
    }

    [Fact]
    public void ATrailingQuestionMarkDropsTheOriginalArguments()
    {
        var r = RewriteReplacement.Parse("/show?", false);
        Assert.Equal("/show", r.UriText);
        Assert.Null(r.ArgsText);
        Assert.False(r.AddArgs);

        var withArgs = RewriteReplacement.Parse("/show?u=$1?", false);
        Assert.Equal("/show", withArgs.UriText);
        Assert.Equal("u=$1", withArgs.ArgsText);
        Assert.False(withArgs.AddArgs);
    }

    [Fact]
    public void OnlyTheFirstQuestionMarkSplits()
    {
        var r = RewriteReplacement.Parse("/a?b=?c", false);
        Assert.Equal("/a", r.UriText);
        Assert.Equal("b=?c", r.ArgsText);
    }

    [Theory]
    [InlineData("http://example.com/$1")]
    [InlineData("https://example.com/$1")]
    [InlineData("$scheme://$host/x")]
    public void AbsoluteReplacementsAreRedirects(string text)
    {
        var r = RewriteReplacement.Parse(text, false);
        Assert.True(r.IsRedirect);
        Assert.Equal(text, r.UriText);
        Assert.Null(r.ArgsText);
    }

    [Fact]
    public void RedirectsKeepTheQuestionMarkAndJoinArgumentsWithAmpersand()
    {
        var r = RewriteReplacement.Parse("http://h/x?z=1", false);
        Assert.Equal("http://h/x?z=1", r.UriText);
        Assert.True(r.HasQuestionMark);
        Assert.True(r.AddArgs);

        var plain = RewriteReplacement.Parse("/new/$1", true);
        Assert.True(plain.IsRedirect);
        Assert.False(plain.HasQuestionMark);

        var dropped = RewriteReplacement.Parse("/new/$1?", true);
        Assert.False(dropped.AddArgs);
        Assert.Equal("/new/$1", dropped.UriText);
    }

    [Theory]
    [InlineData("/a?b", 2)]
    [InlineData("$args?x", 5)]
    [InlineData("${args}?x", 7)]
    [InlineData("$1?x", 2)]
    [InlineData("/plain", -1)]
    [InlineData("$is_args", -1)]
    public void QuestionMarksInsideVariableNamesDoNotCount(string text, int index)
    {
        Assert.Equal(index, RewriteReplacement.FirstLiteralQuestionMark(text));
    }
}
