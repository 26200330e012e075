using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using Portico.Compilation;
using Portico.Config;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Logging;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Tests.Logging;

public class LogFormatTests
{
    private static LogFormatSpec Parse(params string[] args) => LogFormatSpec.Parse("f", args, "/etc/portico/portico.conf", 7);

    [Fact]
    public void SplitsLiteralsAndVariablesAcrossArguments()
    {
        var f = Parse("$remote_addr - [", "${status}x", "$a_b$c");
        Assert.Equal(LogEscape.Default, f.Escape);
        Assert.Equal(
            new[] { new LogFormatPart(null, "remote_addr"), new LogFormatPart(" - [", null), new LogFormatPart(null, "status"), new LogFormatPart("x", null), new LogFormatPart(null, "a_b"), new LogFormatPart(null, "c") },
            f.Parts);
    }

    [Theory]
    [InlineData("escape=json", LogEscape.Json)]
    [InlineData("escape=none", LogEscape.None)]
    [InlineData("escape=default", LogEscape.Default)]
    public void ReadsEscape(string arg, LogEscape expected)
    {
        var f = Parse(arg, "$uri");
        Assert.Equal(expected, f.Escape);
        Assert.Single(f.Parts);
    }

    [Fact]
    public void EscapeAloneIsAnEmptyFormat() => Assert.Empty(Parse("escape=json").Parts);

    [Theory]
    [InlineData(new[] { "escape=xml", "$uri" }, "unknown log format escaping \"xml\"")]
    [InlineData(new[] { "a $" }, "invalid parameter \"$\"")]
    [InlineData(new[] { "a ${" }, "invalid parameter \"${\"")]
    [InlineData(new[] { "${} tail" }, "invalid parameter \"${} tail\"")]
    [InlineData(new[] { "$-x" }, "invalid parameter \"$-x\"")]
    [InlineData(new[] { "${status" }, "the closing bracket in \"status\" variable is missing")]
    public void RejectsWhatNginxRejects(string[] args, string message)
    {
        var e = Assert.Throws<ConfigException>(() => Parse(args));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void UnknownVariableIsAnErrorAtCompileTime()
    {
        var registry = new VariableRegistry();
        var e = Assert.Throws<ConfigException>(() => CompiledLogFormat.Compile(Parse("$nope"), registry));
        Assert.Equal("unknown \"nope\" variable", e.Message);
        Assert.Equal(7, e.Line);
    }

    [Fact]
    public void DefaultEscapingIsNginxs()
    {
        // Controls, '"', '\', DEL and every byte of non-ASCII UTF-8 as \xXX; the rest as it is.
        Assert.Equal("\\x01\\x1F\\x7F\\x22\\x5C\\xC3\\xA9\\x09. ok'`~", Escape("\u0001\u001f\u007f\"\\é\t. ok'`~", LogEscape.Default));
        Assert.Equal("\\xF0\\x9F\\x98\\x80", Escape("😀", LogEscape.Default));
        Assert.Equal("-", Escape(null, LogEscape.Default));
        Assert.Equal(string.Empty, Escape(string.Empty, LogEscape.Default));
    }

    [Fact]
    public void RawBytesThatAreNotUtf8AreLoggedAsTheBytesTheyWere()
    {
        var text = RawText.Decode([(byte)'G', 0x01, 0x7f, 0xff, 0xc3, 0xa9, 0xe9]);
        Assert.Equal("G\\x01\\x7F\\xFF\\xC3\\xA9\\xE9", Escape(text, LogEscape.Default));
    }

    [Fact]
    public void JsonEscapingIsNginxs()
    {
        Assert.Equal("\\u0001\\u001F\u007f\\\"\\\\é\\t\\n\\r\\b\\f.", Escape("\u0001\u001f\u007f\"\\é\t\n\r\b\f.", LogEscape.Json));
        Assert.Equal(string.Empty, Escape(null, LogEscape.Json));
    }

    [Fact]
    public void NoneWritesValuesAsTheyAre()
    {
        Assert.Equal("\u0001\"\\é", Escape("\u0001\"\\é", LogEscape.None));
        Assert.Equal(string.Empty, Escape(null, LogEscape.None));
    }

    private static string Escape(string? value, LogEscape escape)
    {
        var b = new LogLineBuilder(4);
        try
        {
            b.AppendValue(value, escape);
            return Encoding.UTF8.GetString(b.Written);
        }
        finally
        {
            b.Dispose();
        }
    }

    [Fact]
    public void RendersCombinedLikeNginx()
    {
        var (r, registry) = Request(http =>
        {
            http.Request.Method = "GET";
            http.Request.Headers.Referer = "http://r/\"x";
            http.Request.Headers.UserAgent = "UA é";
            http.Request.Headers.Authorization = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:pw"));
            http.Response.StatusCode = 404;
        });
        var line = Render(LogFormatSpec.Combined, registry, r);
        Assert.Matches(@"^192\.0\.2\.7 - bob \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ""GET /a\?b=1 HTTP/1\.1"" 404 0 ""http://r/\\x22x"" ""UA \\xC3\\xA9""\n$", line);
    }

    [Fact]
    public void LogOperationsAreNotEscapedAndMissingVariablesAreDashes()
    {
        var (r, registry) = Request(http => http.Response.StatusCode = 200);
        r.Status = 7;
        var line = Render(Parse("$status|$pipe|$http_x_none|${request_length}|$bytes_sent|$msec"), registry, r);
        Assert.Matches(@"^007\|\.\|-\|0\|0\|\d+\.\d{3}\n$", line);
    }

    [Fact]
    public void JsonFormatLeavesMissingValuesEmpty()
    {
        var (r, registry) = Request(http => http.Request.Headers["X-Hostile"] = "a\"b\\c\u0001");
        var line = Render(Parse("escape=json", "{\"h\":\"$http_x_hostile\",\"n\":\"$http_x_none\"}"), registry, r);
        Assert.Equal("{\"h\":\"a\\\"b\\\\c\\u0001\",\"n\":\"\"}\n", line);
    }

    private static string Render(LogFormatSpec spec, VariableRegistry registry, RequestContext r)
    {
        var format = CompiledLogFormat.Compile(spec, registry);
        var b = new LogLineBuilder(8);
        try
        {
            format.Render(r, ref b);
            return Encoding.UTF8.GetString(b.Written);
        }
        finally
        {
            b.Dispose();
        }
    }

    /// <summary>A request on a snapshot with the core and log variables, outside any server.</summary>
    internal static (RequestContext Request, VariableRegistry Registry) Request(Action<DefaultHttpContext> setup)
    {
        var http = new DefaultHttpContext();
        http.Request.Method = "GET";
        http.Request.Protocol = "HTTP/1.1";
        http.Request.Path = "/a";
        http.Request.QueryString = new QueryString("?b=1");
        var feature = http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()!;
        feature.RawTarget = "/a?b=1";
        setup(http);

        var registry = new VariableRegistry();
        var services = new HostServices(new LogWriter(start: false), TimeProvider.System, new EmptyServices());
        var load = new ConfigLoadResult { Paths = new ConfigPaths("/p/", "/p/conf/", "/p/conf/x.conf") };
        var snapshot = new RuntimeSnapshot(1, load, registry, ErrorLog.Stderr(), services);
        var builder = new SnapshotBuilder(snapshot, []);
        new HttpCoreModule().RegisterVariables(registry, builder);
        new LogModule().RegisterVariables(registry, builder);
        var r = new RequestContext(http, snapshot, null!, new ClientConnection(IPAddress.Parse("192.0.2.7"), 5555, IPAddress.Loopback, 80));
        return (r, registry);
    }

    private sealed class EmptyServices : IServiceProvider
    {
        public object? GetService(Type serviceType) => null;
    }
}
