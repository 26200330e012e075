using System.Net;
using Portico.Pipeline;

namespace Portico.Upstreams.Transport;

/// <summary>The HTTP version spoken to the origin (proxy_http_version).</summary>
public enum UpstreamHttpVersion
{
    Http10,
    Http11,
    Http2,
}

/// <summary>
/// One attempt at a peer, described without any transport's types: the request line and headers as the
/// proxy built them, the body source, timeouts, and the callbacks that receive the response. The client
/// body is read from <c>Context.Http.Request.Body</c>; the response body is written to
/// <c>Context.Http.Response.Body</c> as the handler left it after <see cref="IUpstreamResponseHandler.OnResponseHeadAsync"/>.
/// </summary>
public sealed class UpstreamRequest
{
    public UpstreamRequest()
    {
    }

    /// <summary>An empty request, as <see cref="Release"/> leaves one: its user fills it completely before sending.</summary>
    [System.Diagnostics.CodeAnalysis.SetsRequiredMembers]
#pragma warning disable CS8618 // null until filled, like a released request
    internal UpstreamRequest(bool empty)
#pragma warning restore CS8618
    {
        _ = empty;
    }

    public required RequestContext Context { get; set; }
    public required UpstreamPeer Peer { get; set; }

    /// <summary>"http" or "https" (TLS to the origin).</summary>
    public required bool Tls { get; set; }

    public required string Method { get; set; }

    /// <summary>The request target sent in the request line: "/path?args".</summary>
    public required string Target { get; set; }

    public required UpstreamHttpVersion Version { get; set; }

    /// <summary>Request headers in order, Host first when sent; names as configured or received.</summary>
    public required IReadOnlyList<KeyValuePair<string, string>> Headers { get; set; }

    /// <summary>A body is sent (from the context's request body stream).</summary>
    public bool HasBody { get; set; }

    /// <summary>The body length when known (Content-Length); null sends it chunked.</summary>
    public long? BodyLength { get; set; }

    /// <summary>The request asks the origin to switch protocols (an Upgrade header is sent).</summary>
    public bool Upgrade { get; set; }

    /// <summary>proxy_ignore_client_abort: the client closing does not cancel the exchange with the origin.</summary>
    public bool IgnoreClientAbort { get; set; }

    public required UpstreamTimeouts Timeouts { get; set; }

    /// <summary>Connection settings: these and the peer identify a connection pool.</summary>
    public required UpstreamConnectionOptions Connection { get; set; }

    /// <summary>The TLS server name for this request (SNI and certificate name check); null sends no SNI.</summary>
    public string? SslServerName { get; set; }

    /// <summary>The name checked against the origin certificate when verifying (proxy_ssl_name).</summary>
    public string? SslVerifyName { get; set; }

    /// <summary>The local address to connect from (proxy_bind), evaluated for this request.</summary>
    public IPAddress? BindAddress { get; set; }

    public required IUpstreamResponseHandler Handler { get; set; }

    /// <summary>Where the transport records timings and byte counts of this attempt.</summary>
    public required UpstreamAttemptState State { get; set; }

    /// <summary>
    /// Empties the request before it waits for reuse (as new from <c>UpstreamRequest(empty: true)</c>): it keeps
    /// nothing this request referenced, and nothing of it reaches the next user.
    /// </summary>
    public UpstreamRequest Release()
    {
        Context = null!;
        Peer = null!;
        Tls = false;
        Method = null!;
        Target = null!;
        Version = default;
        Headers = null!;
        HasBody = false;
        BodyLength = null;
        Upgrade = false;
        IgnoreClientAbort = false;
        Timeouts = default;
        Connection = null!;
        SslServerName = null;
        SslVerifyName = null;
        BindAddress = null;
        Handler = null!;
        State = null!;
        return this;
    }
}

public readonly record struct UpstreamTimeouts(TimeSpan Connect, TimeSpan Send, TimeSpan Read);

/// <summary>The status line and headers the origin sent, in order.</summary>
public sealed class UpstreamResponseHead
{
    public required int Status { get; init; }
    public string? Reason { get; init; }
    public required Version Version { get; init; }
    public required IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; }
}

/// <summary>What to do with the response body after the head was processed.</summary>
public enum ResponseDisposition
{
    /// <summary>Copy the body to the client.</summary>
    Proxy,

    /// <summary>Do not read the body (next upstream, intercepted error, X-Accel-Redirect); the connection is closed.</summary>
    Discard,
}

/// <summary>The proxy's side of an exchange: it turns the upstream head into the client response.</summary>
public interface IUpstreamResponseHandler
{
    /// <summary>Called once the origin's head arrived; sets the client status, headers and body sink.</summary>
    ValueTask<ResponseDisposition> OnResponseHeadAsync(UpstreamResponseHead head);

    /// <summary>Called with the origin's trailers after the body was copied.</summary>
    void OnTrailers(IReadOnlyList<KeyValuePair<string, string>> trailers);
}

/// <summary>
/// A response body sink that lends the client connection's own output memory, so a transport can read the
/// origin's bytes straight into it (no copy between the two connections). A transport asks before each read
/// and falls back to <see cref="System.IO.Stream.WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/> when
/// the sink has nothing to lend (the client is behind, a rate applies, the response has not started).
/// </summary>
public interface IDirectBodySink
{
    /// <summary>The sink would lend memory now (checked before waiting for the origin's next bytes).</summary>
    bool CanLend { get; }

    /// <summary>Memory of at least <paramref name="minimum"/> bytes to read into, or empty when the sink cannot lend any now.</summary>
    Memory<byte> DirectMemory(int minimum);

    /// <summary>
    /// Sends the first <paramref name="count"/> bytes of the memory from <see cref="DirectMemory"/> (count &gt; 0),
    /// as a write of that many bytes would.
    /// </summary>
    ValueTask CommitDirectAsync(int count, CancellationToken cancellationToken);
}

/// <summary>
/// How an attempt ended, classified once: success or a failure flag with nginx's error text and the action
/// it happened in ("connecting to upstream", "reading response header from upstream" ...).
/// </summary>
public readonly record struct UpstreamOutcome
{
    public UpstreamFailure Failure { get; init; }

    /// <summary>nginx's message without the action: "connect() failed (111: Connection refused)".</summary>
    public string? Error { get; init; }

    /// <summary>The action the error happened in, as nginx appends it after "while".</summary>
    public string? Action { get; init; }

    public Config.Syntax.LogLevel Level { get; init; }

    /// <summary>The request (or part of it) reached the origin.</summary>
    public bool RequestSent { get; init; }

    /// <summary>The response head was received and handled.</summary>
    public bool HeadReceived { get; init; }

    /// <summary>The head handler discarded the body.</summary>
    public bool Discarded { get; init; }

    /// <summary>The client went away or failed (nginx's 499, or 408 for send_timeout).</summary>
    public ClientFailure Client { get; init; }

    /// <summary>The client's request body could not be read: the status to finish with (400, 408, 413).</summary>
    public int ClientBodyStatus { get; init; }

    public bool IsSuccess => Failure == UpstreamFailure.None && Client == ClientFailure.None && ClientBodyStatus == 0;

    public static UpstreamOutcome Success(bool discarded) => new() { RequestSent = true, HeadReceived = true, Discarded = discarded };
}

public enum ClientFailure
{
    None,

    /// <summary>The client closed the connection.</summary>
    Closed,

    /// <summary>Writing to the client did not progress within send_timeout.</summary>
    TimedOut,
}

/// <summary>
/// The seam between the attempt loop and whatever moves bytes to the origin (YARP's forwarder today, a
/// transport of Portico's own later): one request in, one classified outcome out.
/// </summary>
public interface IUpstreamTransport
{
    ValueTask<UpstreamOutcome> SendAsync(UpstreamRequest request);
}
