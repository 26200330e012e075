using BenchmarkDotNet.Attributes;
using Portico.Pipeline;
using Portico.Upstreams;

namespace Portico.Micro;

/// <summary>
/// One balancer pick as the proxy makes it (begin, take a peer, report success) for each method of an
/// upstream block of eight servers with mixed weights and, where nginx allows one (round robin, least_conn), a backup, compiled from configuration.
/// </summary>
[MemoryDiagnoser]
public class BalancerBenchmarks
{
    private const string Servers = """
            server 127.0.0.1:8001 weight=5;
            server 127.0.0.1:8002 weight=3;
            server 127.0.0.1:8003;
            server 127.0.0.1:8004;
            server 127.0.0.1:8005 max_fails=3 fail_timeout=30s;
            server 127.0.0.1:8006;
            server 127.0.0.1:8007 weight=2;
            server 127.0.0.1:8008 backup;
        """;

    private RequestContext _r = null!;
    private UpstreamRegistry _registry = null!;
    private IBalancer _roundRobin = null!;
    private IBalancer _leastConn = null!;
    private IBalancer _ipHash = null!;
    private IBalancer _hash = null!;
    private IBalancer _consistent = null!;
    private IBalancer _random = null!;

    [GlobalSetup]
    public void Setup()
    {
        string Block(string name, string method) =>
            $"upstream {name} {{ {method}\n{(method is "" or "least_conn;" ? Servers : Servers.Replace(" backup;", ";", StringComparison.Ordinal))} }}\n";
        var snapshot = MicroConfig.Http(
            Block("rr", "")
            + Block("lc", "least_conn;")
            + Block("iph", "ip_hash;")
            + Block("hash", "hash $request_uri;")
            + Block("chash", "hash $request_uri consistent;")
            + Block("rnd", "random two least_conn;")
            + "server { listen 8080; location / { proxy_pass http://rr; } }");
        _registry = snapshot.Feature<UpstreamRegistry>()!;
        _r = MicroConfig.Request(snapshot, "/catalog/item/1234?ref=home");
        _roundRobin = Group("rr");
        _leastConn = Group("lc");
        _ipHash = Group("iph");
        _hash = Group("hash");
        _consistent = Group("chash");
        _random = Group("rnd");

        // Smooth weighted round robin over 5,3,1,1,1,1,2 (the backup only when all primaries are down).
        var seen = new HashSet<string>();
        for (var i = 0; i < 14; i++)
        {
            seen.Add(Pick(_roundRobin).Name);
        }

        if (seen.Count != 7 || seen.Contains("127.0.0.1:8008"))
        {
            throw new InvalidOperationException("round robin picked " + string.Join(",", seen));
        }

        if (Pick(_ipHash) != Pick(_ipHash) || Pick(_consistent) != Pick(_consistent))
        {
            throw new InvalidOperationException("a hash method changed its peer for the same key");
        }
    }

    private IBalancer Group(string name) => _registry.Explicit[name].Balancer;

    private UpstreamPeer Pick(IBalancer balancer)
    {
        var it = balancer.Begin(_r);
        if (!it.TryNext(out var peer))
        {
            throw new InvalidOperationException("no live upstreams");
        }

        it.Report(peer, UpstreamFailure.None);
        return peer;
    }

    [Benchmark(Baseline = true)]
    public UpstreamPeer RoundRobin() => Pick(_roundRobin);

    [Benchmark]
    public UpstreamPeer LeastConn() => Pick(_leastConn);

    [Benchmark]
    public UpstreamPeer IpHash() => Pick(_ipHash);

    /// <summary>hash $request_uri: the key template is evaluated per pick.</summary>
    [Benchmark]
    public UpstreamPeer Hash()
    {
        MicroConfig.ClearVariables(_r);
        return Pick(_hash);
    }

    /// <summary>hash $request_uri consistent (ketama points, binary search).</summary>
    [Benchmark]
    public UpstreamPeer HashConsistent()
    {
        MicroConfig.ClearVariables(_r);
        return Pick(_consistent);
    }

    [Benchmark]
    public UpstreamPeer RandomTwoLeastConn() => Pick(_random);
}
