using Portico.IntegrationTests.Infrastructure;
using static Portico.IntegrationTests.RewriteTests;

namespace Portico.IntegrationTests;

/// <summary>ngx_http_map_module, from the examples of nginx's documentation.</summary>
public class MapTests
{
    private const string Maps = """
        map $http_host $name {
            hostnames;

            default       0;

            example.com   1;
            *.example.com 1;
            example.org   2;
            *.example.org 2;
            .example.net  3;
            wap.*         4;
            ~^(?<sub>\w+)\.regex\.test$ "re:$sub:$1";
        }

        map $http_user_agent $mobile {
            default       0;
            "~Opera Mini" 1;
            ~*(iphone|android) "m:$1";
            \default      literal;
        }
        """;

    [Theory]
    [InlineData("example.com", "1")]
    [InlineData("EXAMPLE.com", "1")]
    [InlineData("example.com.", "1")]
    [InlineData("www.example.com", "1")]
    [InlineData("a.b.example.org", "2")]
    [InlineData("example.net", "3")]
    [InlineData("x.example.net", "3")]
    [InlineData("wap.foo.bar", "4")]
    [InlineData("abc.regex.test", "re:abc:abc")]
    [InlineData("example.io", "0")]
    public async Task Hostnames(string host, string expected)
    {
        await using var p = await PorticoInstance.StartHttpAsync(Maps + """
            server { listen 127.0.0.1:{port}; location / { return 200 "$name"; } }
            """);
        Assert.Equal(expected, (await GetAsync(p, "/", host)).Body);
    }

    [Theory]
    [InlineData("Opera Mini/5", "1")]
    [InlineData("Mozilla IPHONE", "m:IPHONE")]
    [InlineData("default", "literal")]
    [InlineData("curl", "0")]
    public async Task RegexesAndSpecialNames(string userAgent, string expected)
    {
        await using var p = await PorticoInstance.StartHttpAsync(Maps + """
            server { listen 127.0.0.1:{port}; location / { return 200 "$mobile one=[$1]"; } }
            """);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.TryAddWithoutValidation("User-Agent", userAgent);
        var body = await (await p.Client.SendAsync(request)).Content.ReadAsStringAsync();

        // A matching map regex leaves its captures behind for the directives that follow.
        var one = expected.StartsWith("m:", StringComparison.Ordinal) ? expected[2..] : string.Empty;
        Assert.Equal($"{expected} one=[{one}]", body);
    }

    [Fact]
    public async Task ValuesMayUseVariablesAndOtherMaps()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            map $uri $new {
                default        http://www.example.com/home/;
                /aa            http://aa.example.com/;
                /bb            http://bb.example.com/$arg_x;
            }
            map $arg_k $chain { default "c[$new]"; "" "empty"; }
            map $scheme:$arg_k $combined { http:a "plain-a"; default "none"; }
            server {
                listen 127.0.0.1:{port};
                location /r { rewrite ^ $new redirect; }
                location / { return 200 "new=[$new] chain=[$chain] combined=[$combined]\n"; }
            }
            """);

        Assert.Equal("new=[http://www.example.com/home/] chain=[empty] combined=[none]\n", (await GetAsync(p, "/x")).Body);
        Assert.Equal("new=[http://bb.example.com/7] chain=[c[http://bb.example.com/7]] combined=[plain-a]\n", (await GetAsync(p, "/bb?x=7&k=a")).Body);
        var redirect = await GetAsync(p, "/r");
        Assert.Equal("http://www.example.com/home/", redirect.Response.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task EvaluatedWhenRead()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            map $uri $current { default $uri; }
            server { listen 127.0.0.1:{port}; location /lazy { rewrite ^ /changed; return 200 "[$current]\n"; } }
            """);

        Assert.Equal("[/changed]\n", (await GetAsync(p, "/lazy")).Body);
    }

    [Fact]
    public async Task CachedValueVersusVolatileValue()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            map $args $cached { default "[$args]"; }
            map $args $fresh { volatile; default "[$args]"; }
            server {
                listen 127.0.0.1:{port};
                location / {
                    set $before "$cached$fresh";
                    set $args "changed";
                    return 200 "before=$before after=$cached$fresh\n";
                }
            }
            """);

        Assert.Equal("before=[x][x] after=[x][changed]\n", (await GetAsync(p, "/?x")).Body);
    }

    [Fact]
    public async Task EntriesFromIncludedFiles()
    {
        using var dir = new TempDir();
        var conf = dir.Write("routes.map", "/a  alpha;\n/b  beta;\n");
        await using var p = await PorticoInstance.StartHttpAsync($$"""
            map $uri $route {
                default none;
                include {{conf}};
            }
            server { listen 127.0.0.1:{port}; location / { return 200 "$route"; } }
            """);

        Assert.Equal("alpha", (await GetAsync(p, "/a")).Body);
        Assert.Equal("beta", (await GetAsync(p, "/b")).Body);
        Assert.Equal("none", (await GetAsync(p, "/c")).Body);
    }

    [Fact]
    public async Task AMapThatReadsItselfIsACycle()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            map $loop $loop { default "x$loop"; }
            server { listen 127.0.0.1:{port}; location / { return 200 "[$loop]"; } }
            """);

        // As nginx: the innermost read gives up after 100 levels, each level above adds its "x".
        Assert.Equal("[" + new string('x', 100) + "]", (await GetAsync(p, "/")).Body);
        Assert.Contains("cycle while evaluating variable \"loop\"", await LogContainingAsync(p, "cycle while evaluating"));
    }
}
