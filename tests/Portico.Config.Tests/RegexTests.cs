using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Config.Tests;

/// <summary>PCRE semantics nginx users rely on, on .NET's engine.</summary>
public class RegexTests
{
    private static readonly Directive At = new("location", [], null, "t.conf", 1);

    [Fact]
    public void GroupsAreNumberedInPcreOrder()
    {
        var re = NginxRegex.Compile(@"^/(?<name>[a-z]+)/(\d+)/(?P<tail>.*)$", false, At, null);
        var m = re.Match("/abc/42/rest");
        Assert.Equal("abc", m.Groups[1].Value);
        Assert.Equal("42", m.Groups[2].Value);
        Assert.Equal("rest", m.Groups[3].Value);
        Assert.Equal(3, re.CaptureCount);
        Assert.Equal([("name", 1), ("tail", 3)], re.Names);
    }

    [Fact]
    public void ParenthesesInClassesAndEscapesAreNotGroups()
    {
        var re = NginxRegex.Compile(@"^[(]\((x)[)(]$", false, At, null);
        Assert.Equal(1, re.CaptureCount);
        Assert.Equal("x", re.Match("((x)").Groups[1].Value);
    }

    [Fact]
    public void NonCapturingAndLookaroundsKeepNumbering()
    {
        var re = NginxRegex.Compile(@"(?:a)(?=b)(b)(?<!c)(?i)(d)", false, At, null);
        Assert.Equal(2, re.CaptureCount);
        var m = re.Match("abD");
        Assert.Equal("b", m.Groups[1].Value);
        Assert.Equal("D", m.Groups[2].Value);
    }

    [Fact]
    public void NamedBackreferences()
    {
        var re = NginxRegex.Compile(@"^(?P<w>\w)-(?P=w)$", false, At, null);
        Assert.Matches(re, "a-a");
        Assert.DoesNotMatch(re, "a-b");
    }

    [Fact]
    public void NamedCapturesAreDeclaredAsVariables()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("server { server_name ~^(?<Sub>.+)\\.x$; location ~ ^/(?<id>\\d+) { return 200; } }"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        Assert.Contains("sub", result.Model!.DeclaredVariables);
        Assert.Contains("id", result.Model.DeclaredVariables);
    }

    [Fact]
    public void InvalidRegexIsAnEmerg()
    {
        var error = ConfigHarness.FirstError(ConfigHarness.Http("server {\n location ~ ^/(unclosed { return 200; }\n}"));
        Assert.StartsWith("[emerg] pcre2_compile() failed: ", error, StringComparison.Ordinal);
        Assert.DoesNotContain("?<1>", error, StringComparison.Ordinal);
        Assert.EndsWith(" in \"^/(unclosed\" in " + ConfigHarness.Main + ":4", error, StringComparison.Ordinal);
    }
}
