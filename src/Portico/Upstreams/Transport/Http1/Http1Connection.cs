using System.Buffers;
using System.Buffers.Text;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http.Features;
using Portico.ClientSide;
using Portico.Config.Syntax;
using Portico.Hosting;

namespace Portico.Upstreams.Transport.Http1;

/// <summary>How one exchange on a connection ended.</summary>
internal readonly record struct Http1Result(UpstreamOutcome Outcome, bool Reusable, bool Retry);

/// <summary>
/// One HTTP/1.x connection to an origin and the exchange it carries (one at a time). The request head is
/// written as bytes into one buffer; the request body is sent by its own loop while the response is read
/// (full duplex: an origin that answers before it has read the whole body works); the response head is
/// parsed in place and the body streamed to the client through the same buffer. proxy_send_timeout bounds
/// each write that waits, proxy_read_timeout each read that waits (for the head only once the request is
/// sent, as nginx arms it). Every way the exchange can end is classified here as YarpTransport classifies
/// it, with nginx's messages.
/// </summary>
public sealed class Http1Connection
{
    private const int ReadBufferSize = 64 * 1024;
    private const int WriteBufferSize = 32 * 1024;

    // An exchange starts with buffers sized for heads and small bodies; bodies that stream take the full
    // sizes above. A burst of thousands of concurrent requests then leaves far less memory behind.
    private const int HeadReadSize = 16 * 1024;
    private const int HeadWriteSize = 4 * 1024;

    /// <summary>Room before chunk data for its size line: 16 hex digits and CRLF.</summary>
    private const int ChunkPrefix = 18;

    /// <summary>In-memory bodies up to this size go out in the same write as the head.</summary>
    private const int CoalesceLimit = 16 * 1024;

    private static readonly TimeSpan NoTimer = TimeSpan.FromDays(24);

    private readonly Http1Pool _pool;
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly Http1HeadParser _parser;
    private readonly Http1ChunkedDecoder _chunked = new();
    private readonly CancellationTokenSource _readCts = new();
    private readonly CancellationTokenSource _writeCts = new();
    private readonly Lock _timerGate = new();
    private Http1HeadParser? _trailerParser;
    private int _closed;

    // The exchange in progress.
    private UpstreamRequest _request = null!;
    private byte[] _in = [];
    private byte[] _out = [];
    private TimeSpan _readTimeout;
    private TimeSpan _sendTimeout;
    private volatile bool _clientAborted;
    private volatile bool _stopBody;
    private volatile bool _stopResponse;
    private bool _headPending;
    private bool _bodyFinished;
    private ValueTask _bodyTask;
    private bool _bodyRunning;
    private Exception? _bodyError;
    private bool _bodyComplete;
    private bool _bodyTouched;
    private bool _sentClose;
    private bool _requestSent;
    private bool _headReceived;
    private bool _sendTimedOut;
    private long _headBytesSent;
    private long _bodyBytesSent;
    private long _bytesReceived;
    private long _bodyBytesReceived;
    private int _status;

    internal Http1Connection(Http1Pool pool, Socket socket, Stream stream, long created)
    {
        _pool = pool;
        _socket = socket;
        _stream = stream;
        Created = created;
        IdleSince = created;
        _parser = new Http1HeadParser(trailers: false, pool.Values);
    }

    public long Created { get; }
    public long IdleSince { get; set; }

    /// <summary>Requests this connection carried (keepalive_requests).</summary>
    public int Requests { get; private set; }

    public int Status => _status;
    public bool HeadReceived => _headReceived;
    public bool RequestSent => _requestSent;
    public long BytesSent => _headBytesSent + Interlocked.Read(ref _bodyBytesSent);
    public long BytesReceived => _bytesReceived;
    public long BodyBytesReceived => _bodyBytesReceived;

    /// <summary>The peer closed (or sent something) while the connection sat idle: it cannot carry a request.</summary>
    internal bool IsClosed => Volatile.Read(ref _closed) == 1;

    internal bool PeerClosedWhileIdle() => Volatile.Read(ref _closed) == 1 || Http1Pool.Readable(_socket);

    /// <summary>Closes the connection once; true the first time.</summary>
    internal bool Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 1)
        {
            return false;
        }

        try
        {
            _stream.Dispose();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
        }

        _socket.Dispose();
        _readCts.Dispose();
        _writeCts.Dispose();
        return true;
    }

    /// <summary>
    /// Runs one exchange on this connection: writes the head, sends the body alongside reading the response
    /// (full duplex), and hands the response to the request's handler. <see cref="Settle"/> gives the result's
    /// final reusability.
    /// </summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    internal async ValueTask<Http1Result> ExchangeAsync(UpstreamRequest request, bool reused, CancellationToken clientToken)
    {
        Begin(request);
        CancellationTokenRegistration registration = default;
        if (clientToken.CanBeCanceled)
        {
            registration = clientToken.UnsafeRegister(static s => ((Http1Connection)s!).OnClientAbort(), this);
        }

        try
        {
            int headLength;
            bool bodyInHead;
            try
            {
                headLength = WriteHead(request, out bodyInHead);
            }
            catch (InvalidDataException e)
            {
                return Fail(UpstreamFailure.Error, e.Message, "sending request to upstream", false);
            }

            // Nothing of this request reached the origin before this write; a reused connection that fails
            // here is stale and the request goes again on a fresh one.
            _requestSent = true;
            try
            {
                await WriteAsync(_out.AsMemory(0, headLength)).ConfigureAwait(false);
            }
            catch (Exception e) when (IsIo(e))
            {
                if (_clientAborted)
                {
                    return ClientClosed();
                }

                if (reused && !_sendTimedOut)
                {
                    return new Http1Result(default, false, Retry: true);
                }

                return Fail(SendFailure(e), false);
            }

            _headBytesSent = headLength - (bodyInHead ? _bodyBytesSent : 0);
            if (!request.HasBody || bodyInHead || request.BodyLength == 0)
            {
                _bodyComplete = true;
                _bodyFinished = true;
            }
            else
            {
                _bodyRunning = true;
                _bodyTask = SendBodyAsync();
            }

            Http1Result result = default;
            try
            {
                result = await ReceiveAsync(reused, clientToken).ConfigureAwait(false);
            }
            finally
            {
                if (_bodyRunning)
                {
                    // A body whose last write is still finishing after a successful answer is waited for (the origin
                    // took the rest; only the completion is late); otherwise the origin answered without the body.
                    var finishing = !_bodyTask.IsCompleted && result.Outcome.IsSuccess && _status < 400;
                    if (!_bodyTask.IsCompleted && !(finishing && (_bodyLastWrite || FinishingIsCheap())))
                    {
                        // The response is complete (or failed) while the body still goes out: stop sending it.
                        _stopBody = true;
                        CancelQuietly(_writeCts);
                    }
                    else if (finishing && !_bodyLastWrite)
                    {
                        // The rest of a small buffered body, for at most FinishWait: an origin that neither reads
                        // it nor closes does not hold the client's response longer than that.
                        var rest = _bodyTask.AsTask();
                        _bodyTask = new ValueTask(rest);
                        if (await Task.WhenAny(rest, Task.Delay(FinishWait)).ConfigureAwait(false) != rest)
                        {
                            _stopBody = true;
                            CancelQuietly(_writeCts);
                        }
                    }

                    // Stopped, finished, or only its last write is finishing (bounded by proxy_send_timeout).
                    await _bodyTask.ConfigureAwait(false);
                }
            }

            return result.Reusable && !_bodyComplete ? result with { Reusable = false } : result;
        }
        finally
        {
            var unregistered = !clientToken.CanBeCanceled || registration.Unregister();
            BufferPool.Return(_in);
            BufferPool.Return(_out);
            _in = [];
            _out = [];
            _request = null!;
            if (!unregistered)
            {
                _clientAborted = true;
            }
        }
    }

    /// <summary>The exchange's result, not reusable when the client went away or a timeout cancelled I/O.</summary>
    internal Http1Result Settle(Http1Result result) =>
        result.Reusable && (_clientAborted || _readCts.IsCancellationRequested || _writeCts.IsCancellationRequested)
            ? result with { Reusable = false }
            : result;

    /// <summary>Moves the bytes not yet used to the start of the buffer, to read more after them.</summary>
    private static void Compact(byte[] buffer, ref int start, ref int filled)
    {
        if (start > 0)
        {
            buffer.AsSpan(start, filled - start).CopyTo(buffer);
            filled -= start;
            start = 0;
        }
    }

    /// <summary>The full-size read buffer for a body that streams; the bytes not yet used move to its start.</summary>
    private void GrowInput(ref int start, ref int filled)
    {
        if (_in.Length >= ReadBufferSize)
        {
            return;
        }

        var bigger = BufferPool.Rent(ReadBufferSize);
        _in.AsSpan(start, filled - start).CopyTo(bigger);
        BufferPool.Return(_in);
        _in = bigger;
        filled -= start;
        start = 0;
    }

    /// <summary>The full-size write buffer for a request body or an upgraded connection (nothing is pending in it then).</summary>
    private void GrowOutput()
    {
        if (_out.Length < WriteBufferSize)
        {
            BufferPool.Return(_out);
            _out = BufferPool.Rent(WriteBufferSize);
        }
    }

    private void Begin(UpstreamRequest request)
    {
        _request = request;
        Requests++;
        _in = BufferPool.Rent(Math.Max(HeadReadSize, _pool.MaxHeaderBytes + 1));
        _out = BufferPool.Rent(HeadWriteSize);
        _readTimeout = Timer(request.Timeouts.Read);
        _sendTimeout = Timer(request.Timeouts.Send);
        _clientAborted = false;
        _stopBody = false;
        _stopResponse = false;
        _headPending = false;
        _bodyFinished = false;
        _bodyTask = default;
        _bodyRunning = false;
        _bodyError = null;
        _bodyLastWrite = false;
        _bodyComplete = false;
        _bodyTouched = false;
        _sentClose = false;
        _requestSent = false;
        _headReceived = false;
        _sendTimedOut = false;
        _headBytesSent = 0;
        _bodyBytesSent = 0;
        _bytesReceived = 0;
        _bodyBytesReceived = 0;
        _status = 0;
    }

    private static TimeSpan Timer(TimeSpan t) => t <= TimeSpan.Zero || t >= NoTimer ? Timeout.InfiniteTimeSpan : t;

    private void OnClientAbort()
    {
        _clientAborted = true;
        CancelQuietly(_readCts);
        CancelQuietly(_writeCts);
    }

    private static void CancelQuietly(CancellationTokenSource cts)
    {
        try
        {
            cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private volatile bool _bodyLastWrite;

    /// <summary>What is left of a body read completely before the exchange and still sent after a successful answer.</summary>
    private const long FinishLimit = 256 * 1024;

    /// <summary>How long the rest of such a body may take before it is cut and the connection closed.</summary>
    internal static readonly TimeSpan FinishWait = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// A buffered body with little left is finished rather than cut, which would cost the connection: an
    /// origin that answers a small upload before reading it (nginx's return, for one) goes on reading it.
    /// A streamed body (the client's pace) or a large rest is stopped as before.
    /// </summary>
    private bool FinishingIsCheap() =>
        _request.BodyLength is { } length && length - Interlocked.Read(ref _bodyBytesSent) <= FinishLimit
        && _request.Context.Http.Request.Body is MemoryStream or FileStream or ClientBody.Slice;

    /// <summary>Reads the response head (skipping 1xx), hands it to the proxy, then moves the body or the upgraded connection.</summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private async ValueTask<Http1Result> ReceiveAsync(bool reused, CancellationToken clientToken)
    {
        var request = _request;
        var parser = _parser;
        var buffer = _in;
        var maxHead = _pool.MaxHeaderBytes;
        var start = 0;
        var filled = 0;
        parser.Reset();
        while (true)
        {
            if (filled > start)
            {
                var step = parser.Parse(buffer.AsSpan(start, filled - start));
                if (step == HeadParse.Invalid)
                {
                    return Fail(UpstreamFailure.InvalidHeader, parser.Error!, "reading response header from upstream", false);
                }

                if (step == HeadParse.Complete)
                {
                    if (parser.Length > maxHead)
                    {
                        return TooBig();
                    }

                    if (parser.Status < 200 && !(parser.Status == 101 && request.Upgrade))
                    {
                        // 100 Continue and other interim responses are skipped.
                        start += parser.Length;
                        parser.Reset();
                        continue;
                    }

                    if (!parser.Finish(buffer.AsSpan(start, parser.Length)))
                    {
                        return Fail(UpstreamFailure.InvalidHeader, parser.Error!, "reading response header from upstream", false);
                    }

                    break;
                }

                if (filled - start >= maxHead)
                {
                    return TooBig();
                }
            }

            Compact(buffer, ref start, ref filled);

            int n;
            try
            {
                n = await ReadAsync(buffer.AsMemory(filled), head: true).ConfigureAwait(false);
            }
            catch (Exception e) when (IsIo(e))
            {
                return HeadReadFailure(e, reused);
            }

            if (n == 0)
            {
                if (reused && _bytesReceived == 0 && CanRetry())
                {
                    return new Http1Result(default, false, Retry: true);
                }

                return HeadReadFailure(null, reused);
            }

            filled += n;
        }

        _headReceived = true;
        _status = parser.Status;
        var state = request.State;
        state.HeaderTime = (long)_pool.Time.GetElapsedTime(_exchangeStarted).TotalMilliseconds;
        var bodyStart = start + parser.Length;
        var head = new UpstreamResponseHead
        {
            Status = parser.Status,
            Reason = parser.Reason,
            Version = parser.Version,
            Headers = parser.Headers,
        };

        var response = request.Context.Http.Response;
        if (!response.HasStarted)
        {
            // As YARP's forwarder does before the head goes to the proxy: the status, and a reason phrase the
            // origin chose that is not the standard one.
            response.StatusCode = parser.Status;
            if (parser.Reason is { } reason && !ReferenceEquals(reason, "OK")
                && !reason.Equals(Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(parser.Status), StringComparison.Ordinal)
                && request.Context.Http.Features.Get<IHttpResponseFeature>() is { } feature)
            {
                feature.ReasonPhrase = reason;
            }
        }

        var disposition = await request.Handler.OnResponseHeadAsync(head).ConfigureAwait(false);
        var noBody = parser.Status is 204 or 304 || (parser.Status < 200 && parser.Status != 101) || IsHead(request.Method);
        if (disposition == ResponseDisposition.Discard)
        {
            var emptyBody = noBody || (!parser.Chunked && parser.ContentLength == 0);
            return Done(discarded: true, reusable: emptyBody && bodyStart == filled && parser.Status != 101);
        }

        if (parser.Status == 101)
        {
            return await UpgradeAsync(buffer.AsMemory(bodyStart, filled - bodyStart), clientToken).ConfigureAwait(false);
        }

        var sink = request.Context.Http.Response.Body;
        if (noBody)
        {
            return Done(discarded: false, reusable: bodyStart == filled);
        }

        if (parser.Chunked)
        {
            return await ChunkedBodyAsync(sink, bodyStart, filled, clientToken).ConfigureAwait(false);
        }

        return await BodyAsync(sink, bodyStart, filled, parser.ContentLength, clientToken).ConfigureAwait(false);
    }

    private long _exchangeStarted;

    internal void StartClock(long timestamp) => _exchangeStarted = timestamp;

    private static bool IsHead(string method) => method.Length == 4 && method == "HEAD";

    /// <summary>A request may go again on a fresh connection: its body can be sent again and the method allows it.</summary>
    private bool CanRetry()
    {
        var r = _request;
        if (r.HasBody && _bodyTouched && !r.Context.Http.Request.Body.CanSeek)
        {
            return false;
        }

        return !UpstreamFailures.IsNonIdempotent(r.Method) && !_clientAborted && !_sendTimedOut;
    }

    /// <summary>A Content-Length body, or a body that ends when the origin closes (length -1).</summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private async ValueTask<Http1Result> BodyAsync(Stream sink, int start, int filled, long length, CancellationToken clientToken)
    {
        if (length < 0 || length > filled - start)
        {
            GrowInput(ref start, ref filled);
        }

        var buffer = _in;
        var remaining = length;
        var extra = false;
        var pending = filled - start;
        if (pending > 0)
        {
            var take = length < 0 ? pending : (int)Math.Min(pending, remaining);
            if (take < pending)
            {
                extra = true;
            }

            if (take > 0)
            {
                if (!await DeliverAsync(sink, buffer.AsMemory(start, take), clientToken).ConfigureAwait(false))
                {
                    return ClientWriteFailure();
                }

                if (remaining > 0)
                {
                    remaining -= take;
                }
            }
        }

        var direct = _stream is SslStream ? null : sink as IDirectBodySink ?? _request.Handler as IDirectBodySink;
        while (remaining != 0 && !extra)
        {
            // What the origin has already sent goes straight into the client connection's output memory when
            // the sink lends it, except the body's last piece: that read goes to our buffer, which has room to
            // see bytes past the body.
            var lend = direct is not null && (length < 0 || remaining > DirectReadMinimum) && direct.CanLend;
            if (lend && !HasData())
            {
                // Wait for the origin's next bytes holding no memory (a zero-byte read), then take them directly.
                try
                {
                    await ReadAsync(Memory<byte>.Empty, head: false).ConfigureAwait(false);
                }
                catch (Exception e) when (IsIo(e))
                {
                    return BodyReadFailure(e);
                }
            }

            if (lend && HasData())
            {
                var lent = direct!.DirectMemory(DirectReadMinimum);
                if (lent.Length >= DirectReadMinimum && (length < 0 || remaining > lent.Length))
                {
                    var got = ReceiveNow(lent.Span);
                    if (got > 0)
                    {
                        if (!await CommitAsync(direct, got, clientToken).ConfigureAwait(false))
                        {
                            return ClientWriteFailure();
                        }

                        if (length >= 0)
                        {
                            remaining -= got;
                        }

                        continue;
                    }
                }
            }

            int n;
            try
            {
                n = await ReadAsync(buffer, head: false).ConfigureAwait(false);
            }
            catch (Exception e) when (IsIo(e))
            {
                return BodyReadFailure(e);
            }

            if (n == 0)
            {
                if (length < 0)
                {
                    // The body ends with the connection.
                    return Done(discarded: false, reusable: false);
                }

                return BodyReadFailure(null);
            }

            var take = length < 0 ? n : (int)Math.Min(n, remaining);
            if (take < n)
            {
                extra = true;
            }

            if (!await DeliverAsync(sink, buffer.AsMemory(0, take), clientToken).ConfigureAwait(false))
            {
                return ClientWriteFailure();
            }

            if (length >= 0)
            {
                remaining -= take;
            }
        }

        if (extra)
        {
            _request.Context.LogError(LogLevel.Warn, "upstream sent more data than specified in \"Content-Length\" header while reading upstream");
        }

        return Done(discarded: false, reusable: !extra && length >= 0);
    }

    /// <summary>A chunked body, decoded in place; the trailers go to the proxy at the end.</summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private async ValueTask<Http1Result> ChunkedBodyAsync(Stream sink, int start, int filled, CancellationToken clientToken)
    {
        GrowInput(ref start, ref filled);
        var buffer = _in;
        var decoder = _chunked;
        decoder.Reset();
        while (true)
        {
            var step = decoder.Next(buffer.AsSpan(start, filled - start), out var consumed, out var offset, out var length);
            if (step == ChunkStep.Data)
            {
                var data = buffer.AsMemory(start + offset, length);
                start += consumed;
                if (!await DeliverAsync(sink, data, clientToken).ConfigureAwait(false))
                {
                    return ClientWriteFailure();
                }

                continue;
            }

            if (step == ChunkStep.Invalid)
            {
                return Fail(UpstreamFailure.Error, "upstream sent invalid chunked response", "reading upstream", true);
            }

            start += consumed;
            if (step == ChunkStep.Trailers)
            {
                return await TrailersAsync(start, filled).ConfigureAwait(false);
            }

            Compact(buffer, ref start, ref filled);

            int n;
            try
            {
                n = await ReadAsync(buffer.AsMemory(filled), head: false).ConfigureAwait(false);
            }
            catch (Exception e) when (IsIo(e))
            {
                return BodyReadFailure(e);
            }

            if (n == 0)
            {
                return BodyReadFailure(null);
            }

            filled += n;
        }
    }

    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private async ValueTask<Http1Result> TrailersAsync(int start, int filled)
    {
        var buffer = _in;
        var parser = _trailerParser ??= new Http1HeadParser(trailers: true);
        parser.Reset();
        var max = _pool.MaxHeaderBytes;
        while (true)
        {
            var step = filled > start ? parser.Parse(buffer.AsSpan(start, filled - start)) : HeadParse.Incomplete;
            if (step == HeadParse.Invalid)
            {
                return Fail(UpstreamFailure.Error, parser.Error!, "reading upstream", true);
            }

            if (step == HeadParse.Complete)
            {
                if (parser.Length > max)
                {
                    return Fail(UpstreamFailure.Error, "upstream sent too big trailers", "reading upstream", true);
                }

                parser.Finish(buffer.AsSpan(start, parser.Length));
                _request.Handler.OnTrailers(parser.Headers);
                var extra = start + parser.Length < filled;
                if (extra)
                {
                    _request.Context.LogError(LogLevel.Warn, "upstream sent data after final chunk while reading upstream");
                }

                return Done(discarded: false, reusable: !extra);
            }

            if (filled - start >= max)
            {
                return Fail(UpstreamFailure.Error, "upstream sent too big trailers", "reading upstream", true);
            }

            Compact(buffer, ref start, ref filled);

            int n;
            try
            {
                n = await ReadAsync(buffer.AsMemory(filled), head: false).ConfigureAwait(false);
            }
            catch (Exception e) when (IsIo(e))
            {
                return BodyReadFailure(e);
            }

            if (n == 0)
            {
                return BodyReadFailure(null);
            }

            filled += n;
        }
    }

    /// <summary>Writes a piece of the response to the client's side (direct or the response buffer); false when the client failed.</summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private async ValueTask<bool> DeliverAsync(Stream sink, ReadOnlyMemory<byte> data, CancellationToken clientToken)
    {
        _bodyBytesReceived += data.Length;
        try
        {
            await sink.WriteAsync(data, clientToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (IsClientWriteError(e))
        {
            _clientError = e;
            return false;
        }
    }

    private Exception? _clientError;

    /// <summary>How a write to the client's side fails when the client went away or its response is over.</summary>
    private static bool IsClientWriteError(Exception e) =>
        e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException;

    /// <summary>The origin has bytes waiting on the (plain) connection.</summary>
    private bool HasData()
    {
        try
        {
            return _socket.Available > 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Receives bytes already waiting on the socket into memory lent by the client's connection, without ever
    /// waiting (0: nothing taken; the normal read then reports any error or the end). A read must never wait in
    /// lent memory: if the client aborted meanwhile, Kestrel would give the block back to its pool, and the
    /// origin's bytes would land in another connection's buffer.
    /// </summary>
    private int ReceiveNow(Span<byte> lent)
    {
        try
        {
            // Only called when Available > 0, so this receive returns at once (never blocks the I/O thread).
            var n = _socket.Receive(lent, SocketFlags.None, out var error);
            if (error != SocketError.Success || n <= 0)
            {
                return 0;
            }

            _bytesReceived += n;
            return n;
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }
    }

    /// <summary>The smallest lent client memory worth a read of its own (smaller: read into our buffer and copy).</summary>
    private const int DirectReadMinimum = 16 * 1024;

    /// <summary>Sends bytes read into the sink's lent memory; false when the client failed.</summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private async ValueTask<bool> CommitAsync(IDirectBodySink sink, int count, CancellationToken clientToken)
    {
        _bodyBytesReceived += count;
        try
        {
            await sink.CommitDirectAsync(count, clientToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (IsClientWriteError(e))
        {
            _clientError = e;
            return false;
        }
    }

    /// <summary>
    /// 101 Switching Protocols: the client's connection is upgraded and bytes flow both ways until the origin
    /// closes; proxy_read_timeout is the idle time of the pair (any traffic re-arms it).
    /// </summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private async ValueTask<Http1Result> UpgradeAsync(ReadOnlyMemory<byte> early, CancellationToken clientToken)
    {
        // The client-to-origin direction reads into the write buffer (early data lives in the read buffer).
        GrowOutput();
        var http = _request.Context.Http;
        var feature = http.Features.Get<IHttpUpgradeFeature>();
        if (feature is not { IsUpgradableRequest: true })
        {
            return Fail(UpstreamFailure.InvalidHeader, "upstream sent invalid header", "reading response header from upstream", true);
        }

        Stream client;
        try
        {
            client = await feature.UpgradeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
        {
            return new Http1Result(new UpstreamOutcome { Client = ClientFailure.Closed, HeadReceived = true, RequestSent = true }, false, false);
        }

        var idle = _readTimeout;
        Arm(_readCts, idle);
        var token = _readCts.Token;
        Task<bool>? upstream = null;
        try
        {
            if (!early.IsEmpty)
            {
                await client.WriteAsync(early, token).ConfigureAwait(false);
            }

            upstream = ClientToOriginAsync(client, idle);
            var buffer = _in;
            while (true)
            {
                int n;
                try
                {
                    n = await _stream.ReadAsync(buffer, token).ConfigureAwait(false);
                }
                catch (Exception e) when (IsIo(e) && !_readCts.IsCancellationRequested)
                {
                    // The origin broke its side: the upgraded connection ends, as when it closes.
                    break;
                }

                if (n == 0)
                {
                    break;
                }

                _bytesReceived += n;
                Arm(_readCts, idle);
                await client.WriteAsync(buffer.AsMemory(0, n), token).ConfigureAwait(false);
            }

            return Done(discarded: false, reusable: false);
        }
        catch (Exception e) when (IsIo(e))
        {
            if (_readCts.IsCancellationRequested && !_clientAborted && !_stopResponse)
            {
                return new Http1Result(new UpstreamOutcome
                {
                    Failure = UpstreamFailure.Timeout, Error = "upstream timed out (110: Connection timed out)", Action = "proxying upgraded connection",
                    Level = LogLevel.Error, HeadReceived = true, RequestSent = true,
                }, false, false);
            }

            return new Http1Result(new UpstreamOutcome { Client = ClientFailure.Closed, HeadReceived = true, RequestSent = true }, false, false);
        }
        finally
        {
            _stopResponse = true;
            CancelQuietly(_readCts);
            if (upstream is not null)
            {
                await upstream.ConfigureAwait(false);
            }
        }
    }

    /// <summary>Client to origin on an upgraded connection; the client's end of stream half-closes the origin side.</summary>
    private async Task<bool> ClientToOriginAsync(Stream client, TimeSpan idle)
    {
        var buffer = _out;
        var token = _readCts.Token;
        try
        {
            while (true)
            {
                var n = await client.ReadAsync(buffer, token).ConfigureAwait(false);
                if (n == 0)
                {
                    if (_stream is SslStream ssl)
                    {
                        await ssl.ShutdownAsync().ConfigureAwait(false);
                    }

                    _socket.Shutdown(SocketShutdown.Send);
                    return true;
                }

                Arm(_readCts, idle);
                await _stream.WriteAsync(buffer.AsMemory(0, n), token).ConfigureAwait(false);
                Interlocked.Add(ref _bodyBytesSent, n);
            }
        }
        catch (Exception e) when (IsIo(e))
        {
            if (!_readCts.IsCancellationRequested)
            {
                // The client went away: stop the other direction too.
                _clientAborted = true;
                CancelQuietly(_readCts);
            }

            return false;
        }
    }

    /// <summary>
    /// Sends the request body (the client's stream, the buffered body or its temporary file) while the
    /// response is read: with its length as is, without one re-chunked. Each write that waits is bounded by
    /// proxy_send_timeout. A failure stops the reader unless the response head already arrived.
    /// </summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder))]
    private async ValueTask SendBodyAsync()
    {
        var request = _request;
        var body = request.Context.Http.Request.Body;
        if (body is ClientBody.CopySlice slice && request.BodyLength is { } whole && slice.Length == whole
            && slice.TryLease(out var rest))
        {
            // A buffered body still in memory goes out from there, not through the write buffer.
            try
            {
                _bodyTouched = true;
                _bodyLastWrite = true;
                await WriteAsync(rest).ConfigureAwait(false);
                Interlocked.Add(ref _bodyBytesSent, rest.Length);
                _bodyComplete = true;
            }
            catch (Exception e)
            {
                BodyFailed(e);
            }
            finally
            {
                slice.EndLease();
                BodyDone();
            }

            return;
        }

        GrowOutput();
        var buffer = _out;
        var token = _writeCts.Token;
        try
        {
            if (request.BodyLength is { } length)
            {
                var remaining = length;
                while (remaining > 0)
                {
                    _bodyTouched = true;
                    var n = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, remaining)), token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new ClientBodyException(400, "client prematurely closed connection", LogLevel.Info);
                    }

                    if (n == remaining)
                    {
                        _bodyLastWrite = true;
                    }

                    await WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                    Interlocked.Add(ref _bodyBytesSent, n);
                    remaining -= n;
                }
            }
            else
            {
                while (true)
                {
                    _bodyTouched = true;
                    var n = await body.ReadAsync(buffer.AsMemory(ChunkPrefix, buffer.Length - ChunkPrefix - 2), token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        "0\r\n\r\n"u8.CopyTo(buffer);
                        _bodyLastWrite = true;
                        await WriteAsync(buffer.AsMemory(0, 5)).ConfigureAwait(false);
                        Interlocked.Add(ref _bodyBytesSent, 5);
                        break;
                    }

                    var prefix = ChunkSizeLine(buffer, n);
                    buffer[ChunkPrefix + n] = (byte)'\r';
                    buffer[ChunkPrefix + n + 1] = (byte)'\n';
                    var total = prefix + n + 2;
                    await WriteAsync(buffer.AsMemory(ChunkPrefix - prefix, total)).ConfigureAwait(false);
                    Interlocked.Add(ref _bodyBytesSent, total);
                }
            }

            _bodyComplete = true;
        }
        catch (Exception e)
        {
            BodyFailed(e);
        }
        finally
        {
            BodyDone();
        }
    }

    private void BodyFailed(Exception e)
    {
        _bodyError = e;
        if (!_stopBody && (e is ClientBodyException || _clientAborted || (!_headReceived && (_sendTimedOut || !IsIo(e)))))
        {
            // Nothing good can come from the origin any more: wake the reader.
            _stopResponse = true;
            CancelQuietly(_readCts);
        }
    }

    private void BodyDone()
    {
        lock (_timerGate)
        {
            _bodyFinished = true;
            if (_headPending)
            {
                Arm(_readCts, _readTimeout);
            }
        }
    }

    /// <summary>Writes "{size:x}\r\n" right before the data at <see cref="ChunkPrefix"/>; returns its length.</summary>
    private static int ChunkSizeLine(byte[] buffer, int size)
    {
        Span<byte> hex = stackalloc byte[16];
        Utf8Formatter.TryFormat(size, hex, out var digits, new StandardFormat('x'));
        var length = digits + 2;
        var at = ChunkPrefix - length;
        hex[..digits].CopyTo(buffer.AsSpan(at));
        buffer[ChunkPrefix - 2] = (byte)'\r';
        buffer[ChunkPrefix - 1] = (byte)'\n';
        return length;
    }

    /// <summary>A write to the origin; proxy_send_timeout when it has to wait.</summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder))]
    private async ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        var write = _stream.WriteAsync(data, _writeCts.Token);
        if (write.IsCompletedSuccessfully)
        {
            return;
        }

        Arm(_writeCts, _sendTimeout);
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_clientAborted && !_stopBody)
        {
            _sendTimedOut = true;
            throw;
        }
        finally
        {
            Disarm(_writeCts);
        }
    }

    /// <summary>A read from the origin; proxy_read_timeout when it has to wait (for the head only once the request is sent).</summary>
    [AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private async ValueTask<int> ReadAsync(Memory<byte> buffer, bool head)
    {
        var read = _stream.ReadAsync(buffer, _readCts.Token);
        int n;
        if (read.IsCompletedSuccessfully)
        {
            n = read.Result;
        }
        else
        {
            if (head)
            {
                lock (_timerGate)
                {
                    _headPending = true;
                    if (_bodyFinished)
                    {
                        Arm(_readCts, _readTimeout);
                    }
                }
            }
            else
            {
                Arm(_readCts, _readTimeout);
            }

            try
            {
                n = await read.ConfigureAwait(false);
            }
            finally
            {
                if (head)
                {
                    lock (_timerGate)
                    {
                        _headPending = false;
                        Disarm(_readCts);
                    }
                }
                else
                {
                    Disarm(_readCts);
                }
            }
        }

        _bytesReceived += n;
        return n;
    }

    private static void Arm(CancellationTokenSource cts, TimeSpan timeout)
    {
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            try
            {
                cts.CancelAfter(timeout);
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    private static void Disarm(CancellationTokenSource cts)
    {
        try
        {
            if (!cts.IsCancellationRequested)
            {
                cts.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static bool IsIo(Exception e) =>
        e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException;

    // ----- the request head -----

    /// <summary>
    /// Writes the request line, the headers the proxy built (Content-Length and Transfer-Encoding replaced by
    /// the framing of the body actually sent) and, for a small body already in memory, the body itself, into
    /// the write buffer. Returns the bytes to send.
    /// </summary>
    private int WriteHead(UpstreamRequest request, out bool bodyInHead)
    {
        var headers = request.Headers;
        var size = request.Method.Length + Http1Strings.ByteCount(request.Target) + 13 + 2;
        for (var i = 0; i < headers.Count; i++)
        {
            var (name, value) = headers[i];
            if (IsFraming(name))
            {
                continue;
            }

            if (!Http1Strings.IsSafe(name) || !Http1Strings.IsSafe(value))
            {
                throw new InvalidDataException($"invalid header \"{name}\" in the request to upstream");
            }

            size += Http1Strings.ByteCount(name) + Http1Strings.ByteCount(value) + 4;
        }

        if (!Http1Strings.IsSafe(request.Target) || !Http1Strings.IsSafe(request.Method))
        {
            throw new InvalidDataException("invalid request line to upstream");
        }

        size += 40;
        var body = request.HasBody ? request.Context.Http.Request.Body : null;
        long inMemory = body is not null && request.BodyLength is { } bl and > 0 and <= CoalesceLimit && (body.GetType() == typeof(MemoryStream) || body is ClientBody.CopySlice) ? bl : 0;
        if (_out.Length < size + inMemory)
        {
            BufferPool.Return(_out);
            _out = BufferPool.Rent((int)Math.Max(size + inMemory, WriteBufferSize));
        }

        var span = _out.AsSpan();
        var at = Http1Strings.Write(request.Method, span);
        span[at++] = (byte)' ';
        at += Http1Strings.Write(request.Target, span[at..]);
        (request.Version == UpstreamHttpVersion.Http10 ? " HTTP/1.0\r\n"u8 : " HTTP/1.1\r\n"u8).CopyTo(span[at..]);
        at += 11;
        var framed = false;
        for (var i = 0; i < headers.Count; i++)
        {
            var (name, value) = headers[i];
            if (IsFraming(name))
            {
                if (!framed)
                {
                    at += WriteFraming(request, span[at..]);
                    framed = true;
                }

                continue;
            }

            if (name.Length == 10 && name.Equals("Connection", StringComparison.OrdinalIgnoreCase)
                && value.Contains("close", StringComparison.OrdinalIgnoreCase))
            {
                _sentClose = true;
            }

            at += Http1Strings.Write(name, span[at..]);
            span[at++] = (byte)':';
            span[at++] = (byte)' ';
            at += Http1Strings.Write(value, span[at..]);
            span[at++] = (byte)'\r';
            span[at++] = (byte)'\n';
        }

        if (!framed)
        {
            at += WriteFraming(request, span[at..]);
        }

        span[at++] = (byte)'\r';
        span[at++] = (byte)'\n';
        bodyInHead = false;
        if (inMemory > 0)
        {
            var target = span.Slice(at, (int)inMemory);
            var copied = 0;
            while (copied < target.Length)
            {
                var n = body!.Read(target[copied..]);
                if (n == 0)
                {
                    break;
                }

                copied += n;
            }

            if (copied == target.Length)
            {
                at += copied;
                bodyInHead = true;
                _bodyBytesSent = copied;
            }
            else
            {
                throw new InvalidDataException("the request body is shorter than its length");
            }
        }

        return at;
    }

    private static bool IsFraming(string name) =>
        (name.Length == 14 && name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
        || (name.Length == 17 && name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase));

    private static int WriteFraming(UpstreamRequest request, Span<byte> span)
    {
        if (!request.HasBody)
        {
            return 0;
        }

        if (request.BodyLength is { } length)
        {
            "Content-Length: "u8.CopyTo(span);
            Utf8Formatter.TryFormat(length, span[16..], out var digits);
            span[16 + digits] = (byte)'\r';
            span[17 + digits] = (byte)'\n';
            return 18 + digits;
        }

        "Transfer-Encoding: chunked\r\n"u8.CopyTo(span);
        return 28;
    }

    // ----- outcomes -----

    private Http1Result Done(bool discarded, bool reusable)
    {
        // A body not completely sent by then (the origin answered early) makes the connection unusable: checked
        // once the body loop has ended.
        var keep = reusable && !_stopResponse && !_sentClose && !_parser.ConnectionClose && !_clientAborted;
        return new Http1Result(UpstreamOutcome.Success(discarded), keep, false);
    }

    private Http1Result Fail(UpstreamFailure failure, string error, string action, bool headReceived) =>
        new(new UpstreamOutcome
        {
            Failure = failure, Error = error, Action = action, Level = LogLevel.Error, RequestSent = _requestSent, HeadReceived = headReceived,
        }, false, false);

    private Http1Result Fail(UpstreamOutcome outcome, bool headReceived) => new(outcome with { HeadReceived = headReceived }, false, false);

    private Http1Result TooBig() => Fail(UpstreamFailure.InvalidHeader, "upstream sent too big header", "reading response header from upstream", false);

    private Http1Result ClientClosed() =>
        new(new UpstreamOutcome { Client = ClientFailure.Closed, RequestSent = _requestSent, HeadReceived = _headReceived }, false, false);

    /// <summary>The response head did not arrive: why, in the order YarpTransport asks.</summary>
    private Http1Result HeadReadFailure(Exception? e, bool reused)
    {
        if (_bodyError is ClientBodyException body)
        {
            return new Http1Result(new UpstreamOutcome
            {
                ClientBodyStatus = body.Status, Error = body.Message, Level = body.Level, Action = ClientBodyException.Action,
            }, false, false);
        }

        if (_clientAborted)
        {
            return ClientClosed();
        }

        if (_sendTimedOut)
        {
            return Fail(UpstreamFailure.Timeout, "upstream timed out (110: Connection timed out)", "sending request to upstream", false);
        }

        if (e is OperationCanceledException && _readCts.IsCancellationRequested && !_stopResponse)
        {
            return Fail(UpstreamFailure.Timeout, "upstream timed out (110: Connection timed out)", "reading response header from upstream", false);
        }

        if (reused && _bytesReceived == 0 && e is not OperationCanceledException && CanRetry())
        {
            return new Http1Result(default, false, Retry: true);
        }

        // The body could not be sent: that failure is the one to report.
        if (!_bodyComplete && _bodyError is { } sendError && IsIo(sendError))
        {
            return Fail(SendFailure(sendError), false);
        }

        var action = _bodyComplete ? "reading response header from upstream" : "sending request to upstream";
        if (FindSocketError(e) is { } se)
        {
            var op = _bodyComplete ? "recv()" : "send()";
            return Fail(UpstreamFailure.Error, $"{op} failed ({UpstreamConnector.Errno(se)})", action, false);
        }

        return Fail(UpstreamFailure.Error, "upstream prematurely closed connection", action, false);
    }

    private UpstreamOutcome SendFailure(Exception e)
    {
        if (_sendTimedOut)
        {
            return new UpstreamOutcome
            {
                Failure = UpstreamFailure.Timeout, Error = "upstream timed out (110: Connection timed out)", Action = "sending request to upstream",
                Level = LogLevel.Error, RequestSent = true,
            };
        }

        var error = FindSocketError(e) is { } se ? $"send() failed ({UpstreamConnector.Errno(se)})" : "upstream prematurely closed connection";
        return new UpstreamOutcome { Failure = UpstreamFailure.Error, Error = error, Action = "sending request to upstream", Level = LogLevel.Error, RequestSent = true };
    }

    /// <summary>The body failed after the head went to the client.</summary>
    private Http1Result BodyReadFailure(Exception? e)
    {
        if (_bodyError is ClientBodyException body)
        {
            return new Http1Result(new UpstreamOutcome
            {
                ClientBodyStatus = body.Status, Error = body.Message, Level = body.Level, Action = ClientBodyException.Action, HeadReceived = true, RequestSent = true,
            }, false, false);
        }

        if (_clientAborted)
        {
            return ClientClosed();
        }

        if (e is OperationCanceledException && _readCts.IsCancellationRequested && !_stopResponse)
        {
            return Fail(UpstreamFailure.Timeout, "upstream timed out (110: Connection timed out)", "reading upstream", true);
        }

        var error = FindSocketError(e) is { } se ? $"recv() failed ({UpstreamConnector.Errno(se)})" : "upstream prematurely closed connection";
        return Fail(UpstreamFailure.Error, error, "reading upstream", true);
    }

    private Http1Result ClientWriteFailure()
    {
        var client = FindInChain<ClientSendTimeoutException>(_clientError) is not null ? ClientFailure.TimedOut : ClientFailure.Closed;
        return new Http1Result(new UpstreamOutcome { Client = client, HeadReceived = true, RequestSent = true }, false, false);
    }

    private static SocketException? FindSocketError(Exception? e) => FindInChain<SocketException>(e);

    private static T? FindInChain<T>(Exception? e) where T : Exception
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is T t)
            {
                return t;
            }
        }

        return null;
    }
}
