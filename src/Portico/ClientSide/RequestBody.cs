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
    private FileStream? _file;
    private bool _keepFile;

    public long Length { get; private set; }

    /// <summary>The temporary file holding the body, if it spilled to disk ($request_body_file).</summary>
    public string? FileName { get; private set; }

    public bool InMemory => FileName is null;

    /// <summary>The body read earlier for this request, if any.</summary>
    public static ClientBody? Of(RequestContext r) => r.GetItem<ClientBody>(Key);

    /// <summary>$request_body: the body when it was read into memory.</summary>
    public string? Text => !InMemory ? null : _memory is null ? string.Empty : Encoding.UTF8.GetString(_memory, 0, (int)Length);

    /// <summary>A fresh stream over the whole body.</summary>
    public Stream OpenRead()
    {
        if (_file is not null)
        {
            return new FileSlice(_file, Length);
        }

        return new MemoryStream(_memory ?? [], 0, (int)Length, writable: false);
    }

    /// <summary>
    /// Reads the client body into memory or a temporary file, enforcing client_max_body_size for bodies
    /// without Content-Length and client_body_timeout between reads. Throws <see cref="ClientBodyException"/>.
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
        var chunk = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            if (!inFileOnly && declared is { } cl && cl <= bufferSize)
            {
                body._memory = new byte[cl];
            }

            while (true)
            {
                var n = await source.ReadAsync(chunk).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                if (body._file is null && !inFileOnly && body.Length + n <= bufferSize)
                {
                    body.AppendMemory(chunk.AsSpan(0, n));
                    continue;
                }

                if (body._file is null)
                {
                    await body.SpillAsync(r, settings, inFileOnly).ConfigureAwait(false);
                }

                await body._file!.WriteAsync(chunk.AsMemory(0, n)).ConfigureAwait(false);
                body.Length += n;
            }

            if (inFileOnly && body._file is null)
            {
                // An empty body still gets its (empty) file, as nginx does.
                await body.SpillAsync(r, settings, inFileOnly).ConfigureAwait(false);
            }

            if (body._file is not null)
            {
                await body._file.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        return body;
    }

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

    private async ValueTask SpillAsync(RequestContext r, ClientSettings settings, bool inFileOnly)
    {
        var path = settings.BodyTempPath ?? ClientModule.DefaultTempPath(r.Snapshot);
        _file = TempFiles.Create(path, out var name);
        FileName = name;
        _keepFile = settings.InFileOnly == BodyInFileOnly.On;
        TempFiles.Warn(r, "a client request body is buffered to a temporary file", name, inFileOnly ? LogLevel.Notice : LogLevel.Warn);
        if (_memory is not null && Length > 0)
        {
            await _file.WriteAsync(_memory.AsMemory(0, (int)Length)).ConfigureAwait(false);
        }

        _memory = null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_file is not null)
        {
            await _file.DisposeAsync().ConfigureAwait(false);
            _file = null;
            if (!_keepFile && FileName is not null)
            {
                TempFiles.Delete(FileName);
            }
        }
    }

    /// <summary>Reads the first <c>length</c> bytes of the temp file with its own position.</summary>
    internal sealed class FileSlice(FileStream file, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var left = length - _position;
            if (left <= 0)
            {
                return 0;
            }

            if (buffer.Length > left)
            {
                buffer = buffer[..(int)left];
            }

            var n = await RandomAccess.ReadAsync(file.SafeFileHandle, buffer, _position, cancellationToken).ConfigureAwait(false);
            _position += n;
            return n;
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
