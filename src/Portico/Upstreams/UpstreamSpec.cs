using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Upstreams.Health;
using Portico.Upstreams.Resolution;

namespace Portico.Upstreams;

/// <summary>The balancing method of an upstream block.</summary>
public enum BalancingMethod
{
    RoundRobin,
    LeastConn,
    IpHash,
    Hash,
    Random,
    LeastTime,
}

/// <summary>Which server parameters a method accepts (nginx's NGX_HTTP_UPSTREAM_* flags).</summary>
[Flags]
public enum ServerParameters
{
    None = 0,
    Weight = 1,
    MaxConns = 2,
    MaxFails = 4,
    FailTimeout = 8,
    Down = 16,
    Backup = 32,
    All = Weight | MaxConns | MaxFails | FailTimeout | Down | Backup,
}

/// <summary>One "server" line of an upstream block, as bound.</summary>
public sealed class ServerSpec
{
    public ServerSpec(Directive source, string address)
    {
        Source = source;
        Address = address;
    }

    public Directive Source { get; }

    /// <summary>The address as written: "host:port", "host", "[::1]:80", "unix:/path".</summary>
    public string Address { get; }

    public string Host { get; set; } = string.Empty;
    public int Port { get; set; } = 80;
    public string? UnixPath { get; set; }
    public int Weight { get; set; } = 1;
    public int MaxConns { get; set; }
    public int MaxFails { get; set; } = 1;
    public TimeSpan FailTimeout { get; set; } = TimeSpan.FromSeconds(10);
    public bool Backup { get; set; }
    public bool Down { get; set; }
    public bool Drain { get; set; }
    public bool Resolve { get; set; }
    public TimeSpan SlowStart { get; set; }
}

/// <summary>One upstream block as bound: its servers, method, keepalive, queue, zone and resolver.</summary>
public sealed class UpstreamBlockSpec
{
    public UpstreamBlockSpec(Directive source, string name)
    {
        Source = source;
        Name = name;
    }

    public Directive Source { get; }
    public string Name { get; }
    public List<ServerSpec> Servers { get; } = [];

    public BalancingMethod Method { get; set; }
    public bool MethodSet { get; set; }

    /// <summary>Parameters the method accepts (set by the method directive, checked by later servers).</summary>
    public ServerParameters Allowed { get; set; } = ServerParameters.All;

    /// <summary>hash: the key template.</summary>
    public ValueTemplate? HashKey { get; set; }

    public bool HashConsistent { get; set; }

    /// <summary>random two.</summary>
    public bool RandomTwo { get; set; }

    /// <summary>least_time last_byte (header otherwise).</summary>
    public bool LeastTimeLastByte { get; set; }

    public bool LeastTimeInflight { get; set; }

    public string? Zone { get; set; }
    public long ZoneSize { get; set; }

    /// <summary>keepalive N: idle connections kept per peer; null when not set (no connection cache, as nginx 1.28).</summary>
    public int? Keepalive { get; set; }

    public bool KeepaliveLocal { get; set; }
    public TimeSpan? KeepaliveTimeout { get; set; }
    public long? KeepaliveRequests { get; set; }
    public TimeSpan? KeepaliveTime { get; set; }

    /// <summary>queue N [timeout=T] (Plus): requests wait for a max_conns slot.</summary>
    public int? Queue { get; set; }

    public TimeSpan QueueTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>resolver / resolver_timeout inside the upstream block (nginx ≥ 1.27.3).</summary>
    public ResolverSpec? Resolver { get; set; }

    public TimeSpan? ResolverTimeout { get; set; }

    /// <summary>health_check lines of locations that proxy to this upstream (filled while compiling).</summary>
    public List<HealthCheckSpec> HealthChecks { get; } = [];
}

/// <summary>The upstream module's http-level settings: the upstream blocks and match blocks.</summary>
public sealed class UpstreamSettings : Settings<UpstreamSettings>
{
    public List<UpstreamBlockSpec> Blocks { get; } = [];
    public Dictionary<string, MatchSpec> Matches { get; } = new(StringComparer.Ordinal);

    public override void MergeFrom(UpstreamSettings parent)
    {
    }
}
