using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http;
using Portico.Config.Syntax;

namespace Portico.Upstreams.Transport.Http1;

/// <summary>
/// Portico's own upstream exchange for HTTP/1.0 and HTTP/1.1 origins (http:// and https://), behind the
/// same seam as <see cref="YarpTransport"/> and classified the same way, so the attempt loop, retries,
/// passive health and the logs cannot tell them apart. Connections come from the peer's
/// <see cref="Http1Pool"/> (kept with the peer's <see cref="TransportHandle"/> across reloads); a pooled
/// connection that turns out stale before anything of the response arrived is replaced by a fresh one
/// when the request can be sent again. HTTP/2 origins (proxy_http_version 2) and gRPC stay on YARP.
/// </summary>
public sealed class Http1Transport : IUpstreamTransport
{
    /// <summary>The environment variable that selects the transport for HTTP/1.x origins: "yarp" or "portico" (the default).</summary>
    public const string SwitchVariable = "PORTICO_UPSTREAM_TRANSPORT";

    private readonly Func<UpstreamRequest, TransportHandle> _pools;

    public Http1Transport(Func<UpstreamRequest, TransportHandle> pools)
    {
        _pools = pools;
    }

    /// <summary>YARP's forwarder carries HTTP/1.x exchanges too (PORTICO_UPSTREAM_TRANSPORT=yarp): for comparisons in bench/.</summary>
    public static bool UseYarp { get; set; } =
        string.Equals(Environment.GetEnvironmentVariable(SwitchVariable), "yarp", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The transport selection point: this transport for HTTP/1.0 and 1.1 origins unless switched off, YARP's
    /// for HTTP/2 (and whatever else asks for it).
    /// </summary>
    public static IUpstreamTransport Select(UpstreamHttpVersion version, IUpstreamTransport yarp, Func<UpstreamRequest, TransportHandle> pools) =>
        version == UpstreamHttpVersion.Http2 || UseYarp ? yarp : new Http1Transport(pools);

    public ValueTask<UpstreamOutcome> SendAsync(UpstreamRequest request)
    {
        var handle = _pools(request);
        handle.Acquire();
        return SendAsync(request, handle.Http1, handle);
    }

    /// <summary>
    /// One attempt at the pool's peer (the pool is given directly by tests and benchmarks); releases
    /// <paramref name="handle"/> when it ends.
    /// </summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    internal static async ValueTask<UpstreamOutcome> SendAsync(UpstreamRequest request, Http1Pool pool, TransportHandle? handle = null)
    {
        try
        {
            var time = pool.Time;
            var started = time.GetTimestamp();
            var http = request.Context.Http;
            var clientToken = request.IgnoreClientAbort ? CancellationToken.None : http.RequestAborted;
            var state = request.State;
            if (clientToken.IsCancellationRequested)
            {
                return Classified(request, null, new UpstreamOutcome { Client = ClientFailure.Closed }, time, started, time.GetTimestamp());
            }

            if (!http.Response.HasStarted)
            {
                http.Response.StatusCode = StatusCodes.Status200OK;
            }

            var body = request.HasBody ? http.Request.Body : null;
            var bodyPosition = body is { CanSeek: true } ? body.Position : 0;
            // max_conns is the balancer's (a slot per peer, taken before the attempt): the pool only counts.
            pool.Enter();

            try
            {
                var fresh = false;
                while (true)
                {
                    var connection = fresh ? null : pool.TakeIdle(UpstreamFailures.IsNonIdempotent(request.Method), started);
                    var reused = connection is not null;
                    if (connection is null)
                    {
                        try
                        {
                            connection = await pool.OpenAsync(request, clientToken).ConfigureAwait(false);
                        }
                        catch (UpstreamConnectException e)
                        {
                            return Classified(request, null, new UpstreamOutcome
                            {
                                Failure = e.Failure, Error = e.Message, Action = e.Action, Level = e.Level, ClientBodyStatus = e.FinalStatus ?? 0,
                            }, time, started, time.GetTimestamp());
                        }
                        catch (OperationCanceledException) when (clientToken.IsCancellationRequested)
                        {
                            return Classified(request, null, new UpstreamOutcome { Client = ClientFailure.Closed }, time, started, time.GetTimestamp());
                        }
                    }
                    else
                    {
                        // nginx reports no connect time for a cached connection.
                        state.ConnectTime = 0;
                    }

                    connection.StartClock(started);
                    Http1Result result;
                    try
                    {
                        result = connection.Settle(await connection.ExchangeAsync(request, reused, clientToken).ConfigureAwait(false));
                    }
                    catch
                    {
                        // The proxy's head handler failed: the connection is in an unknown state.
                        pool.Close(connection);
                        throw;
                    }

                    if (result.Retry)
                    {
                        // Stale: the peer closed the pooled connection before this request reached it.
                        pool.Close(connection);
                        if (body is { CanSeek: true })
                        {
                            body.Position = bodyPosition;
                        }

                        fresh = true;
                        continue;
                    }

                    var ended = time.GetTimestamp();
                    var outcome = Classified(request, connection, result.Outcome, time, started, ended);
                    pool.Return(connection, result.Reusable && outcome.IsSuccess, ended);
                    return outcome;
                }
            }
            finally
            {
                pool.Exit();
            }
    
        }
        finally
        {
            handle?.Release();
        }
    }

    /// <summary>Records $upstream_* of the attempt as YarpTransport does.</summary>
    private static UpstreamOutcome Classified(UpstreamRequest request, Http1Connection? c, UpstreamOutcome outcome, TimeProvider time, long started, long ended)
    {
        var state = request.State;
        state.ResponseTime = (long)time.GetElapsedTime(started, ended).TotalMilliseconds;
        if (c is not null && c.HeadReceived)
        {
            state.Status = c.Status;
        }
        else if (outcome.Failure != UpstreamFailure.None)
        {
            state.Status = UpstreamFailures.ClientStatus(outcome.Failure);
        }

        var sent = c is not null && c.RequestSent;
        if (sent)
        {
            state.BytesSent = c!.BytesSent;
        }

        if (c is not null)
        {
            state.BytesReceived = c.BytesReceived;
            state.ResponseLength = c.BodyBytesReceived;
        }

        return outcome.RequestSent || !sent ? outcome : outcome with { RequestSent = true };
    }
}
