using System.Net;
using Microsoft.AspNetCore.Http;
using Portico.Compilation;
using Portico.Pipeline;
using Portico.Routing;

namespace Portico.Tests.Routing;

/// <summary>nginx's location search, as a table of URI → chosen location.</summary>
public class LocationSelectionTests
{
    private static string? Select(ServerRuntime server, string uri)
    {
        var match = server.Locations.Find(uri, null);
        if (match.Redirect)
        {
            return "301 " + match.Location!.Name;
        }

        return match.Location?.Name;
    }

    // The example of nginx's "location" documentation.
    private static readonly ServerRuntime DocsExample = TestSnapshots.Http("""
        server {
            listen 8080;
            location = / { return 200 A; }
            location / { return 200 B; }
            location /documents/ { return 200 C; }
            location ^~ /images/ { return 200 D; }
            location ~* \.(gif|jpg|jpeg)$ { return 200 E; }
        }
        """).Servers[0];

    [Theory]
    [InlineData("/", "=/")]
    [InlineData("/index.html", "/")]
    [InlineData("/documents/document.html", "/documents/")]
    [InlineData("/images/1.gif", "^~/images/")]
    [InlineData("/documents/1.jpg", "~*\\.(gif|jpg|jpeg)$")]
    [InlineData("/documents/1.JPG", "~*\\.(gif|jpg|jpeg)$")]
    [InlineData("/x.jpeg", "~*\\.(gif|jpg|jpeg)$")]
    [InlineData("/images", "/")]
    [InlineData("/images/", "^~/images/")]
    [InlineData("/documents", "/")]
    [InlineData("/Documents/a", "/")]
    [InlineData("/images/deep/2.jpg", "^~/images/")]
    public void NginxDocumentationExample(string uri, string expected) =>
        Assert.Equal(expected, Select(DocsExample, uri));

    private static readonly RuntimeSnapshot MixedSnapshot = TestSnapshots.Http("""
        server {
            listen 8080;
            location /a/ { return 200 a;
                location /a/b/ { return 200 ab; }
                location ~ \.php$ { return 200 aphp; }
                location = /a/exact { return 200 aexact; }
            }
            location ^~ /static/ {
                location ~ \.css$ { return 200 css-in-static; }
            }
            location ~ ^/api/(v\d+)/ { return 200 api; }
            location ~ \.php$ { return 200 php; }
            location ~ ^/a/x { return 200 ax; }
            location /api/ { return 200 api-prefix; }
            location = /exact { return 200 exact; }
            location /exact { return 200 exact-prefix; }
            location /longer/path/ { return 200 longer; }
            location /longer/ { return 200 shorter; }
            location @named { return 200 named; }
        }
        """);

    private static readonly ServerRuntime Mixed = MixedSnapshot.Servers[0];

    [Theory]
    [InlineData("/a/", "/a/")]
    [InlineData("/a/b/c", "/a/b/")]
    [InlineData("/a/c.php", "~\\.php$")]           // nested regex wins inside /a/
    [InlineData("/a/exact", "=/a/exact")]
    [InlineData("/a/exactly", "/a/")]
    [InlineData("/a/xyz", "~^/a/x")]              // outer regex after nested prefix
    [InlineData("/static/x.css", "~\\.css$")]     // nested regex of a ^~ location still applies
    [InlineData("/static/x.php", "^~/static/")]   // ^~ stops the outer regexes
    [InlineData("/api/v1/users", "~^/api/(v\\d+)/")]
    [InlineData("/api/users", "/api/")]
    [InlineData("/x.php", "~\\.php$")]
    [InlineData("/exact", "=/exact")]
    [InlineData("/exact/", "/exact")]
    [InlineData("/exactly", "/exact")]
    [InlineData("/longer/path/x", "/longer/path/")]
    [InlineData("/longer/pat", "/longer/")]
    [InlineData("/nothing", null)]
    [InlineData("/@named", null)]
    public void PrefixRegexAndNesting(string uri, string? expected) =>
        Assert.Equal(expected, Select(Mixed, uri));

    [Fact]
    public void NamedLocationsAreNotMatchedByUri()
    {
        Assert.True(Mixed.Named.ContainsKey("@named"));
        Assert.Null(Select(Mixed, "@named"));
    }

    private static RequestContext Request(RuntimeSnapshot snapshot) =>
        new(new DefaultHttpContext(), snapshot, null!, new ClientConnection(IPAddress.Loopback, 1, IPAddress.Loopback, 2));

    [Fact]
    public void RegexCapturesAreAvailable()
    {
        var r = Request(MixedSnapshot);
        var match = Mixed.Locations.Find("/api/v2/x", r);
        Assert.Equal("~^/api/(v\\d+)/", match.Location!.Name);
        Assert.Equal("v2", r.GetCapture(1));
    }

    [Fact]
    public void RegexWithoutGroupsLeavesNoCapturesBehind()
    {
        // nginx sets r->ncaptures from the match: after a location regex without groups, $1 is empty
        // even when an earlier regex (here the /api/ one) had set it.
        var r = Request(MixedSnapshot);
        Mixed.Locations.Find("/api/v2/x", r);
        Assert.Equal("v2", r.GetCapture(1));
        var match = Mixed.Locations.Find("/b/index.php", r);
        Assert.Equal("~\\.php$", match.Location!.Name);
        Assert.Null(r.GetCapture(1));
    }

    [Fact]
    public void CaseSensitivePrefixesAndRegexes()
    {
        var server = TestSnapshots.Http("""
            server { listen 8080;
                location /Case/ { return 200 x; }
                location ~ /abc$ { return 200 y; }
            }
            """).Servers[0];
        Assert.Equal("/Case/", Select(server, "/Case/x"));
        Assert.Null(Select(server, "/case/x"));
        Assert.Equal("~/abc$", Select(server, "/x/abc"));
        Assert.Null(Select(server, "/x/ABC"));
    }

    [Fact]
    public void FirstMatchingRegexInConfigurationOrderWins()
    {
        var server = TestSnapshots.Http("""
            server { listen 8080;
                location ~ /img/ { return 200 first; }
                location ~ \.png$ { return 200 second; }
            }
            """).Servers[0];
        Assert.Equal("~/img/", Select(server, "/img/a.png"));
        Assert.Equal("~\\.png$", Select(server, "/a.png"));
    }

    [Fact]
    public void LongestPrefixIsChosenRegardlessOfOrder()
    {
        var server = TestSnapshots.Http("""
            server { listen 8080;
                location / { return 200 root; }
                location /a/b/c/ { return 200 abc; }
                location /a/ { return 200 a; }
                location /a/b/ { return 200 ab; }
            }
            """).Servers[0];
        Assert.Equal("/a/b/c/", Select(server, "/a/b/c/d"));
        Assert.Equal("/a/b/", Select(server, "/a/b/x"));
        Assert.Equal("/a/", Select(server, "/a/x"));
        Assert.Equal("/", Select(server, "/b"));
    }
}

/// <summary>nginx's auto redirect for prefix locations that end in "/" and proxy.</summary>
public class AutoRedirectTests
{
    [Theory]
    [InlineData("/app", true, "/app/")]
    [InlineData("/app/", false, "/app/")]
    [InlineData("/app/x", false, "/app/")]
    [InlineData("/exact", true, "=/exact/")]
    [InlineData("/both", false, "/both")]
    [InlineData("/ap", false, "/")]
    public void RedirectsOnlyWhenTheSlashLessUriHasNoLocationOfItsOwn(string uri, bool redirect, string location)
    {
        var server = TestSnapshots.Http("""
            server { listen 8080;
                location / { return 200 root; }
                location /app/ { return 200 app; }
                location = /exact/ { return 200 exact; }
                location /both/ { return 200 both-slash; }
                location /both { return 200 both; }
            }
            """).Servers[0];
        foreach (var name in new[] { "/app/", "/both/" })
        {
            Find(server.Locations, name)!.AutoRedirect = true;
        }

        server.Locations.Find("/exact/", null).Location!.AutoRedirect = true;
        var match = server.Locations.Find(uri, null);
        Assert.Equal(redirect, match.Redirect);
        Assert.Equal(location, match.Location!.Name);
    }

    private static LocationRuntime? Find(LocationTree tree, string uri) => tree.Find(uri, null).Location;
}
