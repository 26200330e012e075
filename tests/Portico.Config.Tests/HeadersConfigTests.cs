using Portico.Headers;

namespace Portico.Config.Tests;

/// <summary>Golden tests of add_header, add_trailer and expires: nginx's messages and inheritance.</summary>
public class HeadersConfigTests
{
    private const string F = ConfigHarness.Main;

    [Theory]
    [InlineData("expires foo;", "\"expires\" directive invalid value")]
    [InlineData("expires modified epoch;", "\"expires\" directive invalid value")]
    [InlineData("expires modified @1h;", "\"expires\" directive daily time cannot be used with \"modified\" parameter")]
    [InlineData("expires @25h;", "\"expires\" directive daily time value must be less than 24 hours")]
    [InlineData("expires foo 1h;", "\"expires\" directive invalid value")]
    [InlineData("expires 1h; expires 2h;", "\"expires\" directive is duplicate")]
    [InlineData("expires 1h 2h 3h;", "invalid number of arguments in \"expires\" directive")]
    [InlineData("add_header X;", "invalid number of arguments in \"add_header\" directive")]
    [InlineData("add_header X y sometimes;", "invalid parameter \"sometimes\"")]
    [InlineData("add_trailer X y;", "the \"add_trailer\" directive is not supported by Portico: Kestrel cannot send HTTP/1.1 response trailers")]
    [InlineData("expires -;", "\"expires\" directive invalid value")]
    public void ReportsNginxMessage(string httpBody, string message)
    {
        Assert.Equal("[emerg] " + message + " in " + F + ":3", ConfigHarness.FirstError(ConfigHarness.Http(httpBody)));
    }

    [Fact]
    public void ALevelWithItsOwnAddHeaderDoesNotInherit()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http(
            "add_header X-Http h;\nexpires 1h;\nserver {\n location /a/ { add_header X-A a always; }\n location /b/ { expires off; }\n}"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        var server = result.Model!.Http!.Servers[0];
        var a = server.Locations[0].Settings.Get<HeadersSettings>();
        var b = server.Locations[1].Settings.Get<HeadersSettings>();
        Assert.Equal("X-A", Assert.Single(a.Headers!).Name);
        Assert.True(a.Headers![0].Always);
        Assert.Equal(ExpiresKind.Access, a.Expires!.Kind);
        Assert.Equal(3600, a.Expires.Seconds);
        Assert.Equal("X-Http", Assert.Single(b.Headers!).Name);
        Assert.Equal(ExpiresKind.Off, b.Expires!.Kind);
    }

    [Fact]
    public void HeaderKindsFollowNginxTable()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http(
            "add_header cache-control x;\nadd_header Link y;\nadd_header ETag \"\";\nadd_header Last-Modified z;\nadd_header X-Other w;"));
        var kinds = result.Model!.Http!.Settings.Get<HeadersSettings>().Headers!.Select(h => h.Kind).ToArray();
        Assert.Equal([HeaderKind.Multi, HeaderKind.Multi, HeaderKind.ETag, HeaderKind.LastModified, HeaderKind.Add], kinds);
        Assert.Null(result.Model.Http.Settings.Get<HeadersSettings>().Headers![2].Value);
    }

    [Fact]
    public void ExpiresWithVariablesIsParsedPerRequest()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("expires modified $arg_exp;"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        var expires = result.Model!.Http!.Settings.Get<HeadersSettings>().Expires!;
        Assert.NotNull(expires.Value);
        Assert.Equal(ExpiresKind.Modified, expires.Kind);
    }
}
