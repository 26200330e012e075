using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portico.ClientSide;
using Portico.Config.Syntax;
using Yarp.ReverseProxy.Forwarder;

namespace Portico.Upstreams.Transport;

/// <summary>
/// The upstream exchange on YARP's <see cref="IHttpForwarder"/>: our transformer writes the request line and
/// headers nginx's rules produced, hands the response head to the proxy, and the forwarder moves the
/// bodies (and upgraded connections). Every way it can end is classified here, once.
/// </summary>
public sealed class YarpTransport : IUpstreamTransport
{
    private static readonly UriCreationOptions RawUri = new() { DangerousDisablePathAndQueryCanonicalization = true };
    private readonly IHttpForwarder _forwarder;
    private readonly Func<UpstreamRequest, TransportHandle> _pools;

    public YarpTransport(IHttpForwarder forwarder, Func<UpstreamRequest, TransportHandle> pools)
    {
        _forwarder = forwarder;
        _pools = pools;
    }

    public async ValueTask<UpstreamOutcome> SendAsync(UpstreamRequest request)
    {
        var http = request.Context.Http;
        var attempt = new AttemptContext(request);
        var transformer = new Transformer(request, attempt);
        var pool = _pools(request);
        // keepalive N: SocketsHttpHandler has no idle-cache size, so a request sent while more than N are in
        // flight closes its connection after the response; at most N connections go back to the idle cache.
        if (pool.Acquire() > request.Connection.KeepaliveConnections && !request.Upgrade)
        {
            attempt.CloseConnection = true;
        }

        var bodyDetection = http.Features.Get<IHttpRequestBodyDetectionFeature>();
        var upgrade = http.Features.Get<IHttpUpgradeFeature>();
        var extendedConnect = http.Features.Get<IHttpExtendedConnectFeature>();
        var lifetime = http.Features.Get<IHttpRequestLifetimeFeature>();
        var reset = http.Features.Get<IHttpResetFeature>();
        var responseFeature = http.Features.Get<IHttpResponseFeature>();
        var deferredAbort = lifetime is null ? null : new DeferredAbort(lifetime, request.IgnoreClientAbort);
        try
        {
            http.Features.Set<IHttpRequestBodyDetectionFeature>(new BodyDetection(request.HasBody));
            if (deferredAbort is not null)
            {
                // YARP aborts the client on its own when a body fails; the attempt loop decides that instead,
                // after sending what was buffered, as nginx does.
                http.Features.Set<IHttpRequestLifetimeFeature>(deferredAbort);
                if (reset is not null)
                {
                    // Over HTTP/2 YARP resets the stream instead (with CANCEL); that is the attempt loop's call too.
                    http.Features.Set<IHttpResetFeature>(new DeferredReset(deferredAbort));
                }
            }

            if (responseFeature is not null)
            {
                // Once the head is handed to the client side, YARP must treat the response as started.
                http.Features.Set<IHttpResponseFeature>(new StartedAfterHead(responseFeature, transformer));
            }

            if (upgrade is { IsUpgradableRequest: true } && !request.Upgrade)
            {
                http.Features.Set<IHttpUpgradeFeature>(NotUpgradable.Instance);
            }

            if (extendedConnect is { IsExtendedConnect: true } && !request.Upgrade)
            {
                // A WebSocket over HTTP/2 the configuration does not upgrade is a plain request to the origin.
                http.Features.Set<IHttpExtendedConnectFeature>(null);
            }

            if (!http.Response.HasStarted)
            {
                http.Response.StatusCode = StatusCodes.Status200OK;
            }

            var config = new ForwarderRequestConfig
            {
                Version = request.Version switch
                {
                    UpstreamHttpVersion.Http10 => HttpVersion.Version10,
                    UpstreamHttpVersion.Http2 => HttpVersion.Version20,
                    _ => HttpVersion.Version11,
                },
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                ActivityTimeout = ActivityTimeout(request),
                AllowResponseBuffering = false,
            };
            // The connector does TLS itself (SNI, verification and client certificates as nginx does them);
            // SocketsHttpHandler uses the SslStream it returns as is, and HTTP/2 sends ":scheme: https".
            var prefix = (request.Tls ? "https://" : "http://") + (request.Peer.IsUnix ? "localhost" : request.Peer.Name);
            ForwarderError error;
            try
            {
                error = await _forwarder.SendAsync(http, prefix, pool.Invoker, config, transformer).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return Classified(request, attempt, transformer, Failure(e, attempt, transformer, http), attempt.Connected);
            }

            var exception = http.Features.Get<IForwarderErrorFeature>()?.Exception;
            http.Features.Set<IForwarderErrorFeature>(null);
            var outcome = Classify(error, exception, attempt, transformer, http);
            if (deferredAbort?.Requested == true && outcome.IsSuccess)
            {
                outcome = outcome with { Client = ClientFailure.Closed };
            }

            return Classified(request, attempt, transformer, outcome, attempt.Connected || outcome.RequestSent);
        }
        finally
        {
            http.Features.Set(bodyDetection);
            http.Features.Set(upgrade);
            http.Features.Set(extendedConnect);
            if (lifetime is not null)
            {
                http.Features.Set(lifetime);
            }

            if (reset is not null)
            {
                http.Features.Set(reset);
            }

            if (responseFeature is not null)
            {
                http.Features.Set(responseFeature);
            }

            pool.Release();
        }
    }

    private static TimeSpan ActivityTimeout(UpstreamRequest request)
    {
        // Upgraded connections use proxy_read_timeout as their idle timeout, in both directions (nginx
        // re-arms the upstream read timer on every event). Otherwise our own per-operation timers apply.
        var t = request.Upgrade
            ? request.Timeouts.Read
            : Max(request.Timeouts.Read, request.Timeouts.Send) + TimeSpan.FromMinutes(1);
        return t <= TimeSpan.Zero || t > TimeSpan.FromDays(24) ? TimeSpan.FromDays(24) : t;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static UpstreamOutcome Classified(UpstreamRequest request, AttemptContext attempt, Transformer t, UpstreamOutcome outcome, bool sent)
    {
        var state = request.State;
        state.ResponseTime = attempt.ElapsedMilliseconds;
        if (t.HeadReceived)
        {
            state.Status = t.Status;
        }
        else if (outcome.Failure != UpstreamFailure.None)
        {
            state.Status = UpstreamFailures.ClientStatus(outcome.Failure);
        }

        if (sent)
        {
            state.BytesSent = t.RequestHeadBytes + Interlocked.Read(ref attempt.BodyBytesSent);
        }

        var body = Interlocked.Read(ref attempt.BodyBytesReceived);
        state.BytesReceived = t.ResponseHeadBytes + body;
        state.ResponseLength = body;
        return outcome with { RequestSent = outcome.RequestSent || sent };
    }

    private static UpstreamOutcome Classify(ForwarderError error, Exception? e, AttemptContext attempt, Transformer t, HttpContext http)
    {
        var clientGone = http.Features.Get<IHttpRequestLifetimeFeature>()?.RequestAborted.IsCancellationRequested == true;
        switch (error)
        {
            case ForwarderError.None:
                return UpstreamOutcome.Success(t.Discarded);

            case ForwarderError.RequestCanceled:
            case ForwarderError.RequestBodyCanceled:
            case ForwarderError.ResponseBodyCanceled:
            case ForwarderError.UpgradeRequestCanceled:
            case ForwarderError.UpgradeResponseCanceled:
                if (t.HeadReceived && error == ForwarderError.RequestBodyCanceled && !clientGone)
                {
                    return UpstreamOutcome.Success(t.Discarded);
                }

                return new UpstreamOutcome { Client = ClientFailure.Closed, HeadReceived = t.HeadReceived };

            case ForwarderError.RequestBodyClient:
            case ForwarderError.RequestBodyDestination:
                if (t.HeadReceived)
                {
                    // The response was delivered; the origin did not want the rest of the body.
                    return UpstreamOutcome.Success(t.Discarded);
                }

                return Failure(e, attempt, t, http);

            case ForwarderError.ResponseBodyClient:
            case ForwarderError.UpgradeResponseClient:
            case ForwarderError.UpgradeRequestClient:
                return FindInChain<ClientSendTimeoutException>(e) is not null
                    ? new UpstreamOutcome { Client = ClientFailure.TimedOut, HeadReceived = true, RequestSent = true }
                    : new UpstreamOutcome { Client = ClientFailure.Closed, HeadReceived = true, RequestSent = true };

            case ForwarderError.ResponseBodyDestination:
                if (attempt.Timeout is { } timeout)
                {
                    return new UpstreamOutcome
                    {
                        Failure = UpstreamFailure.Timeout, Error = timeout.Message, Action = "reading upstream", Level = LogLevel.Error,
                        HeadReceived = true, RequestSent = true,
                    };
                }

                return new UpstreamOutcome
                {
                    Failure = UpstreamFailure.Error, Error = ReadError(e, "upstream prematurely closed connection"), Action = "reading upstream",
                    Level = LogLevel.Error, HeadReceived = true, RequestSent = true,
                };

            case ForwarderError.UpgradeActivityTimeout:
                return new UpstreamOutcome
                {
                    Failure = UpstreamFailure.Timeout, Error = "upstream timed out (110: Connection timed out)", Action = "proxying upgraded connection",
                    Level = LogLevel.Error, HeadReceived = true, RequestSent = true,
                };

            case ForwarderError.UpgradeRequestDestination:
            case ForwarderError.UpgradeResponseDestination:
                // The origin closed its side of an upgraded connection: nginx finalizes without an error.
                return UpstreamOutcome.Success(false);

            case ForwarderError.ResponseHeaders:
                throw new InvalidOperationException("processing the upstream response head failed", e);

            default:
                return Failure(e, attempt, t, http);
        }
    }

    private static UpstreamOutcome Failure(Exception? e, AttemptContext attempt, Transformer t, HttpContext http)
    {
        if (FindInChain<ClientBodyException>(e) is { } body)
        {
            return new UpstreamOutcome { ClientBodyStatus = body.Status, Error = body.Message, Level = body.Level, Action = "reading client request body" };
        }

        if (http.RequestAborted.IsCancellationRequested)
        {
            return new UpstreamOutcome { Client = ClientFailure.Closed, RequestSent = attempt.Connected };
        }

        if (FindInChain<UpstreamConnectException>(e) is { } connect)
        {
            return new UpstreamOutcome
            {
                Failure = connect.Failure, Error = connect.Message, Action = connect.Action, Level = connect.Level, RequestSent = false,
                ClientBodyStatus = connect.FinalStatus ?? 0,
            };
        }

        var action = attempt.BodySent || !t.HasBody ? "reading response header from upstream" : "sending request to upstream";
        if (attempt.Timeout is { } timeout || (timeout = FindInChain<UpstreamTimeoutException>(e)!) is not null)
        {
            return new UpstreamOutcome { Failure = UpstreamFailure.Timeout, Error = timeout.Message, Action = timeout.Action, Level = LogLevel.Error, RequestSent = true };
        }

        if (FindInChain<HttpRequestException>(e) is { } hre)
        {
            switch (hre.HttpRequestError)
            {
                case HttpRequestError.InvalidResponse:
                    return new UpstreamOutcome
                    {
                        Failure = UpstreamFailure.InvalidHeader, Error = InvalidHeader(hre), Action = "reading response header from upstream",
                        Level = LogLevel.Error, RequestSent = true,
                    };
                case HttpRequestError.ConfigurationLimitExceeded:
                    return new UpstreamOutcome
                    {
                        Failure = UpstreamFailure.InvalidHeader, Error = "upstream sent too big header", Action = "reading response header from upstream",
                        Level = LogLevel.Error, RequestSent = true,
                    };
                case HttpRequestError.ResponseEnded:
                    return new UpstreamOutcome
                    {
                        Failure = UpstreamFailure.Error, Error = "upstream prematurely closed connection", Action = "reading response header from upstream",
                        Level = LogLevel.Error, RequestSent = true,
                    };
                case HttpRequestError.HttpProtocolError:
                    return new UpstreamOutcome
                    {
                        Failure = UpstreamFailure.Error, Error = "upstream sent invalid response", Action = action, Level = LogLevel.Error, RequestSent = true,
                    };
            }
        }

        if (FindInChain<AuthenticationException>(e) is { } tls)
        {
            return new UpstreamOutcome
            {
                Failure = UpstreamFailure.Error, Error = $"SSL_do_handshake() failed (SSL: {tls.Message.TrimEnd('.')})", Action = "SSL handshaking to upstream",
                Level = LogLevel.Crit, RequestSent = false,
            };
        }

        if (FindInChain<SocketException>(e) is { } se)
        {
            var op = action.StartsWith("sending", StringComparison.Ordinal) ? "send()" : "recv()";
            return new UpstreamOutcome
            {
                Failure = UpstreamFailure.Error, Error = $"{op} failed ({UpstreamConnector.Errno(se)})", Action = action, Level = LogLevel.Error, RequestSent = true,
            };
        }

        return new UpstreamOutcome
        {
            Failure = UpstreamFailure.Error, Error = "upstream prematurely closed connection", Action = action, Level = LogLevel.Error, RequestSent = true,
        };
    }

    /// <summary>
    /// nginx's "upstream sent invalid header: \"Bad\x20...\"" (the line up to the first invalid character), or
    /// "upstream sent no valid HTTP/1.0 header" for a status line that is not one.
    /// </summary>
    private static string InvalidHeader(HttpRequestException e)
    {
        var message = e.Message;
        if (message.Contains("status line", StringComparison.OrdinalIgnoreCase))
        {
            return "upstream sent no valid HTTP/1.0 header";
        }

        var start = message.IndexOf('\'');
        var end = message.LastIndexOf('\'');
        if (start < 0 || end <= start)
        {
            return "upstream sent invalid header";
        }

        var line = message[(start + 1)..end];
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            var token = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '-' or '_';
            if (!token)
            {
                return $"upstream sent invalid header: \"{line[..i]}\\x{(int)c:x2}...\"";
            }
        }

        return "upstream sent invalid header";
    }

    private static string ReadError(Exception? e, string fallback)
    {
        if (FindInChain<SocketException>(e) is { } se)
        {
            return $"recv() failed ({UpstreamConnector.Errno(se)})";
        }

        return fallback;
    }

    private static T? FindInChain<T>(Exception? e) where T : Exception
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is T t)
            {
                return t;
            }

            if (x is AggregateException agg)
            {
                foreach (var inner in agg.InnerExceptions)
                {
                    if (FindInChain<T>(inner) is { } found)
                    {
                        return found;
                    }
                }
            }
        }

        return null;
    }

    /// <summary>Builds YARP's outgoing request from ours and hands the response head back to the proxy.</summary>
    private sealed class Transformer : HttpTransformer
    {
        private readonly UpstreamRequest _request;
        private readonly AttemptContext _attempt;

        public Transformer(UpstreamRequest request, AttemptContext attempt)
        {
            _request = request;
            _attempt = attempt;
        }

        public bool HeadReceived { get; private set; }
        public bool Discarded { get; private set; }

        /// <summary>The proxy accepted the head: the client's response belongs to it now.</summary>
        public bool HeadDelivered { get; private set; }
        public int Status { get; private set; }
        public long RequestHeadBytes { get; private set; }
        public long ResponseHeadBytes { get; private set; }
        public bool HasBody => _request.HasBody;

        public override ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            var r = _request;
            if (!r.Upgrade)
            {
                proxyRequest.Method = Methods.Get(r.Method);
            }

            proxyRequest.RequestUri = new Uri(destinationPrefix + r.Target, RawUri);
            proxyRequest.Options.Set(AttemptContext.Key, _attempt);
            long head = r.Method.Length + 1 + r.Target.Length + 11;
            var content = proxyRequest.Content;
            // YARP makes (and checks the answer to) its own Sec-WebSocket-Key for a WebSocket over HTTP/2.
            var ownKey = r.Upgrade && HttpProtocol.IsHttp2(httpContext.Request.Protocol);
            foreach (var (name, value) in r.Headers)
            {
                head += name.Length + value.Length + 4;
                if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)
                    || (ownKey && name.Equals("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase)))
                {
                    continue;
                }

                if (!proxyRequest.Headers.TryAddWithoutValidation(name, value))
                {
                    content?.Headers.TryAddWithoutValidation(name, value);
                }
            }

            if (content is not null)
            {
                content.Headers.ContentLength = r.BodyLength;
            }

            RequestHeadBytes = head + 2;
            return ValueTask.CompletedTask;
        }

        public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
        {
            if (proxyResponse is null)
            {
                return false;
            }

            var headers = new List<KeyValuePair<string, string>>();
            long bytes = 17 + (proxyResponse.ReasonPhrase?.Length ?? 0);
            Add(proxyResponse.Headers, headers, ref bytes);
            Add(proxyResponse.Content.Headers, headers, ref bytes);
            ResponseHeadBytes = bytes + 2;
            _request.State.HeaderTime = _attempt.ElapsedMilliseconds;
            HeadReceived = true;
            Status = (int)proxyResponse.StatusCode;
            var head = new UpstreamResponseHead
            {
                Status = Status,
                Reason = proxyResponse.ReasonPhrase,
                Version = proxyResponse.Version,
                Headers = headers,
            };
            var disposition = await _request.Handler.OnResponseHeadAsync(head).ConfigureAwait(false);
            Discarded = disposition == ResponseDisposition.Discard;
            HeadDelivered = !Discarded;
            return !Discarded;
        }

        private static void Add(HttpHeaders source, List<KeyValuePair<string, string>> target, ref long bytes)
        {
            foreach (var (name, values) in source.NonValidated)
            {
                foreach (var value in values)
                {
                    target.Add(new KeyValuePair<string, string>(name, value));
                    bytes += name.Length + value.Length + 4;
                }
            }
        }

        public override ValueTask TransformResponseTrailersAsync(HttpContext httpContext, HttpResponseMessage proxyResponse, CancellationToken cancellationToken)
        {
            var trailers = new List<KeyValuePair<string, string>>();
            foreach (var (name, values) in proxyResponse.TrailingHeaders.NonValidated)
            {
                foreach (var value in values)
                {
                    trailers.Add(new KeyValuePair<string, string>(name, value));
                }
            }

            _request.Handler.OnTrailers(trailers);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Records YARP's wish to abort the client instead of doing it.</summary>
    private sealed class DeferredAbort(IHttpRequestLifetimeFeature inner, bool ignoreClientAbort) : IHttpRequestLifetimeFeature
    {
        public bool Requested { get; private set; }

        /// <summary>With proxy_ignore_client_abort on, the exchange does not hear of the client leaving.</summary>
        public CancellationToken RequestAborted
        {
            get => ignoreClientAbort ? CancellationToken.None : inner.RequestAborted;
            set => inner.RequestAborted = value;
        }

        public void Abort() => Requested = true;
    }

    /// <summary>Records YARP's wish to reset the client's HTTP/2 stream, as <see cref="DeferredAbort"/> does for aborts.</summary>
    private sealed class DeferredReset(DeferredAbort abort) : IHttpResetFeature
    {
        public void Reset(int errorCode) => abort.Abort();
    }

    /// <summary>The client response as YARP should see it: started once the proxy took the upstream head.</summary>
    private sealed class StartedAfterHead(IHttpResponseFeature inner, Transformer transformer) : IHttpResponseFeature
    {
        public int StatusCode
        {
            get => inner.StatusCode;
            set => inner.StatusCode = value;
        }

        public string? ReasonPhrase
        {
            get => inner.ReasonPhrase;
            set => inner.ReasonPhrase = value;
        }

        public IHeaderDictionary Headers
        {
            get => inner.Headers;
            set => inner.Headers = value;
        }

        [Obsolete("Use IHttpResponseBodyFeature.Stream instead.")]
        public Stream Body
        {
            get => inner.Body;
            set => inner.Body = value;
        }

        public bool HasStarted => inner.HasStarted || transformer.HeadDelivered;

        public void OnStarting(Func<object, Task> callback, object state) => inner.OnStarting(callback, state);

        public void OnCompleted(Func<object, Task> callback, object state) => inner.OnCompleted(callback, state);
    }

    private sealed class BodyDetection(bool canHaveBody) : IHttpRequestBodyDetectionFeature
    {
        public bool CanHaveBody { get; } = canHaveBody;
    }

    private sealed class NotUpgradable : IHttpUpgradeFeature
    {
        public static readonly NotUpgradable Instance = new();

        public bool IsUpgradableRequest => false;

        public Task<Stream> UpgradeAsync() => throw new InvalidOperationException("the request is not upgraded");
    }

    /// <summary>Cached HttpMethod objects for the usual methods (HttpMethod.Parse allocates for others).</summary>
    private static class Methods
    {
        public static HttpMethod Get(string method) => method switch
        {
            "GET" => HttpMethod.Get,
            "HEAD" => HttpMethod.Head,
            "POST" => HttpMethod.Post,
            "PUT" => HttpMethod.Put,
            "DELETE" => HttpMethod.Delete,
            "OPTIONS" => HttpMethod.Options,
            "PATCH" => HttpMethod.Patch,
            "TRACE" => HttpMethod.Trace,
            "CONNECT" => HttpMethod.Connect,
            _ => new HttpMethod(method),
        };
    }
}
