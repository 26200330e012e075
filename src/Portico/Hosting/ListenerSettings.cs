using Microsoft.AspNetCore.Server.Kestrel.Core;
using Portico.Compilation;
using Portico.Config.Model;

namespace Portico.Hosting;

/// <summary>Maps configuration onto Kestrel's per-server limits and per-endpoint options.</summary>
internal static class ListenerSettings
{
    /// <summary>Limits that may change on reload without a new socket.</summary>
    public static void ApplyLimits(KestrelServerOptions options, RuntimeSnapshot snapshot, BoundSocket socket)
    {
        var limits = options.Limits;
        var main = snapshot.Main;
        // nginx's default worker_connections is 512.
        limits.MaxConcurrentConnections = main.WorkerConnections is { } wc and > 0 ? wc : 512;
        limits.MaxConcurrentUpgradedConnections = null;
        // client_max_body_size is enforced by Portico per location, with nginx's 413.
        limits.MaxRequestBodySize = null;
        // nginx limits by timeouts between reads and writes, not by data rates.
        limits.MinRequestBodyDataRate = null;
        limits.MinResponseDataRate = null;
        foreach (var hook in snapshot.ListenerHooks)
        {
            hook.ApplyLimits(options, snapshot, socket);
        }
    }

    public static void ConfigureEndpoint(ListenOptions listenOptions, BoundSocket socket, RuntimeSnapshot snapshot, PorticoHost host)
    {
        listenOptions.Protocols = HttpProtocols.Http1;
        foreach (var hook in snapshot.ListenerHooks)
        {
            hook.ConfigureEndpoint(listenOptions, socket, snapshot, host);
        }
    }
}

/// <summary>
/// A module's say in how a socket is served (TLS, HTTP/2, timeouts): applied when a socket starts and,
/// for limits, again on every reload.
/// </summary>
public interface IListenerHook
{
    void ApplyLimits(KestrelServerOptions options, RuntimeSnapshot snapshot, BoundSocket socket);

    void ConfigureEndpoint(ListenOptions listenOptions, BoundSocket socket, RuntimeSnapshot snapshot, PorticoHost host);
}
