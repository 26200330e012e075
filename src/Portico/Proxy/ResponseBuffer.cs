using System.Buffers;
using System.Threading.Channels;
using Portico.ClientSide;
using Portico.Config.Syntax;
using Portico.Pipeline;

namespace Portico.Proxy;

/// <summary>
/// proxy_buffering on: the upstream response is read at the origin's speed into memory (proxy_buffers) and,
/// past that, into a temporary file (up to proxy_max_temp_file_size, then the origin waits), while a pump
/// sends it to the client at the client's speed. The origin connection is released as soon as the origin
/// has sent everything, however slow the client. proxy_limit_rate paces reading from the origin;
/// X-Accel-Limit-Rate paces sending to the client.
/// </summary>
public sealed class ResponseBuffer : Stream
{
    private const int PieceSize = 64 * 1024;

    private readonly RequestContext _r;
    private readonly Stream _client;
    private readonly long _memoryLimit;
    private readonly long _maxTempFile;
    private readonly TempPath _tempPath;
    private readonly long _upstreamRate;
    private readonly long _clientRate;
    private readonly TimeProvider _time;
    private readonly bool _ignoreClientAbort;
    private readonly Channel<Chunk> _chunks = Channel.CreateUnbounded<Chunk>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly Task _pump;
    private readonly long _started;
    private long _memoryInUse;
    private long _fileWritten;
    private long _fileSent;
    private long _received;
    private long _sent;
    private FileStream? _file;
    private string? _fileName;
    private TaskCompletionSource? _space;
    private Exception? _pumpError;
    private int _completed;

    // The pump waits on a client write that did not complete at once: the client is slower than the
    // origin, so what does not fit in memory goes to the temporary file (nginx spills only then too).
    private volatile bool _clientBlocked;

    public ResponseBuffer(RequestContext r, Stream client, long memoryLimit, long maxTempFile, TempPath tempPath, long upstreamRate, long clientRate,
        bool ignoreClientAbort = false)
    {
        _ignoreClientAbort = ignoreClientAbort;
        _r = r;
        _client = client;
        _memoryLimit = Math.Max(1, memoryLimit);
        _maxTempFile = maxTempFile;
        _tempPath = tempPath;
        _upstreamRate = upstreamRate;
        _clientRate = clientRate;
        _time = r.Snapshot.Services.Time;
        _started = _time.GetTimestamp();
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>Bytes the origin sent so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>The temporary file used, if the response spilled to disk.</summary>
    public string? TempFileName => _fileName;

    /// <summary>Completes when everything buffered has been sent to the client (or sending failed).</summary>
    public Task Drained => _pump;

    public Exception? ClientError => _pumpError;

    private readonly record struct Chunk(byte[]? Memory, long FileOffset, int Length);

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            if (_pumpError is { } error)
            {
                if (_ignoreClientAbort)
                {
                    // proxy_ignore_client_abort: the origin's response is read to its end and dropped.
                    Interlocked.Add(ref _received, buffer.Length);
                    return;
                }

                throw new IOException("the client connection failed", error);
            }

            var room = _memoryLimit - Interlocked.Read(ref _memoryInUse);
            if (room > 0)
            {
                var n = (int)Math.Min(Math.Min(room, buffer.Length), PieceSize);
                var piece = ArrayPool<byte>.Shared.Rent(n);
                buffer.Span[..n].CopyTo(piece);
                Interlocked.Add(ref _memoryInUse, n);
                _chunks.Writer.TryWrite(new Chunk(piece, 0, n));
                await OnReceived(n, cancellationToken).ConfigureAwait(false);
                buffer = buffer[n..];
                continue;
            }

            var fileRoom = _maxTempFile - (_fileWritten - Interlocked.Read(ref _fileSent));
            if (_maxTempFile > 0 && fileRoom > 0 && (_clientBlocked || _file is not null))
            {
                var n = (int)Math.Min(Math.Min(fileRoom, buffer.Length), PieceSize);
                await WriteFileAsync(buffer[..n], cancellationToken).ConfigureAwait(false);
                await OnReceived(n, cancellationToken).ConfigureAwait(false);
                buffer = buffer[n..];
                continue;
            }

            await WaitForSpaceAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask WriteFileAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (_file is null)
        {
            _file = TempFiles.Create(_tempPath, out var name);
            _fileName = name;
            _r.LogError(LogLevel.Warn, $"an upstream response is buffered to a temporary file {name} while reading upstream");
        }

        var offset = _fileWritten;
        await RandomAccess.WriteAsync(_file.SafeFileHandle, data, offset, cancellationToken).ConfigureAwait(false);
        _fileWritten += data.Length;
        _chunks.Writer.TryWrite(new Chunk(null, offset, data.Length));
    }

    private async ValueTask OnReceived(int n, CancellationToken cancellationToken)
    {
        var total = Interlocked.Add(ref _received, n);
        if (_upstreamRate > 0)
        {
            await Pace(total, _upstreamRate, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until <paramref name="bytes"/> at <paramref name="rate"/> bytes/s are due (nginx's limit_rate arithmetic).</summary>
    private async ValueTask Pace(long bytes, long rate, CancellationToken cancellationToken)
    {
        var due = TimeSpan.FromSeconds((double)bytes / rate);
        var elapsed = _time.GetElapsedTime(_started);
        if (due > elapsed)
        {
            await Task.Delay(due - elapsed, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private Task WaitForSpaceAsync(CancellationToken cancellationToken)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _space, tcs);
        // Space may have been freed (or the client blocked) between the check and the registration.
        if (Interlocked.Read(ref _memoryInUse) < _memoryLimit
            || (_maxTempFile > 0 && (_clientBlocked || _file is not null) && _fileWritten - Interlocked.Read(ref _fileSent) < _maxTempFile)
            || _pumpError is not null)
        {
            return Task.CompletedTask;
        }

        return tcs.Task.WaitAsync(cancellationToken);
    }

    private void SignalSpace() => Interlocked.Exchange(ref _space, null)?.TrySetResult();

    /// <summary>The origin's response is complete: the pump sends what is left and finishes.</summary>
    public void Complete()
    {
        if (Interlocked.Exchange(ref _completed, 1) == 0)
        {
            _chunks.Writer.TryComplete();
        }
    }

    private async Task PumpAsync()
    {
        byte[]? fileBuffer = null;
        try
        {
            await foreach (var chunk in _chunks.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                if (chunk.Memory is { } memory)
                {
                    try
                    {
                        await SendAsync(memory.AsMemory(0, chunk.Length)).ConfigureAwait(false);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(memory);
                        Interlocked.Add(ref _memoryInUse, -chunk.Length);
                        SignalSpace();
                    }

                    continue;
                }

                fileBuffer ??= new byte[PieceSize];
                var offset = chunk.FileOffset;
                var left = chunk.Length;
                while (left > 0)
                {
                    var n = await RandomAccess.ReadAsync(_file!.SafeFileHandle, fileBuffer.AsMemory(0, Math.Min(left, fileBuffer.Length)), offset).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new IOException("temporary file truncated");
                    }

                    await SendAsync(fileBuffer.AsMemory(0, n)).ConfigureAwait(false);
                    offset += n;
                    left -= n;
                    Interlocked.Add(ref _fileSent, n);
                    SignalSpace();
                }
            }

            await _client.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _pumpError = e;
            SignalSpace();
            // Nothing more will be sent: free what is still queued.
            while (_chunks.Reader.TryRead(out var rest))
            {
                if (rest.Memory is { } m)
                {
                    ArrayPool<byte>.Shared.Return(m);
                    Interlocked.Add(ref _memoryInUse, -rest.Length);
                }
            }
        }
        finally
        {
            if (_file is not null)
            {
                await _file.DisposeAsync().ConfigureAwait(false);
                TempFiles.Delete(_fileName!);
            }
        }
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> data)
    {
        var write = _client.WriteAsync(data);
        if (!write.IsCompletedSuccessfully)
        {
            _clientBlocked = true;
            SignalSpace();
            try
            {
                await write.ConfigureAwait(false);
            }
            finally
            {
                _clientBlocked = false;
            }
        }
        else
        {
            await write.ConfigureAwait(false);
        }

        _sent += data.Length;
        if (_clientRate > 0)
        {
            await Pace(_sent, _clientRate, CancellationToken.None).ConfigureAwait(false);
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
