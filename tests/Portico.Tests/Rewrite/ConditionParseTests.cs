using Portico.Config.Syntax;
using Portico.Rewrite;

namespace Portico.Tests.Rewrite;

/// <summary>nginx's ngx_http_rewrite_if_condition: how the arguments of "if" become a condition.</summary>
public class ConditionParseTests
{
    private static readonly Directive At = new("if", [], [], "/etc/portico/portico.conf", 7);

    private static ConditionSpec Parse(params string[] args) => ConditionSpec.Parse(args, At, null);

    private static string Error(params string[] args) =>
        Assert.Throws<ConfigException>(() => Parse(args)).Message;

    [Theory]
    [InlineData("($slow)")]
    [InlineData("(|$slow|)")]
    [InlineData("($slow|)")]
    [InlineData("(|$slow)")]
    public void AVariableAloneIsATruthTest(string args)
    {
        var c = Parse(args.Split('|'));
        Assert.Equal(ConditionKind.Variable, c.Kind);
        Assert.Equal("slow", c.VariableName);
    }

    [Fact]
    public void VariableNamesAreLowerCased()
    {
        Assert.Equal("http_user_agent", Parse("($HTTP_User_Agent)").VariableName);
    }

    [Theory]
    [InlineData("=", ConditionKind.Equal)]
    [InlineData("!=", ConditionKind.NotEqual)]
    public void ComparisonsTakeAValueWithVariables(string op, ConditionKind kind)
    {
        var c = Parse("($request_method", op, "$x-POST)");
        Assert.Equal(kind, c.Kind);
        Assert.Equal("request_method", c.VariableName);
        Assert.Equal("$x-POST", c.Value!.Source);
        Assert.False(c.Value.IsConstant);
    }

    [Theory]
    [InlineData("~", ConditionKind.Match, false)]
    [InlineData("~*", ConditionKind.Match, true)]
    [InlineData("!~", ConditionKind.NotMatch, false)]
    [InlineData("!~*", ConditionKind.NotMatch, true)]
    public void RegexOperators(string op, ConditionKind kind, bool caseless)
    {
        var c = Parse("($http_user_agent", op, "MSIE)");
        Assert.Equal(kind, c.Kind);
        Assert.Equal(caseless, c.Caseless);
        Assert.Equal("MSIE", c.Pattern);
        Assert.Equal(caseless, c.Regex!.IsMatch("msie 6"));
        Assert.Matches(c.Regex, "MSIE 6");
    }

    [Fact]
    public void AQuotedRegexFollowedByAParenthesis()
    {
        // if ($http_cookie ~* "id=([^;]+)(?:;|$)") { ... } from nginx's documentation.
        var c = Parse("($http_cookie", "~*", "id=([^;]+)(?:;|$)", ")");
        Assert.Equal("id=([^;]+)(?:;|$)", c.Pattern);
        Assert.Equal("42", c.Regex!.Match("a=1; ID=42; b=2").Groups[1].Value);
    }

    [Theory]
    [InlineData("-f", FileTest.Plain)]
    [InlineData("!-f", FileTest.NotPlain)]
    [InlineData("-d", FileTest.Dir)]
    [InlineData("!-d", FileTest.NotDir)]
    [InlineData("-e", FileTest.Exists)]
    [InlineData("!-e", FileTest.NotExists)]
    [InlineData("-x", FileTest.Exec)]
    [InlineData("!-x", FileTest.NotExec)]
    public void FileTests(string op, FileTest test)
    {
        var c = Parse("(" + op, "/srv$uri)");
        Assert.Equal(ConditionKind.File, c.Kind);
        Assert.Equal(test, c.FileTest);
        Assert.Equal("/srv$uri", c.Value!.Source);
    }

    [Theory]
    [InlineData("$a)", "invalid condition \"$a)\"")]
    [InlineData("($a", "invalid condition \"$a\"")]
    [InlineData("($a|=|b|c)", "invalid condition \"$a\"")]
    [InlineData("($a|=)", "invalid condition \"$a\"")]
    [InlineData("($a|==|b)", "unexpected \"==\" in condition")]
    [InlineData("($a|~~|b)", "unexpected \"~~\" in condition")]
    [InlineData("(-q|/x)", "invalid condition \"-q\"")]
    [InlineData("(!-q|/x)", "invalid condition \"!-q\"")]
    [InlineData("(-f)", "invalid condition \"-f\"")]
    [InlineData("(-f|a|b)", "invalid condition \"-f\"")]
    [InlineData("(foo)", "invalid condition \"foo\"")]
    [InlineData("($)", "invalid condition \"$\"")]
    [InlineData("()", "invalid condition \")\"")]
    public void ReportsNginxErrors(string args, string message)
    {
        Assert.Equal(message, Error(args.Split('|')));
    }

    [Fact]
    public void ErrorsCarryThePosition()
    {
        var e = Assert.Throws<ConfigException>(() => Parse("(foo)"));
        Assert.Equal("[emerg] invalid condition \"foo\" in /etc/portico/portico.conf:7", e.ToDiagnostic().ToString());
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("0", false)]
    [InlineData("00", true)]
    [InlineData("1", true)]
    [InlineData("off", true)]
    [InlineData(null, false)]
    public void Truth(string? value, bool expected)
    {
        Assert.Equal(expected, ConditionSpec.IsTrue(value));
    }

    [Fact]
    public void FileTestResults()
    {
        var file = new FileFacts(true, false, false);
        var dir = new FileFacts(false, true, true);
        Assert.True(ConditionSpec.Evaluate(FileTest.Plain, file));
        Assert.False(ConditionSpec.Evaluate(FileTest.Plain, dir));
        Assert.True(ConditionSpec.Evaluate(FileTest.Dir, dir));
        Assert.True(ConditionSpec.Evaluate(FileTest.Exists, dir));
        Assert.True(ConditionSpec.Evaluate(FileTest.NotExists, FileFacts.Missing));
        Assert.True(ConditionSpec.Evaluate(FileTest.Exec, dir));
        Assert.True(ConditionSpec.Evaluate(FileTest.NotExec, file));
        Assert.True(ConditionSpec.Evaluate(FileTest.NotPlain, FileFacts.Missing));
        Assert.False(ConditionSpec.Evaluate(FileTest.NotDir, dir));
    }

    [Fact]
    public void FileFactsReadTheFileSystem()
    {
        var dir = Path.Combine(Path.GetTempPath(), "portico-cond-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            var file = Path.Combine(dir, "f.txt");
            File.WriteAllText(file, "x");
            Assert.Equal(new FileFacts(true, false, false), FileFacts.Of(file));
            Assert.True(FileFacts.Of(dir).IsDirectory);
            Assert.Equal(FileFacts.Missing, FileFacts.Of(Path.Combine(dir, "none")));
            Assert.Equal(FileFacts.Missing, FileFacts.Of(string.Empty));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserExecute);
                Assert.True(FileFacts.Of(file).IsExecutable);

                // Links are followed, as stat() does; a dangling link does not exist.
                var toFile = Path.Combine(dir, "to-file");
                File.CreateSymbolicLink(toFile, file);
                Assert.True(FileFacts.Of(toFile).IsFile);
                var toDir = Path.Combine(dir, "to-dir");
                File.CreateSymbolicLink(toDir, dir);
                Assert.True(FileFacts.Of(toDir).IsDirectory);
                var dangling = Path.Combine(dir, "dangling");
                File.CreateSymbolicLink(dangling, Path.Combine(dir, "gone"));
                Assert.Equal(FileFacts.Missing, FileFacts.Of(dangling));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
