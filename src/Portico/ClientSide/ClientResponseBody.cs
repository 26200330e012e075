using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;
using Portico.Config.Syntax;
using Portico.Pipeline;

namespace Portico.ClientSide;

/// <summary>A write to the client did not progress within send_timeout; the connection was closed.</summary>
public sealed class ClientSendTimeoutException : IOException
{
    public ClientSendTimeoutException() : base("client timed out (110: Connection timed out)") { }

    public ClientSendTimeoutException(string message) : base(message) { }

    public ClientSendTimeoutException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// send_timeout for every response: a write that does not complete within the timeout (the client stopped
/// reading) closes the connection, as nginx does. Writes that complete at once cost nothing extra.
/// Installed once per request over Kestrel's response body feature.
/// </summary>
public sealed class TimedResponseBodyFeature : IHttpResponseBodyFeature, IReusableState
{
    private static readonly Pipeline.RequestKey Key = new();
    private readonly TimedClientStream _stream;
    private IHttpResponseBodyFeature _inner;
    private RequestContext _r;
    private TimedPipeWriter? _writer;

    private TimedResponseBodyFeature(IHttpResponseBodyFeature inner, RequestContext r, TimeSpan timeout)
    {
        _inner = inner;
        _r = r;
        Timeout = timeout;
        _stream = new TimedClientStream(this, inner.Stream);
    }

    /// <summary>Makes the feature of an ended request serve another, as a new one would.</summary>
    private TimedResponseBodyFeature Reset(IHttpResponseBodyFeature inner, RequestContext r, TimeSpan timeout)
    {
        _inner = inner;
        _r = r;
        Timeout = timeout;
        TimedOut = false;
        _writer = null;
        _stream.Inner = inner.Stream;
        return this;
    }

    public TimeSpan Timeout { get; set; }

    /// <summary>A write timed out and the connection was closed.</summary>
    public bool TimedOut { get; private set; }

    /// <summary>The stream straight to Kestrel, without the timeout (for writers that time themselves).</summary>
    public Stream InnerStream => _inner.Stream;

    public Stream Stream => _stream;

    public PipeWriter Writer => _writer ??= new TimedPipeWriter(this, _inner.Writer);

    public static TimedResponseBodyFeature? Of(RequestContext r) => r.GetItem<TimedResponseBodyFeature>(Key);

    /// <summary>Wraps the response body of a request once; later calls update the timeout (location changes).</summary>
    public static TimedResponseBodyFeature Install(RequestContext r, TimeSpan timeout)
    {
        if (Of(r) is { } existing)
        {
            existing.Timeout = timeout;
            return existing;
        }

        var inner = r.Http.Features.GetRequiredFeature<IHttpResponseBodyFeature>();
        var feature = r.TakeReusable<TimedResponseBodyFeature>(Key)?.Reset(inner, r, timeout) ?? new TimedResponseBodyFeature(inner, r, timeout);
        r.Http.Features.Set<IHttpResponseBodyFeature>(feature);
        r.SetItem(Key, feature);
        return feature;
    }

    public void DisableBuffering() => _inner.DisableBuffering();

    public Task StartAsync(CancellationToken cancellationToken = default) => _inner.StartAsync(cancellationToken);

    public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        await using var file = new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.ReadWrite, Options = FileOptions.Asynchronous, BufferSize = 0 });
        var left = count ?? file.Length - offset;
        var buffer = new byte[(int)Math.Min(64 * 1024, Math.Max(1, left))];
        var position = offset;
        while (left > 0)
        {
            var n = await RandomAccess.ReadAsync(file.SafeFileHandle, buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), position, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            await _stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            position += n;
            left -= n;
        }
    }

    public Task CompleteAsync() => _inner.CompleteAsync();

    /// <summary>Waits for a pending write with the send timeout; on expiry closes the connection.</summary>
    internal async ValueTask<T> Guard<T>(ValueTask<T> pending)
    {
        var task = pending.AsTask();
        var timeout = Timeout;
        if (timeout <= TimeSpan.Zero || timeout >= TimeSpan.FromDays(24))
        {
            return await task.ConfigureAwait(false);
        }

        try
        {
            return await task.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Expire();
            throw new ClientSendTimeoutException();
        }
    }

    internal async ValueTask Guard(ValueTask pending)
    {
        var task = pending.AsTask();
        var timeout = Timeout;
        if (timeout <= TimeSpan.Zero || timeout >= TimeSpan.FromDays(24))
        {
            await task.ConfigureAwait(false);
            return;
        }

        try
        {
            await task.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Expire();
            throw new ClientSendTimeoutException();
        }
    }

    private void Expire()
    {
        _r.LogError(LogLevel.Info, "client timed out (110: Connection timed out) while sending to client");
        TimedOut = true;
        _r.Http.Abort();
    }

    private sealed class TimedClientStream(TimedResponseBodyFeature owner, Stream inner) : Stream
    {
        public Stream Inner
        {
            get => inner;
            set => inner = value;
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var t = inner.WriteAsync(buffer, cancellationToken);
            return t.IsCompletedSuccessfully ? t : owner.Guard(t);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            var t = new ValueTask(inner.FlushAsync(cancellationToken));
            return t.IsCompletedSuccessfully ? Task.CompletedTask : owner.Guard(t).AsTask();
        }

        public override void Flush() => inner.Flush();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private sealed class TimedPipeWriter(TimedResponseBodyFeature owner, PipeWriter inner) : PipeWriter
    {
        public override void Advance(int bytes) => inner.Advance(bytes);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            var t = inner.FlushAsync(cancellationToken);
            return t.IsCompletedSuccessfully ? t : owner.Guard(t);
        }

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            var t = inner.WriteAsync(source, cancellationToken);
            return t.IsCompletedSuccessfully ? t : owner.Guard(t);
        }

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;
    }
}
