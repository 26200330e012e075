using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Http;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Upstreams.Transport;

namespace Portico.ClientSide;

/// <summary>The client's request body could not be read: the status nginx finishes with and its log line.</summary>
public sealed class ClientBodyException : IOException
{
    public ClientBodyException(int status, string message, LogLevel level) : base(message)
    {
        Status = status;
        Level = level;
    }

    public ClientBodyException() : this(400, "client sent invalid body", LogLevel.Info) { }

    public ClientBodyException(string message) : this(400, message, LogLevel.Info) { }

    public ClientBodyException(string message, Exception inner) : base(message, inner)
    {
        Status = 400;
        Level = LogLevel.Info;
    }

    /// <summary>400 (invalid or closed), 408 (client_body_timeout), 413 (client_max_body_size).</summary>
    public int Status { get; }

    public LogLevel Level { get; }

    /// <summary>"while reading client request body" is appended when logged.</summary>
    public const string Action = "reading client request body";
}

/// <summary>
/// A request body read completely (nginx's ngx_http_read_client_request_body with buffering): in memory
/// while it fits client_body_buffer_size, otherwise all of it in a temporary file. It can be read again
/// from the start for every upstream attempt.
/// </summary>
public sealed class ClientBody : IAsyncDisposable
{
    private static readonly Pipeline.RequestKey Key = new();
    private byte[]? _memory;
    private TempFile? _file;

    // The whole body, when it went to a file but fit in the staging buffer (pooled).
    private byte[]? _copy;

    // The staging buffer and the (reusable) file go back to their pools when the request ends, or after
    // the last read still going on then (a body send abandoned on another thread): a late read never sees
    // another request's bytes. Reads after the end fail.
    private int _readers;
    private bool _released;
    private readonly Lock _gate = new();

    // The file write of a body kept in memory, still going on, and where its failure is reported.
    private Task? _pendingWrite;
    private Logging.ErrorLog? _log;
    private bool _keepFile;

    public long Length { get; private set; }

    /// <summary>The temporary file holding the body, if it spilled to disk ($request_body_file). Unless
    /// client_body_in_file_only keeps it, the file was unlinked when made (as nginx does): only the name is left.</summary>
    public string? FileName { get; private set; }

    public bool InMemory => FileName is null;

    /// <summary>The body read earlier for this request, if any.</summary>
    public static ClientBody? Of(RequestContext r) => r.GetItem<ClientBody>(Key);

    /// <summary>$request_body: the body when it was read into memory.</summary>
    public string? Text => !InMemory ? null : _memory is null ? string.Empty : Encoding.UTF8.GetString(_memory, 0, (int)Length);

    /// <summary>A fresh stream over the whole body.</summary>
    public Stream OpenRead()
    {
        if (_copy is not null)
        {
            return new CopySlice(this, Length);
        }

        if (_file is not null)
        {
            return new FileSlice(this, Length);
        }

        return new MemoryStream(_memory ?? [], 0, (int)Length, writable: false);
    }

    /// <summary>
    /// Reads the client body into memory or a temporary file, enforcing client_max_body_size for bodies
    /// without Content-Length and client_body_timeout between reads. Throws <see cref="ClientBodyException"/>.
    /// A body that goes to a file is gathered in a 64 KiB buffer and written a full buffer at a time; when
    /// the whole body fit in that buffer, it is also kept there and every attempt reads it from memory (the
    /// file is written all the same, as nginx writes it).
    /// </summary>
    public static async ValueTask<ClientBody> ReadAsync(RequestContext r)
    {
        if (Of(r) is { } existing)
        {
            return existing;
        }

        var settings = r.Location.Get<ClientSettings>();
        var body = new ClientBody();
        r.SetItem(Key, body);
        r.Http.Response.RegisterForDisposeAsync(body);
        using var source = new ClientBodyStream(r, r.Http.Request.Body, settings);
        var bufferSize = settings.BodyBufferSize ?? ClientSettings.DefaultBodyBufferSize;
        var inFileOnly = settings.InFileOnly is BodyInFileOnly.On or BodyInFileOnly.Clean;
        var declared = r.Http.Request.ContentLength;
        byte[]? chunk = ArrayPool<byte>.Shared.Rent(StageSize);
        var staged = 0;        // bytes at the start of chunk that belong in the file and are not written yet
        var written = false;   // some of the body is in the file already
        try
        {
            if (!inFileOnly && declared is { } cl && cl <= bufferSize)
            {
                body._memory = new byte[cl];
            }
            else if (declared > bufferSize && !inFileOnly)
            {
                // Known not to fit: straight to the file's buffer, never through memory first.
                body.Spill(r, settings, inFileOnly);
            }

            while (true)
            {
                if (body._file is null)
                {
                    var n = await source.ReadAsync(chunk).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }

                    if (!inFileOnly && body.Length + n <= bufferSize)
                    {
                        body.AppendMemory(chunk.AsSpan(0, n));
                        continue;
                    }

                    body.Spill(r, settings, inFileOnly);
                    var held = (int)body.Length;
                    if (held + n <= chunk.Length)
                    {
                        // What was in memory goes before this read, all of it staged for one write.
                        chunk.AsSpan(0, n).CopyTo(chunk.AsSpan(held));
                        body._memory.AsSpan(0, held).CopyTo(chunk);
                        staged = held + n;
                    }
                    else
                    {
                        await body._file!.WriteAsync(body._memory.AsMemory(0, held)).ConfigureAwait(false);
                        written = true;
                        staged = n;
                    }

                    body._memory = null;
                    body.Length += n;
                    continue;
                }

                if (declared is { } total && body.Length >= total)
                {
                    // All the declared bytes are here (a read would only see the end): a full buffer stays whole.
                    break;
                }

                if (staged == chunk.Length)
                {
                    await body._file.WriteAsync(chunk.AsMemory(0, staged)).ConfigureAwait(false);
                    written = true;
                    staged = 0;
                }

                var m = await source.ReadAsync(chunk.AsMemory(staged)).ConfigureAwait(false);
                if (m == 0)
                {
                    break;
                }

                staged += m;
                body.Length += m;
            }

            if (inFileOnly && body._file is null)
            {
                // An empty body still gets its (empty) file, as nginx does.
                body.Spill(r, settings, inFileOnly);
            }

            if (body._file is not null)
            {
                if (staged > 0 && !written && !inFileOnly)
                {
                    // All of the body is in the buffer: attempts read it from there, and the (anonymous) file is
                    // written meanwhile on a pool thread: the request goes on without waiting for the disk.
                    body._copy = chunk;
                    chunk = null;
                    body._pendingWrite = body._file.WriteAsync(body._copy.AsMemory(0, staged)).AsTask();
                }
                else if (staged > 0)
                {
                    await body._file.WriteAsync(chunk.AsMemory(0, staged)).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            if (chunk is not null)
            {
                ArrayPool<byte>.Shared.Return(chunk);
            }
        }

        return body;
    }

    /// <summary>A body whose whole content is in a staging buffer rented from ArrayPool.Shared (tests).</summary>
    internal static ClientBody Staged(byte[] pooled, int length) => new() { _copy = pooled, Length = length };

    /// <summary>The buffer a body on its way to a file is gathered in.</summary>
    internal const int StageSize = 64 * 1024;

    private void AppendMemory(ReadOnlySpan<byte> data)
    {
        if (_memory is null || _memory.Length < Length + data.Length)
        {
            var grown = new byte[Math.Max(Length + data.Length, Math.Min(Math.Max(1024, (_memory?.Length ?? 0) * 2), int.MaxValue / 2))];
            if (_memory is not null)
            {
                Buffer.BlockCopy(_memory, 0, grown, 0, (int)Length);
            }

            _memory = grown;
        }

        data.CopyTo(_memory.AsSpan((int)Length));
        Length += data.Length;
    }

    /// <summary>Creates the temporary file (its contents are written by the caller) and logs nginx's warning.</summary>
    private void Spill(RequestContext r, ClientSettings settings, bool inFileOnly)
    {
        var path = settings.BodyTempPath ?? ClientModule.DefaultTempPath(r.Snapshot);
        string name;
        if (inFileOnly)
        {
            // The file is the point: named, as nginx names it, and kept (on) or removed at the end (clean).
            _file = new TempFile(TempFiles.Create(path, out name), idleKey: null);
        }
        else
        {
            _file = TempFiles.RentAnonymous(path, out name);
        }

        FileName = name;
        _keepFile = settings.InFileOnly == BodyInFileOnly.On;
        _log = r.ErrorLog;
        TempFiles.Warn(r, "a client request body is buffered to a temporary file", name, inFileOnly ? LogLevel.Notice : LogLevel.Warn);
    }

    /// <summary>
    /// At the end of the request: the file is closed and removed (kept with client_body_in_file_only on). A
    /// file write still going on finishes first, on its pool thread, without holding up the connection.
    /// </summary>
    public ValueTask DisposeAsync()
    {
        var pending = _pendingWrite;
        _pendingWrite = null;
        if (pending is { IsCompleted: false })
        {
            pending.ContinueWith(static (write, state) => ((ClientBody)state!).Finish(write), this,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return default;
        }

        Finish(pending);
        return default;
    }

    private void Finish(Task? write)
    {
        if (write is { IsFaulted: true } && write.Exception!.InnerException is { } e)
        {
            // The body went to the upstream from memory; only its copy on disk failed.
            _log?.Write(LogLevel.Crit, $"pwrite() \"{FileName}\" failed ({e.Message})");
        }

        bool free;
        lock (_gate)
        {
            free = !_released && _readers == 0;
            _released = true;
        }

        if (free)
        {
            Free();
        }
    }

    private void Free()
    {
        if (Interlocked.Exchange(ref _copy, null) is { } copy)
        {
            ArrayPool<byte>.Shared.Return(copy);
        }

        if (Interlocked.Exchange(ref _file, null) is { } file)
        {
            var named = file.IdleKey is null;
            TempFiles.Release(file);
            if (named && !_keepFile && FileName is not null)
            {
                TempFiles.Delete(FileName);
            }
        }
    }

    /// <summary>A read of the body's buffer or file starts; false once the request ended.</summary>
    private bool EnterRead()
    {
        lock (_gate)
        {
            if (_released)
            {
                return false;
            }

            _readers++;
            return true;
        }
    }

    private void ExitRead()
    {
        bool free;
        lock (_gate)
        {
            free = --_readers == 0 && _released;
        }

        if (free)
        {
            Free();
        }
    }

    /// <summary>Copies body bytes from the staging buffer, or returns -1 once the request ended.</summary>
    private int CopyFrom(long position, Span<byte> destination)
    {
        if (!TryLease(position, out var rest))
        {
            return -1;
        }

        try
        {
            var n = Math.Min(destination.Length, rest.Length);
            rest.Span[..n].CopyTo(destination);
            return n;
        }
        finally
        {
            ExitRead();
        }
    }

    /// <summary>
    /// The body bytes from <paramref name="position"/> on, to send without copying them; the buffer stays out
    /// of the pool until <see cref="ExitRead"/>. False once the request ended.
    /// </summary>
    private bool TryLease(long position, out ReadOnlyMemory<byte> rest)
    {
        if (!EnterRead())
        {
            rest = default;
            return false;
        }

        rest = _copy.AsMemory((int)position, (int)(Length - position));
        return true;
    }

    /// <summary>Reads the file at an offset while the request lasts (see <see cref="EnterRead"/>).</summary>
    private async ValueTask<int> ReadFileAsync(Memory<byte> buffer, long offset, CancellationToken cancellationToken)
    {
        if (!EnterRead())
        {
            throw new ObjectDisposedException(nameof(ClientBody), "the request ended");
        }

        try
        {
            return await RandomAccess.ReadAsync(_file!.Handle, buffer, offset, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ExitRead();
        }
    }

    /// <summary>A read-only stream over the whole body with its own position (one per attempt).</summary>
    internal abstract class Slice(long length) : Stream
    {
        protected long Consumed;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => Consumed; set => throw new NotSupportedException(); }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>The body in the staging buffer: read synchronously, or sent in place (<see cref="TryLease"/>).</summary>
    internal sealed class CopySlice(ClientBody body, long length) : Slice(length)
    {
        /// <summary>The rest of the body in place, until <see cref="EndLease"/>; the stream is then at its end.</summary>
        public bool TryLease(out ReadOnlyMemory<byte> rest)
        {
            if (!body.TryLease(Consumed, out rest))
            {
                return false;
            }

            Consumed = Length;
            return true;
        }

        /// <summary>The leased bytes are sent: the buffer may go back to the pool with the request.</summary>
        public void EndLease() => body.ExitRead();

        public override int Read(Span<byte> buffer)
        {
            if (Consumed >= Length || buffer.IsEmpty)
            {
                return 0;
            }

            var n = body.CopyFrom(Consumed, buffer);
            if (n < 0)
            {
                throw new ObjectDisposedException(nameof(ClientBody), "the request ended");
            }

            Consumed += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled<int>(cancellationToken) : new(Read(buffer.Span));
    }

    /// <summary>The first <c>length</c> bytes of the temp file.</summary>
    internal sealed class FileSlice(ClientBody body, long length) : Slice(length)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var left = Length - Consumed;
            if (left <= 0)
            {
                return 0;
            }

            if (buffer.Length > left)
            {
                buffer = buffer[..(int)left];
            }

            var n = await body.ReadFileAsync(buffer, Consumed, cancellationToken).ConfigureAwait(false);
            Consumed += n;
            return n;
        }

#pragma warning disable RS0030 // Stream's synchronous API: Kestrel and YARP never call it (AllowSynchronousIO is off)
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
#pragma warning restore RS0030
    }
}

/// <summary>
/// The client's body as it arrives (also used by proxy_request_buffering off): client_body_timeout between
/// two reads, client_max_body_size for bodies without Content-Length, and nginx's errors for broken bodies.
/// </summary>
public sealed class ClientBodyStream : Stream
{
    private readonly RequestContext _r;
    private readonly Stream _inner;
    private readonly long _limit;
    private readonly bool _chunked;
    private readonly IdleTimer _timer;
    private long _read;

    public ClientBodyStream(RequestContext r, Stream inner, ClientSettings settings)
    {
        _r = r;
        _inner = inner;
        _limit = settings.MaxBodySize ?? 0;
        _chunked = r.Http.Request.ContentLength is null;
        _timer = new IdleTimer(settings.BodyTimeout ?? TimeSpan.FromSeconds(60));
    }

    public long BytesRead => _read;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n;
        var token = _timer.Start(cancellationToken);
        try
        {
            n = await _inner.ReadAsync(buffer, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_timer.Expired(cancellationToken))
        {
            throw Fail(408, "client timed out (110: Connection timed out)", LogLevel.Info);
        }
        catch (BadHttpRequestException e)
        {
            if (_r.Http.RequestAborted.IsCancellationRequested || e.Message.Contains("Unexpected end", StringComparison.OrdinalIgnoreCase))
            {
                throw Fail(400, "client prematurely closed connection", LogLevel.Info);
            }

            throw Fail(400, "client sent invalid chunked body", LogLevel.Info);
        }
        catch (IOException e) when (e is not ClientBodyException)
        {
            throw Fail(400, "client prematurely closed connection", LogLevel.Info);
        }
        finally
        {
            _timer.Stop();
        }

        _read += n;
        if (_chunked && _limit > 0 && _read > _limit)
        {
            throw Fail(413, $"client intended to send too large chunked body: {_read - n}+{n} bytes", LogLevel.Error);
        }

        return n;
    }

    private ClientBodyException Fail(int status, string message, LogLevel level)
    {
        if (status == 413)
        {
            ClientModule.MarkBodyDiscarded(_r);
        }

        return new ClientBodyException(status, message, level);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

#pragma warning disable RS0030 // Stream's synchronous API: Kestrel and YARP never call it (AllowSynchronousIO is off)
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
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
        }

        base.Dispose(disposing);
    }
}
