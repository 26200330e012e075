using Portico.Proxy;

namespace Portico.Tests.Proxy;

/// <summary>The per-location set of header names: case-insensitive, exact names only.</summary>
public class HeaderNameSetTests
{
    private static readonly HeaderNameSet Set = new(["Host", "X-Real-IP", "X-Forwarded-For", "x-forwarded-for", "Connection", "Keep-Alive"]);

    [Theory]
    [InlineData("Host", true)]
    [InlineData("HOST", true)]
    [InlineData("x-real-ip", true)]
    [InlineData("X-Forwarded-For", true)]
    [InlineData("Connection", true)]
    [InlineData("keep-alive", true)]
    [InlineData("User-Agent", false)]        // the length of "Connection" and "Keep-Alive", not in the set
    [InlineData("Hos", false)]
    [InlineData("Hostx", false)]
    [InlineData("X-Forwarded-Proto", false)] // longer than any name in the set
    [InlineData("", false)]
    public void ContainsIgnoresCaseOnly(string name, bool expected) => Assert.Equal(expected, Set.Contains(name));

    [Fact]
    public void AnEmptySetContainsNothing()
    {
        var empty = new HeaderNameSet([]);
        Assert.False(empty.Contains("Host"));
        Assert.False(empty.Contains(string.Empty));
    }
}
