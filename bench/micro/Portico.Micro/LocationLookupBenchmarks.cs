using BenchmarkDotNet.Attributes;
using Portico.Pipeline;
using Portico.Routing;

namespace Portico.Micro;

/// <summary>
/// nginx's location search (ngx_http_core_find_location) in a server of 24 locations of every kind: each
/// benchmark is one URI whose search ends in a different way. The setup checks every answer first.
/// </summary>
[MemoryDiagnoser]
public class LocationLookupBenchmarks
{
    internal const string Server = """
        server {
            listen 8080;
            server_name www.example.com;
            location = / { return 200 home; }
            location = /favicon.ico { return 204; }
            location / { return 200 root; }
            location /api/ { return 200 api;
                location /api/v1/ { return 200 v1; }
                location /api/v2/ { return 200 v2;
                    location ~ ^/api/v2/admin/ { return 403; }
                }
                location ~ \.json$ { return 200 json; }
            }
            location /account/ { return 200 account; }
            location /account/settings/ { return 200 settings; }
            location /blog/ { return 200 blog; }
            location /blog/archive/ { return 200 archive; }
            location /docs/ { return 200 docs; }
            location /downloads/ { return 200 downloads; }
            location ^~ /static/ { return 200 static; }
            location ^~ /media/ { return 200 media; }
            location /health { return 200 ok; }
            location /metrics { return 200 metrics; }
            location /search { return 200 search; }
            location ~ ^/user/(\d+)/profile$ { return 200 profile; }
            location ~* \.(?:jpg|jpeg|png|gif|webp|svg)$ { return 200 image; }
            location ~* \.(?:css|js)$ { return 200 asset; }
            location ~ /\. { return 404; }
            location @fallback { return 502; }
        }
        """;

    private LocationTree _tree = null!;
    private RequestContext _r = null!;

    [GlobalSetup]
    public void Setup()
    {
        var snapshot = MicroConfig.Http(Server);
        _tree = snapshot.Servers[0].Locations;
        _r = MicroConfig.Request(snapshot, "/");
        Expect("/", "=/");
        Expect("/api/v2/orders/17", "/api/v2/");
        Expect("/static/js/app.js", "^~/static/");
        Expect("/blog/2026/11/photo.png", "~*\\.(?:jpg|jpeg|png|gif|webp|svg)$");
        Expect("/user/4711/profile", "~^/user/(\\d+)/profile$");
        Expect("/no/such/page", "/");
    }

    private void Expect(string uri, string location)
    {
        var found = _tree.Find(uri, _r).Location?.Name;
        if (found != location)
        {
            throw new InvalidOperationException($"{uri}: {found}, expected {location}");
        }
    }

    /// <summary>An exact location: the search stops at the first level.</summary>
    [Benchmark(Baseline = true)]
    public LocationMatch Exact() => _tree.Find("/", _r);

    /// <summary>Longest prefix two levels down, then the nested and outer regexes, none matching.</summary>
    [Benchmark]
    public LocationMatch NestedPrefix() => _tree.Find("/api/v2/orders/17", _r);

    /// <summary>A ^~ prefix: the regexes are skipped.</summary>
    [Benchmark]
    public LocationMatch PrefixNoRegex() => _tree.Find("/static/js/app.js", _r);

    /// <summary>A prefix, then three regexes tried before the caseless image one matches.</summary>
    [Benchmark]
    public LocationMatch RegexAfterPrefix() => _tree.Find("/blog/2026/11/photo.png", _r);

    /// <summary>A regex with a capture (the captures are kept on the request, as nginx does).</summary>
    [Benchmark]
    public LocationMatch RegexCapture() => _tree.Find("/user/4711/profile", _r);

    /// <summary>Nothing but "/" matches: every regex is tried.</summary>
    [Benchmark]
    public LocationMatch FallsToRoot() => _tree.Find("/no/such/page", _r);
}
