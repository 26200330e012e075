using System.Globalization;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Upstreams.Health;
using Portico.Upstreams.Resolution;
using Portico.Upstreams.Transport;
using Portico.Variables;

namespace Portico.Upstreams;

/// <summary>health_check lines of one location (not inherited: a check belongs to its location).</summary>
public sealed class HealthCheckSettings : Settings<HealthCheckSettings>
{
    public List<HealthCheckSpec>? Checks { get; set; }

    public override void MergeFrom(HealthCheckSettings parent)
    {
    }
}

/// <summary>
/// ngx_http_upstream_module and its balancing, keepalive, zone and health check companions: upstream
/// blocks, the snapshot's groups (explicit and implicit), the $upstream_* variables, and the background
/// work of the active snapshot (health checks, DNS re-resolution).
/// </summary>
public sealed class UpstreamModule : PorticoModule, Admin.IApiModule
{
    public void RegisterApi(Admin.ApiRouter router) => UpstreamsApi.Register(router);

    public override string Name => "upstream";

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<UpstreamSettings>(SettingsScope.HttpMain);
        r.AddSettings<ResolverSettings>(SettingsScope.Location);
        r.AddSettings<HealthCheckSettings>(SettingsScope.Location);
        Add(r, "upstream", Ctx.Http, Arity.One, Upstream, block: true, repeatable: true);
        Add(r, "server", Ctx.Upstream, Arity.OneOrMore, UpstreamServer.Bind, repeatable: true);
        Add(r, "zone", Ctx.Upstream, Arity.Range(1, 2), Zone);
        Add(r, "least_conn", Ctx.Upstream, Arity.None, c => Method(c, BalancingMethod.LeastConn, ServerParameters.All));
        Add(r, "ip_hash", Ctx.Upstream, Arity.None, c => Method(c, BalancingMethod.IpHash, ServerParameters.All & ~ServerParameters.Backup));
        Add(r, "hash", Ctx.Upstream, Arity.Range(1, 2), Hash);
        Add(r, "random", Ctx.Upstream, Arity.Range(0, 2), RandomMethod);
        Add(r, "least_time", Ctx.Upstream, Arity.Range(1, 2), LeastTime);
        Add(r, "keepalive", Ctx.Upstream, Arity.Range(1, 2), Keepalive);
        Add(r, "keepalive_timeout", Ctx.Upstream, Arity.One, c => Spec(c).KeepaliveTimeout = c.Time(0));
        Add(r, "keepalive_time", Ctx.Upstream, Arity.One, c => Spec(c).KeepaliveTime = c.Time(0));
        Add(r, "keepalive_requests", Ctx.Upstream, Arity.One, c => Spec(c).KeepaliveRequests = c.Number(0));
        Add(r, "queue", Ctx.Upstream, Arity.Range(1, 2), Queue);
        Add(r, "resolver", Ctx.HttpServerLocation | Ctx.Upstream, Arity.OneOrMore, Resolver);
        Add(r, "resolver_timeout", Ctx.HttpServerLocation | Ctx.Upstream, Arity.One, ResolverTimeout);
        Add(r, "health_check", Ctx.Location, Arity.Any, c => (c.Loc<HealthCheckSettings>().Checks ??= []).Add(HealthCheckSpec.Parse(c)), repeatable: true);
        Add(r, "match", Ctx.Http, Arity.One, Match, block: true, repeatable: true);
    }

    private void Add(DirectiveRegistry r, string name, Ctx contexts, Arity arity, DirectiveHandler handler, bool block = false, bool repeatable = false) =>
        r.Add(new DirectiveSpec(name, contexts, arity, handler) { Module = Name, IsBlock = block, Repeatable = repeatable });

    internal static UpstreamBlockSpec Spec(DirectiveCall c) => (UpstreamBlockSpec)c.Scope.Custom!;

    private static void Upstream(DirectiveCall c)
    {
        var settings = c.HttpMain<UpstreamSettings>();
        var name = c[0];
        foreach (var b in settings.Blocks)
        {
            if (b.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                throw c.Emerg($"duplicate upstream \"{name}\"");
            }
        }

        var spec = new UpstreamBlockSpec(c.Directive, name);
        c.BindBlock(new BindScope(Ctx.Upstream, c.Scope, null) { Custom = spec });
        if (spec.Servers.Count == 0)
        {
            throw c.Emerg("no servers are inside upstream");
        }

        settings.Blocks.Add(spec);
    }

    private static void Zone(DirectiveCall c)
    {
        var spec = Spec(c);
        spec.Zone = c[0];
        if (c.Count == 2)
        {
            if (!ConfigValues.TryParseSize(c[1], out var size))
            {
                throw c.Emerg($"invalid zone size \"{c[1]}\"");
            }

            spec.ZoneSize = size;
        }
    }

    private static void Method(DirectiveCall c, BalancingMethod method, ServerParameters allowed)
    {
        var spec = Spec(c);
        if (spec.MethodSet)
        {
            c.Warn("load balancing method redefined");
        }

        spec.MethodSet = true;
        spec.Method = method;
        spec.Allowed = allowed;
    }

    private static void Hash(DirectiveCall c)
    {
        var key = c.Template(0);
        var consistent = false;
        if (c.Count == 2)
        {
            if (c[1] != "consistent")
            {
                throw c.Emerg($"invalid parameter \"{c[1]}\"");
            }

            consistent = true;
        }

        Method(c, BalancingMethod.Hash, ServerParameters.All & ~ServerParameters.Backup);
        var spec = Spec(c);
        spec.HashKey = key;
        spec.HashConsistent = consistent;
    }

    private static void RandomMethod(DirectiveCall c)
    {
        Method(c, BalancingMethod.Random, ServerParameters.All & ~ServerParameters.Backup);
        if (c.Count == 0)
        {
            return;
        }

        if (c[0] != "two")
        {
            throw c.Emerg($"invalid parameter \"{c[0]}\"");
        }

        Spec(c).RandomTwo = true;
        if (c.Count == 2 && c[1] != "least_conn")
        {
            throw c.Emerg($"invalid parameter \"{c[1]}\"");
        }
    }

    private static void LeastTime(DirectiveCall c)
    {
        var lastByte = c[0] switch
        {
            "header" => false,
            "last_byte" => true,
            _ => throw c.Emerg($"invalid value \"{c[0]}\" in \"{c.Name}\" directive"),
        };
        if (c.Count == 2 && c[1] != "inflight")
        {
            throw c.Emerg($"invalid parameter \"{c[1]}\"");
        }

        Method(c, BalancingMethod.LeastTime, ServerParameters.All);
        var spec = Spec(c);
        spec.LeastTimeLastByte = lastByte;
        spec.LeastTimeInflight = c.Count == 2;
    }

    private static void Keepalive(DirectiveCall c)
    {
        if (!ConfigValues.TryParseNumber(c[0], out var n) || n > int.MaxValue)
        {
            throw c.Emerg($"invalid value \"{c[0]}\" in \"{c.Name}\" directive");
        }

        var spec = Spec(c);
        spec.Keepalive = (int)n;
        if (c.Count == 2)
        {
            if (c[1] != "local")
            {
                throw c.Emerg($"invalid parameter \"{c[1]}\"");
            }

            spec.KeepaliveLocal = true;
        }
    }

    private static void Queue(DirectiveCall c)
    {
        if (!ConfigValues.TryParseNumber(c[0], out var n) || n > int.MaxValue)
        {
            throw c.Emerg($"invalid value \"{c[0]}\" in \"{c.Name}\" directive");
        }

        var spec = Spec(c);
        spec.Queue = (int)n;
        if (c.Count == 2)
        {
            if (!c[1].StartsWith("timeout=", StringComparison.Ordinal) || !ConfigValues.TryParseMilliseconds(c[1][8..], out var ms))
            {
                throw c.Emerg($"invalid parameter \"{c[1]}\"");
            }

            spec.QueueTimeout = TimeSpan.FromMilliseconds(ms);
        }
    }

    private static void Resolver(DirectiveCall c)
    {
        var spec = ResolverSpec.Parse(c);
        if (c.Scope.Kind == Ctx.Upstream)
        {
            Spec(c).Resolver = spec;
        }
        else
        {
            c.Loc<ResolverSettings>().Resolver = spec;
        }
    }

    private static void ResolverTimeout(DirectiveCall c)
    {
        var t = c.Time(0);
        if (c.Scope.Kind == Ctx.Upstream)
        {
            Spec(c).ResolverTimeout = t;
        }
        else
        {
            c.Loc<ResolverSettings>().Timeout = t;
        }
    }

    private static void Match(DirectiveCall c)
    {
        var settings = c.HttpMain<UpstreamSettings>();
        if (settings.Matches.ContainsKey(c[0]))
        {
            throw c.Emerg($"duplicate match \"{c[0]}\"");
        }

        settings.Matches[c[0]] = MatchSpec.Bind(c);
    }

    public override void RegisterVariables(VariableRegistry v, SnapshotBuilder snapshot)
    {
        v.Register("upstream_addr", r => Format(r, a => a.Peer ?? string.Empty), cacheable: false);
        v.Register("upstream_status", r => Format(r, a => a.Status == 0 ? "-" : a.Status.ToString(CultureInfo.InvariantCulture)), cacheable: false);
        v.Register("upstream_response_time", r => Format(r, a => UpstreamStates.Milliseconds(a.ResponseTime)), cacheable: false);
        v.Register("upstream_connect_time", r => Format(r, a => UpstreamStates.Milliseconds(a.ConnectTime)), cacheable: false);
        v.Register("upstream_header_time", r => Format(r, a => UpstreamStates.Milliseconds(a.HeaderTime)), cacheable: false);
        v.Register("upstream_response_length", r => Format(r, a => a.ResponseLength.ToString(CultureInfo.InvariantCulture)), cacheable: false);
        v.Register("upstream_bytes_received", r => Format(r, a => a.BytesReceived.ToString(CultureInfo.InvariantCulture)), cacheable: false);
        v.Register("upstream_bytes_sent", r => Format(r, a => a.BytesSent.ToString(CultureInfo.InvariantCulture)), cacheable: false);
        v.Register("upstream_queue_time", r => Format(r, a => UpstreamStates.Milliseconds(a.QueueTime)), cacheable: false);
        v.RegisterPrefix("upstream_http_", (r, name) => UpstreamStates.Header(UpstreamStates.Of(r)?.ResponseHeaders, name), cacheable: false);
        v.RegisterPrefix("upstream_trailer_", (r, name) => UpstreamStates.Header(UpstreamStates.Of(r)?.ResponseTrailers, name), cacheable: false);
        v.RegisterPrefix("upstream_cookie_", (r, name) => UpstreamStates.SetCookie(UpstreamStates.Of(r)?.ResponseHeaders, name), cacheable: false);
    }

    private static string? Format(Pipeline.RequestContext r, Func<UpstreamAttemptState, string> value)
    {
        var states = UpstreamStates.Of(r);
        return states is null || states.Attempts.Count == 0 ? null : states.Format(value);
    }

    public override void CompileHttp(SnapshotBuilder snapshot)
    {
        var registry = new UpstreamRegistry(snapshot.Services.State, snapshot.Services.Time);
        snapshot.Snapshot.SetFeature(registry);
        var settings = snapshot.HttpMain<UpstreamSettings>();
        if (settings is null)
        {
            return;
        }

        var resolver = snapshot.Model.Http!.Settings.Get<ResolverSettings>();
        foreach (var spec in settings.Blocks)
        {
            try
            {
                registry.AddExplicit(UpstreamBuilder.Build(snapshot, registry, spec, resolver));
            }
            catch (Config.Syntax.ConfigException e)
            {
                snapshot.Error(e);
            }
        }
    }

    public override void CompileLocation(LocationCompiler lc) => HealthChecks.CompileLocation(lc);

    public override void CompleteSnapshot(SnapshotBuilder snapshot) => HealthChecks.Complete(snapshot);

    public override void Activate(RuntimeSnapshot snapshot, RuntimeSnapshot? previous)
    {
        // Pools and peer state the new configuration no longer names are dropped (pools close once idle).
        if (snapshot.Feature<UpstreamRegistry>() is { } registry)
        {
            snapshot.Services.State.Retain(TransportPool.StatePrefix, registry.LiveStateKeys);
            snapshot.Services.State.Retain(UpstreamRegistry.PeerStatePrefix, registry.LiveStateKeys);
            snapshot.Services.State.Retain(UpstreamRegistry.GroupStatePrefix, registry.LiveStateKeys);
            snapshot.Services.State.Retain(UpstreamRegistry.DnsStatePrefix, registry.LiveStateKeys);
            registry.Activate(snapshot);
        }
    }

    public override void Deactivate(RuntimeSnapshot snapshot) => snapshot.Feature<UpstreamRegistry>()?.Deactivate();
}
