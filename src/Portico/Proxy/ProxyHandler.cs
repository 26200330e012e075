using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portico.ClientSide;
using Portico.Config.Syntax;
using Portico.Logging;
using Portico.Pipeline;
using Portico.Routing;
using Portico.Upstreams;
using Portico.Upstreams.Transport;

namespace Portico.Proxy;

/// <summary>
/// The content handler of a location with proxy_pass: reads (or streams) the client body, builds the
/// request nginx would send, and owns the attempt loop over the group's peers. Each attempt goes through
/// the transport seam and comes back classified; the failure flags decide whether the next peer is tried.
/// </summary>
public sealed class ProxyHandler : ContentHandler
{
    private static readonly RequestKey HeadersKey = new();
    private static readonly RequestKey ResponseKey = new();
    private static readonly RequestKey RequestKey = new();
    private static readonly RequestKey IteratorKey = new();
    private readonly ProxyLocation _loc;

    public ProxyHandler(ProxyLocation location)
    {
        _loc = location;
    }

    public ProxyLocation Location => _loc;

    /// <summary>The wait for a max_conns slot; its closure is allocated only by requests that queue.</summary>
    private static ValueTask<bool> WaitInQueueAsync(GroupState state, UpstreamGroup group, int limit, TimeSpan remaining, ProxyLocation loc, RequestContext r) =>
        state.Queue.WaitAsync(limit, remaining, loc.Time, r.Http.RequestAborted, () => AnyAvailable(group));

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    public override async ValueTask<Flow> HandleAsync(RequestContext r)
    {
        var loc = _loc;
        if (r.Http.RequestAborted.IsCancellationRequested && !loc.IgnoreClientAbort)
        {
            r.Status = 499;
            return Flow.Done;
        }

        // The target: a constant URL and its group, or a URL built from variables for this request.
        var url = loc.Url;
        var group = loc.Group;
        PeerIterator iterator;
        if (url is null)
        {
            var text = loc.UrlTemplate!.Evaluate(r);
            string? error;
            url = loc.RuntimeUrlParser is { } parse ? parse(text, out error) : ProxyUrl.Parse(text, out error, runtime: true);
            if (url is null)
            {
                r.LogError(LogLevel.Error, error!);
                return r.Finish(500);
            }

            if (!Resolve(r, url, out group, out var single, out var status))
            {
                return r.Finish(status);
            }

            iterator = group?.Balancer.Begin(r, r.TakeReusable<PeerIterator>(IteratorKey)) ?? new SinglePeer(single!);
        }
        else
        {
            iterator = group!.Balancer.Begin(r, r.TakeReusable<PeerIterator>(IteratorKey));
        }

        // The balancer's own iterator, without the tries limit: the next request on this context restarts it.
        var balanced = iterator;
        if (loc.NextUpstreamTries > 0 || loc.NextUpstreamTimeout > TimeSpan.Zero)
        {
            iterator = new LimitedPeerIterator(iterator, loc.NextUpstreamTries, loc.NextUpstreamTimeout, loc.Time);
        }

        var run = ProxyRun.Start(r, url);
        var target = ProxyRequestBuilder.Target(r, loc, url);
        if (target.Length == 0)
        {
            r.LogError(LogLevel.Error, "zero length URI to proxy");
            return r.Finish(500);
        }

        var method = loc.Method?.Evaluate(r) ?? r.Method;
        if (method.Length == 0)
        {
            method = r.Method;
        }

        // The body: the configured one, the client's read completely, or the client's streamed.
        var request = r.Http.Request;
        var originalBody = request.Body;
        byte[]? setBody = null;
        ClientBody? buffered = null;
        ClientBodyStream? streamed = null;
        var hasClientBody = request.ContentLength > 0
            || (request.ContentLength is null && r.Http.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true);
        if (loc.SetBody is not null)
        {
            setBody = Encoding.UTF8.GetBytes(loc.SetBody.Evaluate(r));
            run.InternalBodyLength = setBody.Length;
        }
        else if (loc.PassRequestBody && hasClientBody)
        {
            var chunked = request.ContentLength is null;
            var stream = !loc.RequestBuffering && (!chunked || loc.Version != UpstreamHttpVersion.Http10);
            if (stream)
            {
                streamed = new ClientBodyStream(r, originalBody, r.Location.Get<ClientSettings>());
                run.InternalBodyLength = request.ContentLength ?? -1;
                run.InternalChunked = chunked;
            }
            else
            {
                try
                {
                    buffered = await ClientBody.ReadAsync(r).ConfigureAwait(false);
                }
                catch (ClientBodyException e)
                {
                    r.LogError(e.Level, e.Message + " while " + ClientBodyException.Action);
                    return r.Finish(e.Status);
                }

                run.InternalBodyLength = buffered.Length;
            }
        }
        else if (loc.PassRequestBody && request.ContentLength == 0)
        {
            run.InternalBodyLength = 0;
        }

        var headers = ProxyRequestBuilder.Headers(r, loc, r.TakeReusable<List<KeyValuePair<string, string>>>(HeadersKey));
        var upgrade = r.Http.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true && HasHeader(headers, "Upgrade");
        var hasBody = setBody is not null || buffered is not null || streamed is not null || run.InternalBodyLength == 0;
        var (sslServerName, sslVerifyName) = SslNames(r, loc, url);
        var bind = Bind(r, loc);
        var options = url.Https ? loc.TlsConnection ?? loc.Connection : loc.Connection;
        var states = UpstreamStates.For(r);
        states.BeginExchange();
        var first = true;
        var schema = url.Schema;
        UpstreamOutcome outcome = default;
        ProxyResponse? response = null;
        try
        {
            long queued = -1;
            while (true)
            {
                if (!iterator.TryNext(out var peer))
                {
                    if (!iterator.Busy)
                    {
                        break;
                    }

                    // No peer can be chosen now: wait in the queue for a slot (Plus), or "no live upstreams".
                    if (group?.Spec?.Queue is int limit && group.State is { } groupState)
                    {
                        var waitStart = loc.Time.GetTimestamp();
                        var remaining = group.Spec.QueueTimeout - TimeSpan.FromMilliseconds(Math.Max(0, queued));
                        if (remaining > TimeSpan.Zero && await WaitInQueueAsync(groupState, group, limit, remaining, loc, r).ConfigureAwait(false))
                        {
                            queued = Math.Max(0, queued) + (long)loc.Time.GetElapsedTime(waitStart).TotalMilliseconds;
                            continue;
                        }

                        if (r.Http.RequestAborted.IsCancellationRequested)
                        {
                            return ClientGone(r, ClientFailure.Closed);
                        }

                        r.SetItem(RequestLogFormat.UpstreamLogKey, schema + group.Name + (loc.LogTarget ? target : string.Empty));
                        r.LogError(LogLevel.Error, (groupState.Queue.Waiting >= limit ? "upstream queue is full" : "upstream queue timed out") + " while connecting to upstream");
                    }
                    else
                    {
                        r.SetItem(RequestLogFormat.UpstreamLogKey, schema + (group?.Name ?? string.Empty) + (loc.LogTarget ? target : string.Empty));
                        r.LogError(LogLevel.Error, "no live upstreams while connecting to upstream");
                    }

                    states.Add(group?.Name ?? string.Empty).Status = 502;
                    outcome = new UpstreamOutcome { Failure = UpstreamFailure.NoLive };
                    break;
                }

                run.SetLogUpstream(r, schema, peer.Name, peer.IsUnix ? (loc.LogTarget ? ":" + target : ":") : (loc.LogTarget ? target : string.Empty));
                var state = states.Add(peer.Name);
                if (queued >= 0)
                {
                    state.QueueTime = queued;
                }

                request.Body = setBody is not null ? new MemoryStream(setBody, writable: false)
                    : buffered is not null ? buffered.OpenRead()
                    : streamed is not null ? streamed
                    : run.InternalBodyLength == 0 ? Stream.Null : originalBody;
                // The first attempt uses the objects an earlier request left (given back after a success only).
                response = first ? r.TakeReusable<ProxyResponse>(ResponseKey) : null;
                response = response is null
                    ? new ProxyResponse(r, loc, states, iterator, method, streamed is not null)
                    : response.Begin(r, loc, states, iterator, method, streamed is not null);
                var upstream = (first ? r.TakeReusable<UpstreamRequest>(RequestKey) : null) ?? new UpstreamRequest(empty: true);
                first = false;
                upstream.Context = r;
                upstream.Peer = peer;
                upstream.Tls = url.Https;
                upstream.Method = method;
                upstream.Target = target;
                upstream.Version = loc.Version;
                upstream.Headers = headers;
                upstream.HasBody = hasBody;
                upstream.BodyLength = run.InternalBodyLength >= 0 ? run.InternalBodyLength : null;
                upstream.Upgrade = upgrade;
                upstream.IgnoreClientAbort = loc.IgnoreClientAbort;
                upstream.Timeouts = loc.Timeouts;
                upstream.Connection = options;
                upstream.SslServerName = sslServerName;
                upstream.SslVerifyName = sslVerifyName;
                upstream.BindAddress = bind;
                upstream.Handler = response;
                upstream.State = state;

                try
                {
                    outcome = await loc.Transport.SendAsync(upstream).ConfigureAwait(false);
                }
                finally
                {
                    response.RestoreSink();
                }

                if (response.Buffer is { } buffer)
                {
                    buffer.Complete();
                    await buffer.Drained.ConfigureAwait(false);
                    if (outcome.IsSuccess && buffer.ClientError is { } clientError)
                    {
                        outcome = outcome with
                        {
                            Client = TimedResponseBodyFeature.Of(r)?.TimedOut == true || clientError is ClientSendTimeoutException
                                ? ClientFailure.TimedOut : ClientFailure.Closed,
                        };
                    }
                }

                var failure = outcome.Failure;
                if (outcome.IsSuccess && response.NextFailure is { } statusFailure)
                {
                    // test_next: the status is one proxy_next_upstream names and another peer is left.
                    failure = statusFailure;
                    outcome = outcome with { Failure = statusFailure };
                }

                iterator.Report(peer, failure, state);
                if (iterator.Disabled)
                {
                    r.LogError(LogLevel.Warn, "upstream server temporarily disabled while " + (outcome.Action ?? "reading response header from upstream"));
                }

                if (outcome.IsSuccess)
                {
                    if (response.Buffer is null || response.Buffer.Drained.IsCompletedSuccessfully)
                    {
                        // Nothing runs with these any more: the next request on this context takes them.
                        r.ReturnReusable(ResponseKey, response);
                        r.ReturnReusable(RequestKey, upstream.Release());
                        r.ReturnReusable(HeadersKey, headers);
                        r.ReturnReusable(IteratorKey, balanced);
                    }

                    return Finish(r, response);
                }

                if (outcome.ClientBodyStatus != 0)
                {
                    if (outcome.Error is { } bodyError)
                    {
                        r.LogError(outcome.Level, bodyError + " while " + outcome.Action);
                    }

                    return r.Http.Response.HasStarted ? Abort(r) : r.Finish(outcome.ClientBodyStatus);
                }

                if (outcome.Client != ClientFailure.None)
                {
                    return ClientGone(r, outcome.Client);
                }

                if (outcome.Error is { } message)
                {
                    r.LogError(outcome.Level, message + " while " + outcome.Action);
                }

                if (response.HeadProcessed || r.Http.Response.HasStarted)
                {
                    // nginx sent the head already; the truncated response ends with the connection.
                    if (!r.Http.Response.HasStarted)
                    {
                        try
                        {
                            await r.Http.Response.StartAsync().ConfigureAwait(false);
                        }
                        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
                        {
                        }
                    }

                    // With a Content-Length, ending normally lets Kestrel send what it has and close the
                    // connection (the client sees the length unmet); a chunked response must not end cleanly.
                    return r.Http.Response.ContentLength is not null ? await CloseAfterResponseAsync(r).ConfigureAwait(false) : Abort(r);
                }

                var ft = failure;
                if (outcome.RequestSent && UpstreamFailures.IsNonIdempotent(method))
                {
                    ft |= UpstreamFailure.NonIdempotent;
                }

                var next = iterator.Remaining > 0
                    && UpstreamFailures.AllowsNext(loc.NextUpstream, ft)
                    && !(outcome.RequestSent && streamed is not null)
                    && !r.Http.RequestAborted.IsCancellationRequested;
                if (!next)
                {
                    break;
                }

                r.Http.Response.Headers.Clear();
            }
        }
        finally
        {
            request.Body = originalBody;
        }

        if (r.Http.RequestAborted.IsCancellationRequested)
        {
            return ClientGone(r, ClientFailure.Closed);
        }

        r.Http.Response.Headers.Clear();
        return r.Finish(outcome.Failure == UpstreamFailure.NoLive ? 502 : UpstreamFailures.ClientStatus(outcome.Failure));
    }

    /// <summary>Whether some peer of the group could take a request now (a queued request stops waiting).</summary>
    private static bool AnyAvailable(UpstreamGroup group)
    {
        foreach (var p in group.Current.All)
        {
            if (!p.IsDown && !p.IsDraining && p.State.Health == HealthState.Healthy && (p.MaxConns == 0 || p.State.Active < p.MaxConns))
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasHeader(List<KeyValuePair<string, string>> headers, string name)
    {
        foreach (var (n, _) in headers)
        {
            if (n.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static Flow Finish(RequestContext r, ProxyResponse response)
    {
        if (response.InterceptFlow is { } flow)
        {
            return flow;
        }

        if (response.AccelRedirect is { } redirect)
        {
            return AccelRedirect(r, redirect);
        }

        return Flow.Done;
    }

    private static async ValueTask<Flow> CloseAfterResponseAsync(RequestContext r)
    {
        r.CloseConnection = true;
        try
        {
            await r.Http.Response.CompleteAsync().ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // Kestrel reports the unmet Content-Length and closes the connection after what was sent.
        }

        return Flow.Done;
    }

    private static Flow Abort(RequestContext r)
    {
        // nginx resets an HTTP/2 stream it cannot finish with INTERNAL_ERROR (Kestrel's Abort sends CANCEL).
        if (r.Http.Features.Get<IHttpResetFeature>() is { } reset)
        {
            reset.Reset(2);
        }
        else
        {
            r.Http.Abort();
        }

        return Flow.Done;
    }

    private static Flow ClientGone(RequestContext r, ClientFailure failure)
    {
        if (failure == ClientFailure.Closed)
        {
            r.LogError(LogLevel.Info, "client prematurely closed connection");
            if (!r.Http.Response.HasStarted)
            {
                r.Status = 499;
            }
        }

        r.Http.Abort();
        return Flow.Done;
    }

    /// <summary>X-Accel-Redirect: an internal redirect (GET unless HEAD) to a URI or a named location.</summary>
    private static Flow AccelRedirect(RequestContext r, string target)
    {
        if (target.StartsWith('@'))
        {
            if (r.Server.Named.TryGetValue(target, out var named))
            {
                return r.NamedRedirect(named);
            }

            r.LogError(LogLevel.Error, $"could not find named location \"{target}\"");
            return r.Finish(500);
        }

        var q = target.IndexOf('?', StringComparison.Ordinal);
        var path = q < 0 ? target : target[..q];
        var args = q < 0 ? string.Empty : target[(q + 1)..];
        if (!IsSafeUri(path) || !UriNormalizer.TryNormalize(path, false, out var uri))
        {
            return r.Finish(404);
        }

        if (!HttpMethods.IsHead(r.Method))
        {
            r.Method = "GET";
        }

        r.Http.Response.Headers.Remove("Location");
        return r.InternalRedirect(uri, args);
    }

    /// <summary>ngx_http_parse_unsafe_uri: no "..", no NUL, starts with "/".</summary>
    private static bool IsSafeUri(string path)
    {
        if (path.Length == 0 || path[0] != '/' || path.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        var decoded = path.Contains('%', StringComparison.Ordinal) ? System.Uri.UnescapeDataString(path) : path;
        return !(decoded.Contains("/../", StringComparison.Ordinal) || decoded.EndsWith("/..", StringComparison.Ordinal));
    }

    /// <summary>
    /// ngx_http_upstream_init_request for a URL built at run time: an upstream group of that name, an address,
    /// or nginx's "no resolver defined" (Portico has no run-time resolver).
    /// </summary>
    private bool Resolve(RequestContext r, ProxyUrl url, out UpstreamGroup? group, out UpstreamPeer? single, out int status)
    {
        status = 0;
        single = null;
        group = null;
        if (url.UnixPath is not null)
        {
            single = new UpstreamPeer(new UnixDomainSocketEndPoint(url.UnixPath), "unix:" + url.UnixPath, new PeerState());
            return true;
        }

        group = _loc.Registry.Find(url.Host, url.Port, url.NoPort);
        if (group is not null)
        {
            return true;
        }

        var host = url.Host.StartsWith('[') && url.Host.EndsWith(']') ? url.Host[1..^1] : url.Host;
        if (IPAddress.TryParse(host, out var ip))
        {
            var endPoint = new IPEndPoint(ip, url.Port);
            single = new UpstreamPeer(endPoint, UpstreamPeer.NameOf(endPoint), new PeerState());
            return true;
        }

        r.LogError(LogLevel.Error, "no resolver defined to resolve " + url.Host);
        status = 502;
        return false;
    }

    /// <summary>ngx_http_upstream_ssl_name: proxy_ssl_name or the host, without port; no SNI for an address.</summary>
    private static (string? Sni, string? Verify) SslNames(RequestContext r, ProxyLocation loc, ProxyUrl url)
    {
        if (!url.Https)
        {
            return (null, null);
        }

        var name = loc.SslName?.Evaluate(r) ?? (url.UnixPath is not null ? "localhost" : url.Host);
        if (name.Length == 0)
        {
            return (null, null);
        }

        if (!name.StartsWith('['))
        {
            var colon = name.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && name.IndexOf(':', colon + 1) < 0)
            {
                name = name[..colon];
            }
        }
        else if (name.IndexOf(']', StringComparison.Ordinal) is var close and > 0)
        {
            name = name[..(close + 1)];
        }

        var bare = name.Trim('[', ']');
        return IPAddress.TryParse(bare, out _) ? (null, name) : (name, name);
    }

    private static IPAddress? Bind(RequestContext r, ProxyLocation loc)
    {
        if (loc.Bind is null)
        {
            return null;
        }

        var value = loc.Bind.Evaluate(r);
        if (value.Length == 0)
        {
            return null;
        }

        var address = ProxyModule.ParseBindAddress(value);
        if (address is null)
        {
            r.LogError(LogLevel.Error, $"invalid local address \"{value}\"");
        }

        return address;
    }

    /// <summary>A URL built at run time that names one address (nginx's round robin of one resolved peer).</summary>
    private sealed class SinglePeer(UpstreamPeer peer) : PeerIterator
    {
        private bool _taken;

        public override int Remaining => _taken ? 0 : 1;

        public override bool TryNext(out UpstreamPeer next)
        {
            next = peer;
            if (_taken)
            {
                return false;
            }

            _taken = true;
            peer.State.Begin();
            return true;
        }
    }
}

/// <summary>
/// proxy_next_upstream_tries and proxy_next_upstream_timeout around a balancer's iterator: no further peer
/// once that many were tried or that much time passed since the first one.
/// </summary>
internal sealed class LimitedPeerIterator(PeerIterator inner, int maxTries, TimeSpan timeout, TimeProvider time) : PeerIterator
{
    private readonly long _start = time.GetTimestamp();
    private int _taken;

    public override int Remaining
    {
        get
        {
            if (timeout > TimeSpan.Zero && _taken > 0 && time.GetElapsedTime(_start) >= timeout)
            {
                return 0;
            }

            var left = inner.Remaining;
            return maxTries > 0 ? Math.Min(left, maxTries - _taken) : left;
        }
    }

    public override bool Busy => inner.Busy;
    public override bool Full => inner.Full;
    public override bool Disabled => inner.Disabled;

    public override bool TryNext(out UpstreamPeer peer)
    {
        if (_taken > 0 && Remaining <= 0)
        {
            peer = null!;
            return false;
        }

        if (!inner.TryNext(out peer))
        {
            return false;
        }

        _taken++;
        return true;
    }

    public override void Report(UpstreamPeer peer, UpstreamFailure failure) => inner.Report(peer, failure);
}
