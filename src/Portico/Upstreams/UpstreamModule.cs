using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Upstreams.Transport;
using Portico.Variables;

namespace Portico.Upstreams;

/// <summary>
/// ngx_http_upstream_module's runtime: the snapshot's upstream groups (implicit ones for now; upstream
/// blocks, balancers and health come with the upstreams work) and the $upstream_* variables.
/// </summary>
public sealed class UpstreamModule : PorticoModule
{
    public override string Name => "upstream";

    public override void Register(DirectiveRegistry registry)
    {
    }

    public override void RegisterVariables(VariableRegistry v, SnapshotBuilder snapshot)
    {
        v.Register("upstream_addr", r => Format(r, a => a.Peer ?? string.Empty), cacheable: false);
        v.Register("upstream_status", r => Format(r, a => a.Status == 0 ? "-" : a.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)), cacheable: false);
        v.Register("upstream_response_time", r => Format(r, a => UpstreamStates.Milliseconds(a.ResponseTime)), cacheable: false);
        v.Register("upstream_connect_time", r => Format(r, a => UpstreamStates.Milliseconds(a.ConnectTime)), cacheable: false);
        v.Register("upstream_header_time", r => Format(r, a => UpstreamStates.Milliseconds(a.HeaderTime)), cacheable: false);
        v.Register("upstream_response_length", r => Format(r, a => a.ResponseLength.ToString(System.Globalization.CultureInfo.InvariantCulture)), cacheable: false);
        v.Register("upstream_bytes_received", r => Format(r, a => a.BytesReceived.ToString(System.Globalization.CultureInfo.InvariantCulture)), cacheable: false);
        v.Register("upstream_bytes_sent", r => Format(r, a => a.BytesSent.ToString(System.Globalization.CultureInfo.InvariantCulture)), cacheable: false);
        v.RegisterPrefix("upstream_http_", (r, name) => UpstreamStates.Header(UpstreamStates.Of(r)?.ResponseHeaders, name), cacheable: false);
        v.RegisterPrefix("upstream_trailer_", (r, name) => UpstreamStates.Header(UpstreamStates.Of(r)?.ResponseTrailers, name), cacheable: false);
        v.RegisterPrefix("upstream_cookie_", (r, name) => UpstreamStates.SetCookie(UpstreamStates.Of(r)?.ResponseHeaders, name), cacheable: false);
    }

    private static string? Format(Pipeline.RequestContext r, Func<UpstreamAttemptState, string> value)
    {
        var states = UpstreamStates.Of(r);
        return states is null || states.Attempts.Count == 0 ? null : states.Format(value);
    }

    public override void CompileHttp(SnapshotBuilder snapshot) =>
        snapshot.Snapshot.SetFeature(new UpstreamRegistry(snapshot.Services.State));

    public override void Activate(RuntimeSnapshot snapshot, RuntimeSnapshot? previous)
    {
        // Pools and peer state the new configuration no longer names are dropped (pools close once idle).
        if (snapshot.Feature<UpstreamRegistry>() is { } registry)
        {
            snapshot.Services.State.Retain(TransportPool.StatePrefix, registry.LiveStateKeys);
            snapshot.Services.State.Retain(UpstreamRegistry.PeerStatePrefix, registry.LiveStateKeys);
        }
    }
}
