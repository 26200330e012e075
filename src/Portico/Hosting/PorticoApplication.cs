using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Abstractions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portico.Compilation;
using Portico.Config.Syntax;
using Portico.Logging;
using Portico.Pipeline;
using Portico.Routing;

namespace Portico.Hosting;

/// <summary>
/// Kestrel's one terminal request delegate for a listening socket: picks the snapshot, the address
/// configuration, the server by Host, normalizes the URI and runs the phase engine. No routing, no middleware.
/// </summary>
internal sealed class PorticoApplication : IHttpApplication<HttpContext>
{
    private readonly KestrelListener _listener;
    private readonly PorticoHost _host;

    public PorticoApplication(KestrelListener listener, PorticoHost host)
    {
        _listener = listener;
        _host = host;
    }

    /// <summary>One DefaultHttpContext per connection, reused for each of its requests (as ASP.NET's own host does).</summary>
    public HttpContext CreateContext(IFeatureCollection contextFeatures)
    {
        if (contextFeatures is IHostContextContainer<HttpContext> container)
        {
            if (container.HostContext is DefaultHttpContext reused)
            {
                reused.Initialize(contextFeatures);
                return reused;
            }

            var created = new DefaultHttpContext(contextFeatures);
            container.HostContext = created;
            return created;
        }

        return new DefaultHttpContext(contextFeatures);
    }

    public void DisposeContext(HttpContext context, Exception? exception)
    {
        if (context is DefaultHttpContext http)
        {
            http.Uninitialize();
        }
    }

    public async Task ProcessRequestAsync(HttpContext http)
    {
        var snapshot = _host.Current!;
        if (!snapshot.Listeners.TryGetValue(_listener.Key, out var listener))
        {
            // The socket left the configuration; its remaining connections finish on the last snapshot that had it.
            snapshot = _listener.LastSnapshot;
            listener = snapshot.Listeners[_listener.Key];
        }

        snapshot.Enter();
        RequestContext? r = null;
        var failed = false;
        try
        {
            var connection = GetConnection(http, _listener.Socket.Options.UnixPath);
            connection.CountRequest();
            r = RequestContextPool.Take()?.Reuse(http, snapshot, listener, connection)
                ?? new RequestContext(http, snapshot, listener, connection);

            r.Counters = RequestCounters.Install(http, r.TakeReusable<RequestCounters>(RequestCounters.ReuseKey));
            ConnectionTrackerHook.Begin(connection.LogState, r.Counters);

            await HandleAsync(r).ConfigureAwait(false);
        }
        catch (Exception e) when (r is not null)
        {
            failed = true;
            await FailAsync(r, e).ConfigureAwait(false);
        }
        finally
        {
            if (r is not null)
            {
                await CompleteAsync(r).ConfigureAwait(false);
                RunLogHandlers(r);
                if (!failed)
                {
                    // Nothing of this request runs any more: a later request starts from its context.
                    if (r.Counters is { } counters)
                    {
                        r.ReturnReusable(RequestCounters.ReuseKey, counters);
                    }

                    RequestContextPool.Return(r);
                }
            }

            snapshot.Leave();
        }
    }

    // The Host header this thread normalized last, as sent and normalized: the next request (nearly always
    // with the same Host) takes the normalized string instead of making it again. Per thread, so an idle
    // connection keeps nothing for it.
    [ThreadStatic]
    private static (string Raw, string Normalized)? t_lastHost;

    // Every wait here is the last thing it does: the callee's task is returned, no state machine of its own.
    private static ValueTask HandleAsync(RequestContext r)
    {
        var address = r.Listener.ForLocal(r.Connection.LocalAddress);
        r.Address = address;
        UriNormalizer.SplitTarget(r.RawTarget, out var path, out var query, out var lineHost);
        r.Args = query;

        var rawHost = lineHost ?? (r.Http.Request.Headers.Host is { Count: > 0 } h ? h[0] : null);
        if (!string.IsNullOrEmpty(rawHost))
        {
            if (t_lastHost is { } last && string.Equals(last.Raw, rawHost, StringComparison.Ordinal))
            {
                r.Host = last.Normalized;
            }
            else
            {
                if (!UriNormalizer.TryNormalizeHost(rawHost, out var host))
                {
                    return BadRequestAsync(r, address.Names.Default, "client sent invalid host header while reading client request headers");
                }

                r.Host = host;
                t_lastHost = (rawHost, host);
            }
        }

        var server = address.Names.Find(r.Host, out var match, out var regex);
        r.Server = server;
        r.Location = server.ServerLevel;
        if (match is not null)
        {
            r.SetCaptures(regex!, match, r.Host!);
        }

        var mergeSlashes = server.Block.Settings.Get<HttpCoreServerSettings>().MergeSlashes != false;
        if (!UriNormalizer.TryNormalize(path, mergeSlashes, out var uri))
        {
            return BadRequestAsync(r, server, "client sent invalid request");
        }

        r.Uri = uri;
        return RequestPipeline.RunAsync(r);
    }

    private static ValueTask BadRequestAsync(RequestContext r, ServerRuntime server, string message)
    {
        r.Server = server;
        r.Location = server.ServerLevel;
        r.LogError(LogLevel.Info, message);
        r.Status = 400;
        return SpecialResponse.SendAsync(r);
    }

    private static async ValueTask FailAsync(RequestContext r, Exception e)
    {
        if (e is OperationCanceledException && r.Http.RequestAborted.IsCancellationRequested)
        {
            // The client went away: nginx's 499 in the log.
            r.Status = 499;
            return;
        }

        r.LogError(LogLevel.Alert, $"unexpected failure: {e.GetType().Name}: {e.Message}");
        if (r.Http.Response.HasStarted)
        {
            r.Http.Abort();
            return;
        }

        r.Status = 500;
        r.Location ??= r.Server?.ServerLevel!;
        if (r.Location is null)
        {
            r.Http.Response.StatusCode = 500;
            return;
        }

        try
        {
            await SpecialResponse.SendAsync(r).ConfigureAwait(false);
        }
        catch (Exception)
        {
            r.Http.Abort();
        }
    }

    /// <summary>Sends what is left of the response (so the log sees it all, as nginx logs after the last byte) and takes the counts.</summary>
    private static async ValueTask CompleteAsync(RequestContext r)
    {
        var http = r.Http;
        var completed = false;
        if (!http.RequestAborted.IsCancellationRequested)
        {
            try
            {
                await http.Response.CompleteAsync().ConfigureAwait(false);
                completed = !http.RequestAborted.IsCancellationRequested;
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
            {
                // The client went away while the end of the response was being sent.
            }
        }

        r.Counters?.Finish(completed);
        ConnectionTrackerHook.End(http, r.Connection.LogState, r.Counters);
    }

    private static void RunLogHandlers(RequestContext r)
    {
        // A request that failed before a server was chosen is logged by the default server of its address.
        r.Location ??= r.Server?.ServerLevel ?? (r.Address ?? r.Listener.Addresses[0]).Names.Default.ServerLevel;
        var location = r.Location;

        // The client closed the connection before any response: nginx's 499 (444 is the server's own close).
        if (r.Http.RequestAborted.IsCancellationRequested && !r.Http.Response.HasStarted && r.Status != 444)
        {
            r.Status = 499;
        }

        foreach (var h in location.LogHandlers)
        {
            try
            {
                h.Log(r);
            }
            catch (Exception e)
            {
                r.Snapshot.ErrorLog.Alert($"log handler failed: {e.Message}");
            }
        }
    }

    private static ClientConnection GetConnection(HttpContext http, string? unixPath)
    {
        // The connection tracker (installed on every listening socket) keeps the connection's facts in its
        // state, a connection feature every request of the connection sees (HTTP/2 streams too).
        var state = http.Features.Get<ConnectionLogState>();
        if (state?.Client is { } known)
        {
            return known;
        }

        var c = http.Features.Get<IHttpConnectionFeature>();
        var info = new ClientConnection(c?.RemoteIpAddress, c?.RemotePort ?? 0, c?.LocalIpAddress, c?.LocalPort ?? 0, unixPath) { LogState = state };
        if (state is not null)
        {
            state.Client = info;
        }

        return info;
    }
}

/// <summary>
/// RequestContexts of requests that ended cleanly, kept per thread for the next requests (with the objects
/// their modules left for reuse). Bounded, and held by no connection: an idle connection keeps none.
/// </summary>
internal static class RequestContextPool
{
    private const int PerThread = 64;

    [ThreadStatic]
    private static ThreadStack<RequestContext> t_items;

    // Contexts that end on another thread than the one that took them (HTTP/2), or beyond PerThread.
    private static readonly SharedStack<RequestContext> Shared = new(1024);

    public static RequestContext? Take() => t_items.Pop() ?? Shared.Pop();

    public static void Return(RequestContext r)
    {
        if (!t_items.Push(r, PerThread))
        {
            Shared.Push(r);
        }
    }
}
