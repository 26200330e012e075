using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portico.Compilation;
using Portico.Config;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Logging;
using Portico.Pipeline;
using Portico.Upstreams;
using Portico.Upstreams.Transport;
using Portico.Upstreams.Transport.Http1;
using Portico.Variables;

namespace Portico.IntegrationTests.Transport;

/// <summary>The head the transport handed to the proxy, and what it does with it.</summary>
public sealed class RecordingHandler : IUpstreamResponseHandler
{
    public UpstreamResponseHead? Head { get; private set; }
    public IReadOnlyList<KeyValuePair<string, string>>? Trailers { get; private set; }
    public ResponseDisposition Disposition { get; init; } = ResponseDisposition.Proxy;

    public ValueTask<ResponseDisposition> OnResponseHeadAsync(UpstreamResponseHead head)
    {
        Head = head;
        return ValueTask.FromResult(Disposition);
    }

    public void OnTrailers(IReadOnlyList<KeyValuePair<string, string>> trailers) => Trailers = trailers;
}

/// <summary>
/// Drives Portico's HTTP/1 transport directly, without Kestrel in front: a request context over a
/// DefaultHttpContext whose response body is a MemoryStream, a pool with chosen connection settings
/// (upstream keepalive, max_conns) and a time source the test controls.
/// </summary>
public sealed class Http1Harness : IDisposable
{
    private static readonly RuntimeSnapshot Snapshot = CreateSnapshot();

    public Http1Harness(EndPoint origin, UpstreamConnectionOptions options, TimeProvider? time = null)
    {
        var name = UpstreamPeer.NameOf(origin);
        Peer = new UpstreamPeer(origin, name, new PeerState());
        Options = options;
        Pool = new Http1Pool(Peer, options, time);
    }

    public UpstreamPeer Peer { get; }
    public UpstreamConnectionOptions Options { get; }
    public Http1Pool Pool { get; }

    public static UpstreamConnectionOptions Keepalive(int connections = 8, int requests = 1000, TimeSpan? timeout = null, TimeSpan? time = null) =>
        new(null, false, false, 4096, timeout ?? TimeSpan.FromSeconds(60), connections, requests, time);

    public static UpstreamConnectionOptions NoKeepalive(int maxHeader = 4096) => new(null, false, false, maxHeader, null);

    private static RuntimeSnapshot CreateSnapshot()
    {
        var services = new HostServices(new LogWriter(start: false), TimeProvider.System, new EmptyServices());
        var load = new ConfigLoadResult { Paths = new ConfigPaths("/p/", "/p/conf/", "/p/conf/x.conf") };
        return new RuntimeSnapshot(1, load, new VariableRegistry(), ErrorLog.Stderr(LogLevel.Emerg), services);
    }

    /// <summary>One exchange: the response body as the client would have received it.</summary>
    public async Task<Exchange> SendAsync(string method = "GET", string target = "/", byte[]? body = null, Stream? bodyStream = null, long? bodyLength = null,
        IReadOnlyList<KeyValuePair<string, string>>? headers = null, RecordingHandler? handler = null, CancellationToken aborted = default,
        UpstreamHttpVersion version = UpstreamHttpVersion.Http11, UpstreamTimeouts? timeouts = null, MemoryStream? sink = null)
    {
        var http = new DefaultHttpContext();
        http.Request.Method = method;
        http.Features.Get<IHttpRequestFeature>()!.RawTarget = target;
        sink ??= new MemoryStream();
        http.Response.Body = sink;
        http.RequestAborted = aborted;
        var hasBody = body is not null || bodyStream is not null;
        http.Request.Body = bodyStream ?? (body is null ? Stream.Null : new MemoryStream(body, writable: false));
        var r = new RequestContext(http, Snapshot, null!, new ClientConnection(IPAddress.Loopback, 1, IPAddress.Loopback, 2));
        handler ??= new RecordingHandler();
        var state = new UpstreamAttemptState { Peer = Peer.Name };
        var request = new UpstreamRequest
        {
            Context = r,
            Peer = Peer,
            Tls = false,
            Method = method,
            Target = target,
            Version = version,
            Headers = headers ?? [new("Host", "origin")],
            HasBody = hasBody,
            BodyLength = bodyLength ?? body?.LongLength,
            Timeouts = timeouts ?? new UpstreamTimeouts(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10)),
            Connection = Options,
            Handler = handler,
            State = state,
        };
        var outcome = await Http1Transport.SendAsync(request, Pool);
        return new Exchange(outcome, handler.Head, handler.Trailers, sink.ToArray(), state);
    }

    public void Dispose() => Pool.Dispose();

    private sealed class EmptyServices : IServiceProvider
    {
        public object? GetService(Type serviceType) => null;
    }
}

public sealed record Exchange(UpstreamOutcome Outcome, UpstreamResponseHead? Head, IReadOnlyList<KeyValuePair<string, string>>? Trailers, byte[] Body, UpstreamAttemptState State)
{
    public string Text => System.Text.Encoding.Latin1.GetString(Body);
}
