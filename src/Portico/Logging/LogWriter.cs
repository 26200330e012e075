using System.Buffers;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Threading.Channels;

namespace Portico.Logging;

/// <summary>
/// A log destination: a file (opened for append, reopened on USR1) or standard error. The background
/// writer owns its buffer (access_log buffer=); other threads only write whole lines under the lock
/// (error messages that must appear at once).
/// </summary>
public sealed class LogSink : IDisposable
{
    private Stream? _stream;
    private readonly object _gate = new();

    internal LogSink(string path)
    {
        Path = path;
    }

    /// <summary>An absolute path, "stderr" or "stdout".</summary>
    public string Path { get; }

    public bool IsConsole => Path is "stderr" or "stdout" or "/dev/stderr" or "/dev/stdout";

    /// <summary>buffer=/flush=/gzip= of the configuration in force (set when a snapshot becomes current).</summary>
    public LogBufferSpec? BufferSpec { get; internal set; }

    // Owned by the writer's pump.
    internal byte[]? Buffer;
    internal int BufferPos;
    internal LogBufferSpec? BufferInUse;
    internal DateTimeOffset FlushDue = DateTimeOffset.MaxValue;
    internal DateTimeOffset LastWriteError = DateTimeOffset.MinValue;

    /// <summary>Opens the file now (nginx opens logs while loading the configuration); throws the error text.</summary>
    public void EnsureOpen()
    {
        lock (_gate)
        {
            _stream ??= Open(Path);
        }
    }

    internal static Stream Open(string path)
    {
        switch (path)
        {
            case "stderr":
            case "/dev/stderr":
                return Console.OpenStandardError();
            case "stdout":
            case "/dev/stdout":
                return Console.OpenStandardOutput();
        }

        return AppendFile.Open(path);
    }

    /// <summary>Writes bytes; returns the failure (a full disk or a removed directory must not take the server down).</summary>
    internal Exception? Write(ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            try
            {
                _stream ??= Open(Path);
                _stream.Write(bytes);
                return null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return e;
            }
        }
    }

    internal void Flush()
    {
        lock (_gate)
        {
            try
            {
                _stream?.Flush();
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>USR1: close and open again (logrotate moved the file).</summary>
    public void Reopen()
    {
        if (IsConsole)
        {
            return;
        }

        lock (_gate)
        {
            try
            {
                _stream?.Flush();
            }
            catch (IOException)
            {
            }

            _stream?.Dispose();
            _stream = null;
            try
            {
                _stream = Open(Path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _stream = null;
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (!IsConsole)
            {
                _stream?.Dispose();
            }

            _stream = null;
        }
    }
}

/// <summary>
/// Log files opened as nginx opens them: O_WRONLY|O_CREAT|O_APPEND, mode 0644. With O_APPEND every write
/// lands at the end of the file even when another process writes to it or logrotate's copytruncate cut it
/// (.NET's FileMode.Append only seeks to the end once).
/// </summary>
internal static partial class AppendFile
{
    private const int OWronly = 0x1;
    private const int OCreat = 0x40;
    private const int OAppend = 0x400;
    private const int OCloexec = 0x80000;

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "open", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8, SetLastError = true)]
    private static partial int OpenFd(string path, int flags, int mode);

    public static Stream Open(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        }

        var fd = OpenFd(path, OWronly | OCreat | OAppend | OCloexec, Convert.ToInt32("644", 8));
        if (fd < 0)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            throw errno switch
            {
                2 => new DirectoryNotFoundException($"open() \"{path}\" failed"),
                13 => new UnauthorizedAccessException($"open() \"{path}\" failed"),
                _ => new IOException($"open() \"{path}\" failed (errno {errno})", errno),
            };
        }

        // FileStream writes with pwrite(2), which appends on an O_APPEND descriptor on Linux.
        return new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, 1);
    }
}

/// <summary>
/// The one background writer for every log: requests enqueue formatted lines into a bounded channel and
/// never wait; when the channel is full the line is counted as dropped and an [alert] says how many, at
/// most once per second. The writer batches buffered access logs per file (buffer=, flush=, gzip=), opens
/// files whose names have variables (open_log_file_cache), and reopens everything on USR1.
/// </summary>
public sealed class LogWriter : IAsyncDisposable
{
    private enum Kind : byte
    {
        /// <summary>An error log line: written as it comes, never buffered.</summary>
        Direct,

        /// <summary>An access log line: through the file's buffer when it has one.</summary>
        Access,

        /// <summary>An access log line for a file name with variables.</summary>
        Dynamic,

        /// <summary>Wake up: a flush timer fired, or reopen/flush was requested.</summary>
        Tick,

        /// <summary>Completes a task once everything before it is written.</summary>
        Barrier,

        /// <summary>Stops the writer until a task completes (tests of a full queue).</summary>
        Hold,
    }

    private readonly record struct Entry(Kind Kind, LogSink? Sink, byte[]? Data, int Length, bool Pooled, object? Extra);

    private sealed record DynamicTarget(string Path, LogFileCache Cache, ErrorLog ErrorLog, RequestErrorContext Context);

    private sealed record BarrierRequest(TaskCompletionSource Done, bool FlushBuffers);

    private sealed record HoldRequest(TaskCompletionSource Reached, Task Release);

    private readonly Channel<Entry> _channel;
    private readonly Dictionary<string, LogSink> _sinks = new(StringComparer.Ordinal);
    private readonly Dictionary<OpenLogFileCacheSpec, LogFileCache> _caches = [];
    private readonly object _sinksGate = new();
    private readonly HashSet<LogSink> _buffered = [];
    private readonly MemoryStream _gzip = new();
    private Task? _pump;
    private TimeProvider _time;
    private ITimer? _timer;
    private DateTimeOffset _timerDue = DateTimeOffset.MaxValue;
    private long _dropped;
    private long _accessLines;
    private long _reportedDrops;
    private DateTimeOffset _lastDropReport = DateTimeOffset.MinValue;
    private int _reopen;
    private int _flushAll;

    /// <param name="capacity">Lines the channel holds before new ones are dropped.</param>
    /// <param name="time">The clock of flush= and of the drop report's once-per-second limit.</param>
    /// <param name="start">False leaves the writer paused until <see cref="Start"/> (tests).</param>
    public LogWriter(int capacity = 65536, TimeProvider? time = null, bool start = true)
    {
        _time = time ?? TimeProvider.System;
        Capacity = capacity;
        _channel = Channel.CreateBounded<Entry>(new BoundedChannelOptions(capacity)
        {
            // Wait (not DropWrite, whose TryWrite reports success for what it drops): TryWrite fails when full,
            // so requests never wait and every dropped line is counted.
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = false,
        });
        if (start)
        {
            Start();
        }
    }

    public int Capacity { get; }

    /// <summary>Lines dropped because the writer could not keep up.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Access log lines handed to the writer so far (written, buffered or dropped).</summary>
    public long AccessLines => Interlocked.Read(ref _accessLines);

    /// <summary>Where the writer reports dropped lines and failed writes (the current main error log).</summary>
    public ErrorLog? AlertLog { get; set; }

    /// <summary>The clock of flush= timers (the host's TimeProvider; tests use a fake one).</summary>
    public TimeProvider Time
    {
        get => _time;
        set => _time = value;
    }

    /// <summary>Starts the background writer (once).</summary>
    public void Start()
    {
        lock (_sinksGate)
        {
            _pump ??= Task.Run(PumpAsync);
        }
    }

    public LogSink GetSink(string path)
    {
        lock (_sinksGate)
        {
            if (!_sinks.TryGetValue(path, out var sink))
            {
                sink = new LogSink(path);
                _sinks.Add(path, sink);
            }

            return sink;
        }
    }

    /// <summary>The cache of descriptors for logs with variables in their names, one per open_log_file_cache setting.</summary>
    public LogFileCache GetFileCache(OpenLogFileCacheSpec spec)
    {
        lock (_sinksGate)
        {
            if (!_caches.TryGetValue(spec, out var cache))
            {
                cache = new LogFileCache(spec);
                _caches.Add(spec, cache);
            }

            return cache;
        }
    }

    public void Enqueue(LogSink sink, string line) => Enqueue(sink, Encoding.UTF8.GetBytes(line));

    public void Enqueue(LogSink sink, byte[] line) => Post(new Entry(Kind.Direct, sink, line, line.Length, false, null));

    /// <summary>An access log line in a buffer rented from ArrayPool.Shared; the writer returns it.</summary>
    public void EnqueueAccess(LogSink sink, byte[] pooled, int length)
    {
        Post(new Entry(Kind.Access, sink, pooled, length, true, null));
        Interlocked.Increment(ref _accessLines);
    }

    /// <summary>
    /// An access log line for a file named at request time. <paramref name="context"/> is the request's
    /// error context ("*N …, client: …, server: …, request: …") for an open() failure reported to <paramref name="errorLog"/>.
    /// </summary>
    public void EnqueueDynamic(string path, LogFileCache cache, byte[] pooled, int length, ErrorLog errorLog, RequestErrorContext context)
    {
        Post(new Entry(Kind.Dynamic, null, pooled, length, true, new DynamicTarget(path, cache, errorLog, context)));
        Interlocked.Increment(ref _accessLines);
    }

    private void Post(in Entry e)
    {
        if (!_channel.Writer.TryWrite(e))
        {
            Interlocked.Increment(ref _dropped);
            if (e.Pooled)
            {
                ArrayPool<byte>.Shared.Return(e.Data!);
            }
        }
    }

    private void Wake() => _channel.Writer.TryWrite(new Entry(Kind.Tick, null, null, 0, false, null));

    /// <summary>Writes synchronously (start-up and shutdown messages that must appear before exit).</summary>
    public static void WriteNow(LogSink sink, string line)
    {
        sink.Write(Encoding.UTF8.GetBytes(line));
        sink.Flush();
    }

    /// <summary>Sets the buffering of a file (a snapshot that becomes current); the old buffer is written first.</summary>
    public void Configure(LogSink sink, LogBufferSpec? spec)
    {
        sink.BufferSpec = spec;
        Wake();
    }

    /// <summary>Writes out every buffer soon (a reload, as nginx flushes the old cycle's files).</summary>
    public void FlushAll()
    {
        Interlocked.Exchange(ref _flushAll, 1);
        Wake();
    }

    /// <summary>USR1: buffers are written, then every file is closed and opened again.</summary>
    public void ReopenAll()
    {
        Interlocked.Exchange(ref _reopen, 1);
        Wake();
    }

    /// <summary>Completes when every line queued before the call is written (buffered lines stay in their buffers).</summary>
    public Task WhenIdleAsync() => BarrierAsync(false);

    private async Task BarrierAsync(bool flush)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await _channel.Writer.WriteAsync(new Entry(Kind.Barrier, null, null, 0, false, new BarrierRequest(tcs, flush))).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return;
        }

        await tcs.Task.ConfigureAwait(false);
    }

    /// <summary>Stops the writer, once it has written what is queued, until <paramref name="release"/> completes (tests).</summary>
    internal async Task HoldAsync(Task release)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _channel.Writer.WriteAsync(new Entry(Kind.Hold, null, null, 0, false, new HoldRequest(reached, release))).ConfigureAwait(false);
        await reached.Task.ConfigureAwait(false);
    }

    /// <summary>Waits until everything queued so far is written and the buffers are flushed (graceful stop, tests).</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        try
        {
            await BarrierAsync(true).WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    private async Task PumpAsync()
    {
        var reader = _channel.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var e))
                {
                    if (e.Kind == Kind.Hold)
                    {
                        var hold = (HoldRequest)e.Extra!;
                        hold.Reached.TrySetResult();
                        await hold.Release.ConfigureAwait(false);
                        continue;
                    }

                    Housekeeping(false);
                    Process(e);
                }

                Housekeeping(true);
            }
        }
        finally
        {
            FlushBuffers();
            lock (_sinksGate)
            {
                foreach (var c in _caches.Values)
                {
                    c.CloseAll();
                }
            }
        }
    }

    private void Process(in Entry e)
    {
        try
        {
            switch (e.Kind)
            {
                case Kind.Direct:
                    Report(e.Sink!, e.Sink!.Write(e.Data.AsSpan(0, e.Length)));
                    break;
                case Kind.Access:
                    WriteAccess(e.Sink!, e.Data.AsSpan(0, e.Length));
                    break;
                case Kind.Dynamic:
                    var target = (DynamicTarget)e.Extra!;
                    target.Cache.Write(target.Path, e.Data.AsSpan(0, e.Length), _time.GetUtcNow(), target.ErrorLog, target.Context);
                    break;
                case Kind.Barrier:
                    var barrier = (BarrierRequest)e.Extra!;
                    Housekeeping(true);
                    if (barrier.FlushBuffers)
                    {
                        FlushBuffers();
                    }

                    barrier.Done.TrySetResult();
                    break;
            }
        }
        finally
        {
            if (e.Pooled)
            {
                ArrayPool<byte>.Shared.Return(e.Data!);
            }
        }
    }

    /// <summary>ngx_http_log_handler's buffer logic: flush when the line does not fit; a line larger than the buffer is written alone.</summary>
    private void WriteAccess(LogSink sink, ReadOnlySpan<byte> line)
    {
        var spec = sink.BufferSpec;
        if (!Equals(spec, sink.BufferInUse))
        {
            FlushBuffer(sink);
            sink.BufferInUse = spec;
            sink.Buffer = spec is null ? null : new byte[spec.Size];
        }

        if (spec is null || sink.Buffer is null)
        {
            Report(sink, sink.Write(line));
            return;
        }

        if (line.Length > sink.Buffer.Length - sink.BufferPos)
        {
            FlushBuffer(sink);
        }

        if (line.Length <= sink.Buffer.Length - sink.BufferPos)
        {
            if (sink.BufferPos == 0)
            {
                _buffered.Add(sink);
                if (spec.Flush is { } flush)
                {
                    sink.FlushDue = _time.GetUtcNow() + flush;
                    ArmTimer(sink.FlushDue);
                }
            }

            line.CopyTo(sink.Buffer.AsSpan(sink.BufferPos));
            sink.BufferPos += line.Length;
            return;
        }

        WriteOut(sink, line, spec.GzipLevel);
    }

    private void FlushBuffer(LogSink sink)
    {
        if (sink.Buffer is null || sink.BufferPos == 0)
        {
            return;
        }

        WriteOut(sink, sink.Buffer.AsSpan(0, sink.BufferPos), sink.BufferInUse?.GzipLevel ?? 0);
        sink.BufferPos = 0;
        sink.FlushDue = DateTimeOffset.MaxValue;
        _buffered.Remove(sink);
    }

    /// <summary>Writes data, as one gzip member when the log is compressed (what ngx_http_log_gzip does).</summary>
    private void WriteOut(LogSink sink, ReadOnlySpan<byte> data, int gzipLevel)
    {
        if (gzipLevel <= 0)
        {
            Report(sink, sink.Write(data));
            return;
        }

        _gzip.SetLength(0);
        using (var gz = new GZipStream(_gzip, new ZLibCompressionOptions { CompressionLevel = gzipLevel }, leaveOpen: true))
        {
            gz.Write(data);
        }

        Report(sink, sink.Write(_gzip.GetBuffer().AsSpan(0, (int)_gzip.Length)));
        if (_gzip.Capacity > 1 << 20)
        {
            _gzip.Capacity = 0;
        }
    }

    private void FlushBuffers()
    {
        foreach (var s in _buffered.ToArray())
        {
            FlushBuffer(s);
        }
    }

    /// <summary>nginx's "write() to "file" failed", at most once a minute per file.</summary>
    private void Report(LogSink sink, Exception? error)
    {
        if (error is null)
        {
            return;
        }

        var now = _time.GetUtcNow();
        if (now - sink.LastWriteError < TimeSpan.FromSeconds(60) || AlertLog is not { } log)
        {
            return;
        }

        sink.LastWriteError = now;
        log.Alert($"write() to \"{sink.Path}\" failed ({Compilation.ErrorLogFactory.Errno(error)})");
    }

    /// <summary>Reopen and flush requests, due flush= timers, the drop report and idle descriptors.</summary>
    private void Housekeeping(bool endOfBatch)
    {
        if (Volatile.Read(ref _reopen) != 0 && Interlocked.Exchange(ref _reopen, 0) == 1)
        {
            FlushBuffers();
            List<LogSink> sinks;
            List<LogFileCache> caches;
            lock (_sinksGate)
            {
                sinks = [.. _sinks.Values];
                caches = [.. _caches.Values];
            }

            foreach (var s in sinks)
            {
                s.Reopen();
            }

            foreach (var c in caches)
            {
                c.CloseAll();
            }
        }

        if (!endOfBatch)
        {
            return;
        }

        if (Volatile.Read(ref _flushAll) != 0 && Interlocked.Exchange(ref _flushAll, 0) == 1)
        {
            FlushBuffers();
        }

        var now = _time.GetUtcNow();
        var next = DateTimeOffset.MaxValue;
        if (_buffered.Count > 0)
        {
            foreach (var s in _buffered.ToArray())
            {
                if (s.FlushDue <= now || !Equals(s.BufferSpec, s.BufferInUse))
                {
                    FlushBuffer(s);
                }
                else if (s.FlushDue < next)
                {
                    next = s.FlushDue;
                }
            }
        }

        var dropped = Dropped;
        if (dropped > _reportedDrops)
        {
            if (now - _lastDropReport >= TimeSpan.FromSeconds(1))
            {
                AlertLog?.Alert(string.Create(CultureInfo.InvariantCulture,
                    $"{dropped - _reportedDrops} log lines dropped: the log writer's queue of {Capacity} lines was full"));
                _reportedDrops = dropped;
                _lastDropReport = now;
            }
            else if (_lastDropReport + TimeSpan.FromSeconds(1) < next)
            {
                next = _lastDropReport + TimeSpan.FromSeconds(1);
            }
        }

        lock (_sinksGate)
        {
            foreach (var c in _caches.Values)
            {
                var due = c.Sweep(now);
                if (due < next)
                {
                    next = due;
                }
            }
        }

        if (next != DateTimeOffset.MaxValue)
        {
            ArmTimer(next);
        }
    }

    /// <summary>One timer for the writer, set to the earliest thing due; it only wakes the pump.</summary>
    private void ArmTimer(DateTimeOffset due)
    {
        var now = _time.GetUtcNow();
        if (_timer is not null && _timerDue <= due && _timerDue > now)
        {
            return;
        }

        _timerDue = due;
        var delay = due - now;
        if (delay < TimeSpan.Zero)
        {
            delay = TimeSpan.Zero;
        }

        if (_timer is null)
        {
            _timer = _time.CreateTimer(static s => ((LogWriter)s!).OnTimer(), this, delay, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _timer.Change(delay, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnTimer()
    {
        _timerDue = DateTimeOffset.MaxValue;
        Wake();
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        if (_pump is not null)
        {
            try
            {
                await _pump.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }

        _timer?.Dispose();
        lock (_sinksGate)
        {
            foreach (var s in _sinks.Values)
            {
                s.Flush();
                s.Dispose();
            }
        }

        await _gzip.DisposeAsync().ConfigureAwait(false);
    }
}
