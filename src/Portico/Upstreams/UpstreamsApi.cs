using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Portico.Admin;

namespace Portico.Upstreams;

/// <summary>
/// nginx Plus's /http/upstreams endpoints (API version 9 shapes): the groups, their peers with state and
/// counters, and the server configuration that PATCH, POST and DELETE change without a reload.
/// </summary>
internal static class UpstreamsApi
{
    public static void Register(ApiRouter router)
    {
        router.Map("GET", "http/upstreams", All);
        router.Map("GET", "http/upstreams/{upstream}", One);
        router.Map("DELETE", "http/upstreams/{upstream}", Reset);
        router.Map("GET", "http/upstreams/{upstream}/servers", Servers);
        router.Map("POST", "http/upstreams/{upstream}/servers", Add);
        router.Map("GET", "http/upstreams/{upstream}/servers/{id}", Server);
        router.Map("PATCH", "http/upstreams/{upstream}/servers/{id}", Patch);
        router.Map("DELETE", "http/upstreams/{upstream}/servers/{id}", Remove);
    }

    private static UpstreamRegistry Registry(ApiRequest r) => r.Snapshot.Feature<UpstreamRegistry>()!;

    private static ApiResult All(ApiRequest r) => new(200, ApiJson.Write(w =>
    {
        var now = r.Snapshot.Services.Time.GetUtcNow().ToUnixTimeMilliseconds();
        w.WriteStartObject();
        foreach (var group in Registry(r).Explicit.Values)
        {
            w.WritePropertyName(group.Name);
            WriteGroup(w, group, now);
        }

        w.WriteEndObject();
    }));

    private static bool TryGroup(ApiRequest r, out UpstreamGroup group, out ApiResult error)
    {
        error = default;
        group = Registry(r).FindExplicit(r.Values["upstream"])!;
        if (group is null)
        {
            error = ApiJson.Error(r, 404, "upstream not found", "UpstreamNotFound");
            return false;
        }

        return true;
    }

    private static bool TryServer(ApiRequest r, UpstreamGroup group, out UpstreamPeer peer, out ApiResult error)
    {
        error = default;
        peer = null!;
        if (!int.TryParse(r.Values["id"], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            error = ApiJson.Error(r, 400, "invalid server id", "UpstreamBadServerId");
            return false;
        }

        peer = group.Current.FindById(id)!;
        if (peer is null)
        {
            error = ApiJson.Error(r, 404, "server not found", "UpstreamServerNotFound");
            return false;
        }

        return true;
    }

    private static ApiResult One(ApiRequest r)
    {
        if (!TryGroup(r, out var group, out var error))
        {
            return error;
        }

        var now = r.Snapshot.Services.Time.GetUtcNow().ToUnixTimeMilliseconds();
        return new(200, ApiJson.Write(w => WriteGroup(w, group, now)));
    }

    private static ApiResult Reset(ApiRequest r)
    {
        if (!TryGroup(r, out var group, out var error))
        {
            return error;
        }

        var now = r.Snapshot.Services.Time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var peer in group.Current.All)
        {
            peer.State.ResetStatistics(now);
        }

        return ApiResult.NoContent;
    }

    private static ApiResult Servers(ApiRequest r)
    {
        if (!TryGroup(r, out var group, out var error))
        {
            return error;
        }

        return new(200, ApiJson.Write(w =>
        {
            w.WriteStartArray();
            foreach (var p in group.Current.All)
            {
                WriteServer(w, p);
            }

            w.WriteEndArray();
        }));
    }

    private static ApiResult Server(ApiRequest r)
    {
        if (!TryGroup(r, out var group, out var error) || !TryServer(r, group, out var peer, out error))
        {
            return error;
        }

        return new(200, ApiJson.Write(w => WriteServer(w, peer)));
    }

    private static ApiResult Remove(ApiRequest r)
    {
        if (!TryGroup(r, out var group, out var error) || !TryServer(r, group, out var peer, out error))
        {
            return error;
        }

        group.Publish(group.Current.Replace(peer, null));
        return Servers(r);
    }

    /// <summary>PATCH: down, drain, weight, max_conns, max_fails, fail_timeout, backup, slow_start (others are errors).</summary>
    private static ApiResult Patch(ApiRequest r)
    {
        if (!TryGroup(r, out var group, out var error) || !TryServer(r, group, out var peer, out error))
        {
            return error;
        }

        if (!TryParse(r, peer, allowServer: false, out var change, out error))
        {
            return error;
        }

        Apply(r, group, peer, change);
        var updated = group.Current.FindById(peer.State.Id)!;
        return new(200, ApiJson.Write(w => WriteServer(w, updated)));
    }

    /// <summary>POST: a new server ("server" is required; the same fields as PATCH).</summary>
    private static ApiResult Add(ApiRequest r)
    {
        if (!TryGroup(r, out var group, out var error))
        {
            return error;
        }

        if (!TryParse(r, null, allowServer: true, out var change, out error))
        {
            return error;
        }

        if (change.Server is null)
        {
            return ApiJson.Error(r, 400, "missing \"server\" argument", "UpstreamConfFormatError");
        }

        if (!TryEndPoint(change.Server, out var endPoint))
        {
            return ApiJson.Error(r, 400, $"invalid \"server\" argument", "UpstreamBadAddress");
        }

        var name = UpstreamPeer.NameOf(endPoint);
        foreach (var p in group.Current.All)
        {
            if (p.Name == name)
            {
                return ApiJson.Error(r, 409, "entry exists", "EntryExists");
            }
        }

        var peer = Registry(r).RuntimePeer(group.Name, group.State!, endPoint, state => new UpstreamPeer(endPoint, name, state)
        {
            Server = change.Server,
            Weight = change.Weight ?? 1,
            MaxConns = change.MaxConns ?? 0,
            MaxFails = change.MaxFails ?? 1,
            FailTimeout = change.FailTimeout ?? TimeSpan.FromSeconds(10),
            Backup = change.Backup ?? false,
            SlowStart = change.SlowStart ?? TimeSpan.Zero,
        });
        if (change.Down is { } down)
        {
            peer.State.Admin = down ? AdminState.Down : AdminState.Up;
        }

        if (change.Drain == true)
        {
            peer.State.Admin = AdminState.Drain;
        }

        group.Publish(group.Current.Replace(null, peer));
        return new(201, ApiJson.Write(w => WriteServer(w, peer)));
    }

    private sealed class Change
    {
        public string? Server;
        public int? Weight;
        public int? MaxConns;
        public int? MaxFails;
        public TimeSpan? FailTimeout;
        public TimeSpan? SlowStart;
        public bool? Backup;
        public bool? Down;
        public bool? Drain;
    }

    private static bool TryParse(ApiRequest r, UpstreamPeer? peer, bool allowServer, out Change change, out ApiResult error)
    {
        change = new Change();
        error = default;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(r.Body);
        }
        catch (JsonException)
        {
            error = ApiJson.Error(r, 415, "json error", "JsonError");
            return false;
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = ApiJson.Error(r, 415, "json error", "JsonError");
                return false;
            }

            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                var v = prop.Value;
                bool ok;
                switch (prop.Name)
                {
                    case "server":
                        ok = allowServer ? v.ValueKind == JsonValueKind.String : peer is not null && v.ValueKind == JsonValueKind.String && v.GetString() == peer.Server;
                        if (!ok && !allowServer && v.ValueKind == JsonValueKind.String)
                        {
                            error = ApiJson.Error(r, 400, "server address is immutable", "UpstreamServerImmutable");
                            return false;
                        }

                        change.Server = ok ? v.GetString() : null;
                        break;
                    case "weight":
                        ok = v.TryGetInt32(out var weight) && weight > 0;
                        change.Weight = weight;
                        break;
                    case "max_conns":
                        ok = v.TryGetInt32(out var maxConns) && maxConns >= 0;
                        change.MaxConns = maxConns;
                        break;
                    case "max_fails":
                        ok = v.TryGetInt32(out var maxFails) && maxFails >= 0;
                        change.MaxFails = maxFails;
                        break;
                    case "fail_timeout":
                        ok = TryTime(v, out var failTimeout);
                        change.FailTimeout = failTimeout;
                        break;
                    case "slow_start":
                        ok = TryTime(v, out var slowStart);
                        change.SlowStart = slowStart;
                        break;
                    case "backup":
                        ok = v.ValueKind is JsonValueKind.True or JsonValueKind.False;
                        change.Backup = ok && v.GetBoolean();
                        ok = ok && (peer is null || change.Backup == peer.Backup || group(r).Spec!.Method is BalancingMethod.RoundRobin or BalancingMethod.LeastConn or BalancingMethod.LeastTime);
                        break;
                    case "down":
                        ok = v.ValueKind is JsonValueKind.True or JsonValueKind.False;
                        change.Down = ok && v.GetBoolean();
                        break;
                    case "drain":
                        ok = v.ValueKind is JsonValueKind.True or JsonValueKind.False;
                        change.Drain = ok && v.GetBoolean();
                        break;
                    case "route":
                    case "service":
                        ok = v.ValueKind == JsonValueKind.String && v.GetString()!.Length == 0;
                        break;
                    case "id":
                        ok = peer is not null && v.TryGetInt32(out var id) && id == peer.State.Id;
                        break;
                    default:
                        error = ApiJson.Error(r, 400, $"unknown parameter \"{prop.Name}\"", "UpstreamConfFormatError");
                        return false;
                }

                if (!ok)
                {
                    error = ApiJson.Error(r, 400, $"invalid \"{prop.Name}\" field", "UpstreamConfFormatError");
                    return false;
                }
            }
        }

        return true;

        static UpstreamGroup group(ApiRequest r) => r.Snapshot.Feature<UpstreamRegistry>()!.FindExplicit(r.Values["upstream"])!;
    }

    /// <summary>"10s", "1m", a number of seconds.</summary>
    private static bool TryTime(JsonElement v, out TimeSpan time)
    {
        time = default;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var seconds) && seconds >= 0)
        {
            time = TimeSpan.FromSeconds(seconds);
            return true;
        }

        if (v.ValueKind == JsonValueKind.String && Config.Directives.ConfigValues.TryParseSeconds(v.GetString()!, out var s))
        {
            time = TimeSpan.FromSeconds(s);
            return true;
        }

        return false;
    }

    private static void Apply(ApiRequest r, UpstreamGroup group, UpstreamPeer peer, Change c)
    {
        var now = r.Snapshot.Services.Time.GetUtcNow().ToUnixTimeMilliseconds();
        var state = peer.State;
        var wasOut = peer.IsDown || peer.IsDraining;
        if (c.Down is { } down)
        {
            state.Admin = down ? AdminState.Down : (c.Drain == true ? AdminState.Drain : AdminState.Up);
        }

        if (c.Drain is { } drain && c.Down != true)
        {
            state.Admin = drain ? AdminState.Drain : AdminState.Up;
        }

        if (peer.IsDown || peer.IsDraining)
        {
            state.WentDown(now);
        }
        else if (wasOut)
        {
            state.Recovered(now);
        }

        if (c.Weight is not null || c.MaxConns is not null || c.MaxFails is not null || c.FailTimeout is not null || c.Backup is not null || c.SlowStart is not null)
        {
            group.Publish(group.Current.Replace(peer, peer.With(c.Weight, c.MaxConns, c.MaxFails, c.FailTimeout, c.Backup, c.SlowStart)));
        }
    }

    private static bool TryEndPoint(string server, out EndPoint endPoint)
    {
        endPoint = null!;
        if (server.StartsWith("unix:", StringComparison.Ordinal))
        {
            endPoint = new UnixDomainSocketEndPoint(server[5..]);
            return server.Length > 5;
        }

        var colon = server.LastIndexOf(':');
        var host = colon > 0 && !server.EndsWith(']') ? server[..colon] : server;
        var port = 80;
        if (colon > 0 && !server.EndsWith(']') && !int.TryParse(server[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port))
        {
            return false;
        }

        // An address only: resolving a name here would block the request's I/O thread (rule 7).
        var literal = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        if (!IPAddress.TryParse(literal, out var ip) || port is < 1 or > 65535)
        {
            return false;
        }

        endPoint = new IPEndPoint(ip, port);
        return true;
    }

    /// <summary>The peer's state word: up, down, draining, unavail, checking, unhealthy.</summary>
    public static string StateOf(UpstreamPeer p, UpstreamGroup group, long now)
    {
        if (p.IsDown)
        {
            return "down";
        }

        if (p.IsDraining)
        {
            return "draining";
        }

        switch (p.State.Health)
        {
            case HealthState.Checking:
                return "checking";
            case HealthState.Unhealthy:
                return "unhealthy";
        }

        return !group.Current.Single && p.State.PassivelyFailed(p.MaxFails, (long)p.FailTimeout.TotalMilliseconds, now) ? "unavail" : "up";
    }

    private static void WriteGroup(Utf8JsonWriter w, UpstreamGroup group, long now)
    {
        w.WriteStartObject();
        w.WriteStartArray("peers");
        foreach (var p in group.Current.All)
        {
            var s = p.State;
            w.WriteStartObject();
            w.WriteNumber("id", s.Id);
            w.WriteString("server", p.Name);
            w.WriteString("name", p.Server);
            w.WriteBoolean("backup", p.Backup);
            w.WriteNumber("weight", p.Weight);
            w.WriteString("state", StateOf(p, group, now));
            w.WriteNumber("active", s.Active);
            if (p.MaxConns > 0)
            {
                w.WriteNumber("max_conns", p.MaxConns);
            }

            w.WriteNumber("requests", s.Requests);
            var (c1, c2, c3, c4, c5, total) = s.Responses;
            w.WriteStartObject("responses");
            w.WriteNumber("1xx", c1);
            w.WriteNumber("2xx", c2);
            w.WriteNumber("3xx", c3);
            w.WriteNumber("4xx", c4);
            w.WriteNumber("5xx", c5);
            w.WriteStartObject("codes");
            w.WriteEndObject();
            w.WriteNumber("total", total);
            w.WriteEndObject();
            w.WriteNumber("sent", s.Sent);
            w.WriteNumber("received", s.Received);
            w.WriteNumber("fails", s.TotalFails);
            w.WriteNumber("unavail", s.Unavail);
            var (checks, fails, unhealthy, last) = s.HealthChecks;
            w.WriteStartObject("health_checks");
            w.WriteNumber("checks", checks);
            w.WriteNumber("fails", fails);
            w.WriteNumber("unhealthy", unhealthy);
            if (last is { } passed)
            {
                w.WriteBoolean("last_passed", passed);
            }

            w.WriteEndObject();
            w.WriteNumber("downtime", s.Downtime(now));
            if (s.DownStart >= 0)
            {
                w.WriteString("downstart", ApiJson.Iso(s.DownStart));
            }

            if (s.SelectedMs > 0)
            {
                w.WriteString("selected", ApiJson.Iso(s.SelectedMs));
            }

            if (s.Responses.Total > 0)
            {
                w.WriteNumber("header_time", s.HeaderTime);
                w.WriteNumber("response_time", s.ResponseTime);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        var spec = group.Spec!;
        w.WriteNumber("keepalive", 0);
        w.WriteNumber("zombies", 0);
        w.WriteString("zone", spec.Zone ?? group.Name);
        if (spec.Queue is int size)
        {
            w.WriteStartObject("queue");
            w.WriteNumber("size", group.State!.Queue.Waiting);
            w.WriteNumber("max_size", size);
            w.WriteNumber("overflows", 0);
            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    private static void WriteServer(Utf8JsonWriter w, UpstreamPeer p)
    {
        w.WriteStartObject();
        w.WriteNumber("id", p.State.Id);
        w.WriteString("server", p.Resolve ? p.Server : p.Name);
        w.WriteNumber("weight", p.Weight);
        w.WriteNumber("max_conns", p.MaxConns);
        w.WriteNumber("max_fails", p.MaxFails);
        w.WriteString("fail_timeout", ((long)p.FailTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s");
        w.WriteString("slow_start", ((long)p.SlowStart.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s");
        w.WriteString("route", string.Empty);
        w.WriteBoolean("backup", p.Backup);
        w.WriteBoolean("down", p.IsDown);
        if (p.IsDraining)
        {
            w.WriteBoolean("drain", true);
        }

        w.WriteEndObject();
    }
}
