using Portico.Config.Model;
using Portico.Pipeline;

namespace Portico.Config.Tests;

/// <summary>http → server → location inheritance with nginx's rules.</summary>
public class InheritanceTests
{
    [Fact]
    public void ScalarsInheritUntilALevelSetsThem()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("""
            server_tokens off;
            server {
                location /a/ { }
                location /b/ { server_tokens on; location /b/c/ { } }
            }
            server { server_tokens on; location / { } }
            """));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        var http = result.Model!.Http!;
        var s1 = http.Servers[0];
        Assert.Equal(ServerTokens.Off, s1.Settings.Get<HttpCoreSettings>().ServerTokens);
        Assert.Equal(ServerTokens.Off, s1.Locations[0].Settings.Get<HttpCoreSettings>().ServerTokens);
        Assert.Equal(ServerTokens.On, s1.Locations[1].Settings.Get<HttpCoreSettings>().ServerTokens);
        Assert.Equal(ServerTokens.On, s1.Locations[1].Children[0].Settings.Get<HttpCoreSettings>().ServerTokens);
        Assert.Equal(ServerTokens.On, http.Servers[1].Locations[0].Settings.Get<HttpCoreSettings>().ServerTokens);
    }

    [Fact]
    public void DefaultsApplyWhenNoLevelSetsAValue()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("server { location / { } }"));
        var loc = result.Model!.Http!.Servers[0].Locations[0].Settings.Get<HttpCoreSettings>();
        Assert.Equal("text/plain", loc.DefaultType);
        Assert.Equal(ServerTokens.On, loc.ServerTokens);
        Assert.True(loc.AbsoluteRedirect);
        Assert.False(loc.ServerNameInRedirect);
    }

    [Fact]
    public void ErrorLogListsAreReplacedPerLevel()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("""
            error_log logs/http.log warn;
            server {
                location /a/ { error_log logs/a.log info; error_log stderr; }
                location /b/ { }
            }
            """));
        var s = result.Model!.Http!.Servers[0];
        var a = s.Locations[0].Settings.Get<ErrorLogSettings>().Logs!;
        Assert.Equal([("/etc/portico/logs/a.log", Syntax.LogLevel.Info), ("stderr", Syntax.LogLevel.Error)], a.Select(l => (l.Path, l.Level)));
        var b = s.Locations[1].Settings.Get<ErrorLogSettings>().Logs!;
        Assert.Equal([("/etc/portico/logs/http.log", Syntax.LogLevel.Warn)], b.Select(l => (l.Path, l.Level)));
    }

    [Fact]
    public void ServerLevelSettingsDoNotReachLocationsOfOtherServers()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("server { merge_slashes off; } server { }"));
        Assert.False(result.Model!.Http!.Servers[0].Settings.Get<HttpCoreServerSettings>().MergeSlashes);
        Assert.True(result.Model.Http.Servers[1].Settings.Get<HttpCoreServerSettings>().MergeSlashes);
    }
}
