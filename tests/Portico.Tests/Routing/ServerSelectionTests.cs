using System.Net;
using Portico.Compilation;
using Portico.Routing;

namespace Portico.Tests.Routing;

/// <summary>nginx's server_name selection per listen address, as tables.</summary>
public class ServerSelectionTests
{
    private static readonly RuntimeSnapshot Names = TestSnapshots.Http("""
        server { listen 127.0.0.1:8080; server_name default_one; return 200 d; }
        server { listen 127.0.0.1:8080; server_name example.org www.example.org; }
        server { listen 127.0.0.1:8080; server_name *.example.org; }
        server { listen 127.0.0.1:8080; server_name *.mail.example.org; }
        server { listen 127.0.0.1:8080; server_name mail.*; }
        server { listen 127.0.0.1:8080; server_name mail.example.*; }
        server { listen 127.0.0.1:8080; server_name .example.net; }
        server { listen 127.0.0.1:8080; server_name ~^www\d+\.example\.net$; }
        server { listen 127.0.0.1:8080; server_name ~^(?<user>.+)\.example\.com$; }
        server { listen 127.0.0.1:8080; server_name ~^.*\.example\.com$; }
        server { listen 127.0.0.1:8080; server_name ""; }
        server { listen 127.0.0.1:8080; server_name _; }
        """);

    private static string Select(string? host, out System.Text.RegularExpressions.Match? match)
    {
        var listener = Names.Listeners["127.0.0.1:8080"];
        var server = listener.Addresses[0].Names.Find(host, out match);
        return server.Block.Names.Count > 0 ? Describe(server) : "?";
    }

    private static string Describe(ServerRuntime s) => string.Join(' ', s.Block.Names.Select(n => n.Kind switch
    {
        Config.Model.ServerNameKind.LeadingWildcard => "*." + n.Name,
        Config.Model.ServerNameKind.TrailingWildcard => n.Name + ".*",
        Config.Model.ServerNameKind.Regex => "~" + n.Name,
        _ => n.Name,
    }));

    [Theory]
    [InlineData("example.org", "example.org www.example.org")]
    [InlineData("www.example.org", "example.org www.example.org")]   // exact beats *.example.org
    [InlineData("foo.example.org", "*.example.org")]
    [InlineData("a.b.example.org", "*.example.org")]
    [InlineData("x.mail.example.org", "*.mail.example.org")]         // longest leading wildcard
    [InlineData("mail.example.org", "*.example.org")]                // leading wildcard beats trailing
    [InlineData("mail.example.com", "mail.example.*")]               // longest trailing wildcard
    [InlineData("mail.foo", "mail.*")]
    [InlineData("example.net", "example.net *.example.net")]         // .example.net covers the name itself
    [InlineData("www1.example.net", "example.net *.example.net")]    // wildcard beats regex
    [InlineData("bob.example.com", "~^(?<user>.+)\\.example\\.com$")] // first regex in order
    [InlineData("nothing.test", "default_one")]                      // default server: the first
    [InlineData("_", "_")]
    public void SelectionOrder(string host, string expected) =>
        Assert.Equal(expected, Select(host, out _));

    [Fact]
    public void NoHostSelectsTheEmptyName() => Assert.Equal(string.Empty, Select(null, out _));

    [Fact]
    public void RegexCapturesOfServerName()
    {
        Select("alice.example.com", out var m);
        Assert.Equal("alice", m!.Groups[1].Value);
    }

    [Fact]
    public void DefaultServerPerAddress()
    {
        var snapshot = TestSnapshots.Http("""
            server { listen 127.0.0.1:8081; listen 127.0.0.1:8082; server_name a; }
            server { listen 127.0.0.1:8081; listen 127.0.0.1:8082 default_server; server_name b; }
            server { listen 127.0.0.1:8081 default_server; server_name c; }
            """);
        Assert.Equal("c", snapshot.Listeners["127.0.0.1:8081"].Addresses[0].Names.Find("zzz", out _).Name);
        Assert.Equal("b", snapshot.Listeners["127.0.0.1:8082"].Addresses[0].Names.Find("zzz", out _).Name);
        Assert.Equal("a", snapshot.Listeners["127.0.0.1:8082"].Addresses[0].Names.Find("a", out _).Name);
    }

    [Fact]
    public void WildcardSocketServesSpecificAddressesByLocalAddress()
    {
        var snapshot = TestSnapshots.Http("""
            server { listen 8085; server_name wild; }
            server { listen 127.0.0.2:8085; server_name specific; }
            server { listen 127.0.0.3:8085 bind; server_name own; }
            """);
        Assert.Equal(["0.0.0.0:8085", "127.0.0.3:8085"], snapshot.Listeners.Keys.Order());
        var wildcard = snapshot.Listeners["0.0.0.0:8085"];
        Assert.Equal("specific", wildcard.ForLocal(IPAddress.Parse("127.0.0.2")).Names.Default.Name);
        Assert.Equal("wild", wildcard.ForLocal(IPAddress.Parse("127.0.0.1")).Names.Default.Name);
    }

    [Theory]
    [InlineData("Example.ORG", "example.org")]
    [InlineData("example.org:8080", "example.org")]
    [InlineData("example.org.", "example.org")]
    [InlineData("[::1]:80", "[::1]")]
    [InlineData("EXAMPLE.org.:80", "example.org")]
    [InlineData(".example.org", ".example.org")]
    public void HostNormalization(string raw, string expected)
    {
        Assert.True(UriNormalizer.TryNormalizeHost(raw, out var host));
        Assert.Equal(expected, host);
    }

    [Theory]
    [InlineData("a..b")]
    [InlineData("a/b")]
    [InlineData("ex\0ample")]
    [InlineData("exa mple.org")]
    [InlineData("example.org:99999")]
    [InlineData("[::1")]
    [InlineData(":80")]
    public void InvalidHostsAreRejected(string raw) => Assert.False(UriNormalizer.TryNormalizeHost(raw, out _));
}
