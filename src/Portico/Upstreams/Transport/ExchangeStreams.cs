using System.Diagnostics;
using System.Net;

namespace Portico.Upstreams.Transport;

/// <summary>The state of one attempt that travels with the HttpRequestMessage through the handler chain.</summary>
internal sealed class AttemptContext
{
    /// <summary>Send "Connection: close" so the connection is not returned to the idle cache (keepalive N).</summary>
    public bool CloseConnection { get; set; }

    public static readonly HttpRequestOptionsKey<AttemptContext> Key = new("portico.attempt");

    public AttemptContext(UpstreamRequest request)
    {
        Request = request;
        Started = Stopwatch.GetTimestamp();
    }

    public UpstreamRequest Request { get; }
    public long Started { get; }

    /// <summary>A connection was opened for this attempt (connect time recorded).</summary>
    public bool Connected { get; set; }

    /// <summary>The request was handed to a connection (its head is on the wire).</summary>
    public bool RequestSent { get; set; }

    /// <summary>The request body was sent completely.</summary>
    public bool BodySent { get; set; }

    public long BodyBytesSent;
    public long BodyBytesReceived;

    /// <summary>A timeout or failure our streams detected, in nginx's words (wins over the exception's text).</summary>
    public UpstreamTimeoutException? Timeout { get; set; }

    public static AttemptContext? Of(HttpRequestMessage? request) =>
        request is not null && request.Options.TryGetValue(Key, out var a) ? a : null;

    public long ElapsedMilliseconds => (long)Stopwatch.GetElapsedTime(Started).TotalMilliseconds;
}

/// <summary>An upstream timeout detected by Portico: nginx's "upstream timed out (110: Connection timed out)".</summary>
public sealed class UpstreamTimeoutException : Exception
{
    public UpstreamTimeoutException(string action) : base("upstream timed out (110: Connection timed out)")
    {
        Action = action;
    }

    public UpstreamTimeoutException() : this("reading upstream") { }

    public UpstreamTimeoutException(string message, Exception inner) : base(message, inner)
    {
        Action = "reading upstream";
    }

    /// <summary>"sending request to upstream", "reading response header from upstream", "reading upstream".</summary>
    public string Action { get; }
}

/// <summary>
/// Gives each read or write one timer: nginx's proxy_read_timeout and proxy_send_timeout are the time
/// between two successive operations, not a total. One CancellationTokenSource per stream, re-armed per call.
/// </summary>
internal sealed class IdleTimer : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly TimeSpan _timeout;
    private CancellationToken _linked;
    private CancellationTokenRegistration _registration;
    private bool _timedOut;

    public IdleTimer(TimeSpan timeout)
    {
        _timeout = timeout;
    }

    /// <summary>Arms the timer for one operation and returns the token to pass to it.</summary>
    public CancellationToken Start(CancellationToken caller)
    {
        if (caller != _linked && caller.CanBeCanceled)
        {
            _registration.Dispose();
            _registration = caller.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
            _linked = caller;
        }

        if (_timeout > TimeSpan.Zero && _timeout < TimeSpan.FromDays(24))
        {
            _cts.CancelAfter(_timeout);
        }

        return _cts.Token;
    }

    public void Stop()
    {
        if (!_cts.IsCancellationRequested)
        {
            _cts.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>True when the operation was cancelled by the timer rather than by the caller.</summary>
    public bool Expired(CancellationToken caller)
    {
        if (_cts.IsCancellationRequested && !caller.IsCancellationRequested)
        {
            _timedOut = true;
        }

        return _timedOut;
    }

    public void Dispose()
    {
        _registration.Dispose();
        _cts.Dispose();
    }
}

/// <summary>
/// Wraps the request content so each write to the origin is bounded by proxy_send_timeout, streamed bodies
/// are flushed as they arrive (full duplex with HTTP/2 origins), and the bytes sent are counted.
/// </summary>
internal sealed class TimedRequestContent : HttpContent
{
    private readonly HttpContent _inner;
    private readonly AttemptContext _attempt;
    private readonly bool _flushEachWrite;
    private readonly Action _completed;
    private readonly long? _length;

    public TimedRequestContent(HttpContent inner, AttemptContext attempt, bool flushEachWrite, Action completed)
    {
        _inner = inner;
        _length = inner.Headers.ContentLength;
        _attempt = attempt;
        _flushEachWrite = flushEachWrite;
        _completed = completed;
        foreach (var h in inner.Headers)
        {
            Headers.TryAddWithoutValidation(h.Key, h.Value);
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        using var timed = new TimedWriteStream(stream, _attempt, _flushEachWrite);
        await _inner.CopyToAsync(timed, context, cancellationToken).ConfigureAwait(false);
        await timed.FlushAsync(cancellationToken).ConfigureAwait(false);
        _attempt.BodySent = true;
        _completed();
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _length ?? 0;
        return _length is not null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// A write-only view of the connection: proxy_send_timeout per write, flushes, counts bytes. .NET's client
/// does not cancel a socket write that waits, so a write that takes too long is abandoned with a timeout
/// and the failed exchange closes the connection.
/// </summary>
internal sealed class TimedWriteStream : Stream
{
    private readonly Stream _inner;
    private readonly AttemptContext _attempt;
    private readonly bool _flushEachWrite;
    private readonly TimeSpan _timeout;

    public TimedWriteStream(Stream inner, AttemptContext attempt, bool flushEachWrite)
    {
        _inner = inner;
        _attempt = attempt;
        _flushEachWrite = flushEachWrite;
        _timeout = attempt.Request.Timeouts.Send;
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => Bounded(new ValueTask(_inner.FlushAsync(cancellationToken))).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Bounded(_inner.WriteAsync(buffer, cancellationToken)).ConfigureAwait(false);
        if (_flushEachWrite)
        {
            await Bounded(new ValueTask(_inner.FlushAsync(cancellationToken))).ConfigureAwait(false);
        }

        Interlocked.Add(ref _attempt.BodyBytesSent, buffer.Length);
    }

    private ValueTask Bounded(ValueTask operation)
    {
        if (operation.IsCompletedSuccessfully || _timeout <= TimeSpan.Zero || _timeout >= TimeSpan.FromDays(24))
        {
            return operation;
        }

        return Slow(operation.AsTask());
    }

    private async ValueTask Slow(Task operation)
    {
        try
        {
            await operation.WaitAsync(_timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _ = operation.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            var e = new UpstreamTimeoutException("sending request to upstream");
            _attempt.Timeout ??= e;
            throw e;
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

#pragma warning disable RS0030 // Stream's synchronous API: Kestrel and YARP never call it (AllowSynchronousIO is off)
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();
#pragma warning restore RS0030

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>The response body from the origin: proxy_read_timeout between two reads, counted.</summary>
internal sealed class TimedResponseContent : HttpContent
{
    private readonly HttpContent _inner;
    private readonly AttemptContext _attempt;

    public TimedResponseContent(HttpContent inner, AttemptContext attempt)
    {
        _inner = inner;
        _attempt = attempt;
        foreach (var h in inner.Headers)
        {
            Headers.TryAddWithoutValidation(h.Key, h.Value);
        }
    }

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
        new TimedReadStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), _attempt);

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        _inner.CopyToAsync(stream, context);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

internal sealed class TimedReadStream : Stream
{
    private readonly Stream _inner;
    private readonly AttemptContext _attempt;
    private readonly IdleTimer _timer;

    public TimedReadStream(Stream inner, AttemptContext attempt)
    {
        _inner = inner;
        _attempt = attempt;
        _timer = new IdleTimer(attempt.Request.Timeouts.Read);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var token = _timer.Start(cancellationToken);
        int n;
        try
        {
            n = await _inner.ReadAsync(buffer, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_timer.Expired(cancellationToken))
        {
            var e = new UpstreamTimeoutException("reading upstream");
            _attempt.Timeout ??= e;
            throw e;
        }
        finally
        {
            _timer.Stop();
        }

        Interlocked.Add(ref _attempt.BodyBytesReceived, n);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

#pragma warning disable RS0030 // Stream's synchronous API: Kestrel and YARP never call it (AllowSynchronousIO is off)
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();
#pragma warning restore RS0030

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _timer.Dispose();
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
