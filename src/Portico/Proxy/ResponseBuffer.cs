using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;
using Portico.ClientSide;
using Portico.Config.Syntax;
using Portico.Pipeline;

namespace Portico.Proxy;

/// <summary>
/// proxy_buffering on: the upstream response is read at the origin's speed; what the client cannot take at
/// once waits in memory (proxy_buffers) and, past that, in a temporary file (up to proxy_max_temp_file_size,
/// then the origin waits), while a pump sends it at the client's speed. As in nginx's event pipe, data goes
/// straight to the client while the client keeps up, and is buffered only once a write has to wait, so a
/// slow client never holds the origin connection. proxy_limit_rate paces reading from the origin;
/// X-Accel-Limit-Rate paces sending to the client.
/// </summary>
public sealed class ResponseBuffer : Stream, Upstreams.Transport.IDirectBodySink
{
    private const int PieceSize = 64 * 1024;

    private readonly Lock _gate = new();
    private readonly Queue<Chunk> _queue = new();
    private RequestContext _r;
    private Stream _client;
    private IHttpResponseBodyFeature? _clientFeature;
    private PipeWriter? _clientWriter;
    private long _memoryLimit;
    private long _maxTempFile;
    private TempPath _tempPath;
    private long _upstreamRate;
    private long _clientRate;
    private TimeProvider _time;
    private bool _ignoreClientAbort;
    private long _started;
    private Task _pump = Task.CompletedTask;
    private bool _pumping;
    private bool _completed;
    private long _memoryInUse;
    private long _fileWritten;
    private long _fileSent;
    private long _received;
    private long _sent;
    private TempFile? _file;
    private string? _fileName;
    private TaskCompletionSource? _space;
    private Exception? _pumpError;

    // The pump waits on a client write that did not complete at once: the client is slower than the
    // origin, so what does not fit in memory goes to the temporary file (nginx spills only then too).
    private volatile bool _clientBlocked;

    public ResponseBuffer(RequestContext r, Stream client, long memoryLimit, long maxTempFile, TempPath tempPath, long upstreamRate, long clientRate,
        bool ignoreClientAbort = false, IHttpResponseBodyFeature? clientFeature = null)
    {
        _r = r;
        _client = client;
        _tempPath = tempPath;
        _time = null!;
        Begin(r, client, memoryLimit, maxTempFile, tempPath, upstreamRate, clientRate, ignoreClientAbort, clientFeature);
    }

    /// <summary>
    /// Makes a buffer that has drained (<see cref="Drained"/> completed) serve another response, as a new one would.
    /// </summary>
    public ResponseBuffer Reset(RequestContext r, Stream client, long memoryLimit, long maxTempFile, TempPath tempPath, long upstreamRate, long clientRate,
        bool ignoreClientAbort = false, IHttpResponseBodyFeature? clientFeature = null)
    {
        _queue.Clear();
        _pump = Task.CompletedTask;
        _pumping = false;
        _completed = false;
        _memoryInUse = 0;
        _fileWritten = 0;
        _fileSent = 0;
        _received = 0;
        _sent = 0;
        _file = null;
        _fileName = null;
        _space = null;
        _pumpError = null;
        _clientBlocked = false;
        Begin(r, client, memoryLimit, maxTempFile, tempPath, upstreamRate, clientRate, ignoreClientAbort, clientFeature);
        return this;
    }

    private void Begin(RequestContext r, Stream client, long memoryLimit, long maxTempFile, TempPath tempPath, long upstreamRate, long clientRate,
        bool ignoreClientAbort, IHttpResponseBodyFeature? clientFeature)
    {
        _r = r;
        _client = client;
        _clientFeature = clientFeature;
        _clientWriter = null;
        _memoryLimit = Math.Max(1, memoryLimit);
        _maxTempFile = maxTempFile;
        _tempPath = tempPath;
        _upstreamRate = upstreamRate;
        _clientRate = clientRate;
        _ignoreClientAbort = ignoreClientAbort;
        _time = r.Snapshot.Services.Time;
        _started = _time.GetTimestamp();
    }

    /// <summary>Bytes the origin sent so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>The temporary file used, if the response spilled to disk.</summary>
    public string? TempFileName => _fileName;

    /// <summary>Completes when everything buffered has been sent to the client (or sending failed).</summary>
    public Task Drained
    {
        get
        {
            lock (_gate)
            {
                return _pump;
            }
        }
    }

    public Exception? ClientError => _pumpError;

    private readonly record struct Chunk(byte[]? Memory, long FileOffset, int Length);

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var total = buffer.Length;
        while (!buffer.IsEmpty)
        {
            if (_pumpError is { } error)
            {
                if (_ignoreClientAbort)
                {
                    // proxy_ignore_client_abort: the origin's response is read to its end and dropped.
                    break;
                }

                throw new IOException("the client connection failed", error);
            }

            bool direct;
            lock (_gate)
            {
                direct = !_pumping && _queue.Count == 0 && _clientRate == 0;
            }

            if (direct)
            {
                // The client keeps up: write through. Kestrel copies the data before it returns, so a write
                // that has to wait for the client can be left to the pump while the origin is read on.
                _sent += buffer.Length;
                WentThrough(_client.WriteAsync(buffer));
                break;
            }

            var room = _memoryLimit - Interlocked.Read(ref _memoryInUse);
            if (room > 0)
            {
                var n = (int)Math.Min(Math.Min(room, buffer.Length), PieceSize);
                var piece = ArrayPool<byte>.Shared.Rent(n);
                buffer.Span[..n].CopyTo(piece);
                Interlocked.Add(ref _memoryInUse, n);
                Enqueue(new Chunk(piece, 0, n));
                buffer = buffer[n..];
                continue;
            }

            var fileRoom = _maxTempFile - (_fileWritten - Interlocked.Read(ref _fileSent));
            if (_maxTempFile > 0 && fileRoom > 0 && (_clientBlocked || _file is not null))
            {
                var n = (int)Math.Min(Math.Min(fileRoom, buffer.Length), PieceSize);
                await WriteFileAsync(buffer[..n], cancellationToken).ConfigureAwait(false);
                buffer = buffer[n..];
                continue;
            }

            await WaitForSpaceAsync(cancellationToken).ConfigureAwait(false);
        }

        await ReceivedAsync(total, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A write straight to the client: one that has to wait is left to the pump while the origin is read on.</summary>
    private void WentThrough(ValueTask write)
    {
        if (!write.IsCompletedSuccessfully)
        {
            lock (_gate)
            {
                _pumping = true;
                _clientBlocked = true;
                _pump = PumpAsync(write);
            }
        }
        else
        {
#pragma warning disable RS0030 // the write has completed (IsCompletedSuccessfully): this only observes its result
            write.GetAwaiter().GetResult();
#pragma warning restore RS0030
        }
    }

    /// <summary>Counts bytes taken from the origin; proxy_limit_rate paces the next read.</summary>
    private ValueTask ReceivedAsync(int count, CancellationToken cancellationToken)
    {
        var received = Interlocked.Add(ref _received, count);
        return _upstreamRate > 0 ? Pace(received, _upstreamRate, cancellationToken) : ValueTask.CompletedTask;
    }

    /// <summary>
    /// The client connection's output memory, lent while data goes straight through (the client keeps up,
    /// nothing is queued, no X-Accel-Limit-Rate) and the response has started; empty otherwise.
    /// </summary>
    public bool CanLend
    {
        get
        {
            if (_clientFeature is null || _sent == 0 || _clientRate != 0 || _pumpError is not null)
            {
                return false;
            }

            lock (_gate)
            {
                return !_pumping && _queue.Count == 0;
            }
        }
    }

    /// <inheritdoc cref="CanLend"/>
    public Memory<byte> DirectMemory(int minimum)
    {
        if (!CanLend)
        {
            return default;
        }

        try
        {
            return (_clientWriter ??= _clientFeature!.Writer).GetMemory(minimum);
        }
        catch (InvalidOperationException)
        {
            // The response is over on the client's side; the write path reports it.
            return default;
        }
    }

    /// <summary>Sends <paramref name="count"/> bytes read into <see cref="DirectMemory"/>, as <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/> would.</summary>
    public ValueTask CommitDirectAsync(int count, CancellationToken cancellationToken)
    {
        var writer = _clientWriter!;
        writer.Advance(count);
        _sent += count;
        var flush = writer.FlushAsync(CancellationToken.None);
        if (flush.IsCompletedSuccessfully)
        {
#pragma warning disable RS0030 // the flush has completed (IsCompletedSuccessfully): this only observes its result
            flush.GetAwaiter().GetResult();
#pragma warning restore RS0030
        }
        else
        {
            // The client is behind: the pump waits for this flush while the origin is read on (into buffers).
            WentThrough(new ValueTask(flush.AsTask()));
        }

        return ReceivedAsync(count, cancellationToken);
    }

    private void Enqueue(Chunk chunk)
    {
        lock (_gate)
        {
            _queue.Enqueue(chunk);
            if (!_pumping)
            {
                _pumping = true;
                _pump = PumpAsync(default);
            }
        }
    }

    private async ValueTask WriteFileAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (_file is null)
        {
            // Unlinked at once and reused, as a request body's (nginx unlinks the temp files it does not keep).
            _file = TempFiles.RentAnonymous(_tempPath, out var name);
            _fileName = name;
            _r.LogError(LogLevel.Warn, $"an upstream response is buffered to a temporary file {name} while reading upstream");
        }

        var offset = _fileWritten;
        await _file.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        _fileWritten += data.Length;
        Enqueue(new Chunk(null, offset, data.Length));
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
        lock (_gate)
        {
            _completed = true;
            if (!_pumping)
            {
                _pump = FinishAsync();
            }
        }
    }

    private Task FinishAsync()
    {
        if (_file is not null)
        {
            TempFiles.Release(_file);
            _file = null;
        }

        return Task.CompletedTask;
    }

    /// <summary>Sends queued chunks until the queue is empty; the next write starts another pump if needed.</summary>
    private async Task PumpAsync(ValueTask pending)
    {
        await Task.Yield();
        byte[]? fileBuffer = null;
        try
        {
            if (!pending.IsCompletedSuccessfully)
            {
                try
                {
                    await pending.ConfigureAwait(false);
                }
                finally
                {
                    _clientBlocked = false;
                }
            }

            while (true)
            {
                Chunk chunk;
                lock (_gate)
                {
                    if (!_queue.TryDequeue(out chunk))
                    {
                        _pumping = false;
                        if (!_completed)
                        {
                            return;
                        }

                        break;
                    }
                }

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
                    var n = await RandomAccess.ReadAsync(_file!.Handle, fileBuffer.AsMemory(0, Math.Min(left, fileBuffer.Length)), offset).ConfigureAwait(false);
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
            await FinishAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _pumpError = e;
            SignalSpace();
            lock (_gate)
            {
                // Nothing more will be sent: free what is still queued.
                while (_queue.TryDequeue(out var rest))
                {
                    if (rest.Memory is { } m)
                    {
                        ArrayPool<byte>.Shared.Return(m);
                        Interlocked.Add(ref _memoryInUse, -rest.Length);
                    }
                }

                _pumping = false;
            }

            if (_completed)
            {
                await FinishAsync().ConfigureAwait(false);
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
#pragma warning disable RS0030 // the write has completed (IsCompletedSuccessfully): this only observes its result
            write.GetAwaiter().GetResult();
#pragma warning restore RS0030
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

#pragma warning disable RS0030 // Stream's synchronous API: Kestrel and YARP never call it (AllowSynchronousIO is off)
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();
#pragma warning restore RS0030

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
