using System.Text;
using System.Threading.Channels;

namespace Portico.Logging;

/// <summary>
/// A log destination: a file (opened for append, reopened on USR1) or standard error. Only the
/// background writer touches the stream.
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

    /// <summary>Opens the file now (nginx opens logs while loading the configuration); throws the error text.</summary>
    public void EnsureOpen()
    {
        lock (_gate)
        {
            _stream ??= Open();
        }
    }

    private Stream Open()
    {
        switch (Path)
        {
            case "stderr":
            case "/dev/stderr":
                return Console.OpenStandardError();
            case "stdout":
            case "/dev/stdout":
                return Console.OpenStandardOutput();
        }

        return new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
    }

    internal void Write(ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            try
            {
                _stream ??= Open();
                _stream.Write(bytes);
            }
            catch (IOException)
            {
                // A full disk or a removed file must not take the server down; the next reopen retries.
            }
            catch (UnauthorizedAccessException)
            {
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
                _stream = Open();
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
/// The one background writer for every log: requests enqueue formatted lines into a bounded channel and
/// never wait; when the channel is full the line is counted as dropped and reported later.
/// </summary>
public sealed class LogWriter : IAsyncDisposable
{
    private readonly Channel<(LogSink Sink, byte[] Line)> _channel;
    private readonly Dictionary<string, LogSink> _sinks = new(StringComparer.Ordinal);
    private readonly object _sinksGate = new();
    private readonly Task _pump;
    private long _dropped;

    public LogWriter(int capacity = 65536)
    {
        _channel = Channel.CreateBounded<(LogSink, byte[])>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.DropWrite,
            SingleReader = true,
            SingleWriter = false,
        });
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>Lines dropped because the writer could not keep up.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

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

    public void Enqueue(LogSink sink, string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line);
        if (!_channel.Writer.TryWrite((sink, bytes)))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    public void Enqueue(LogSink sink, byte[] line)
    {
        if (!_channel.Writer.TryWrite((sink, line)))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>Writes synchronously (start-up and shutdown messages that must appear before exit).</summary>
    public static void WriteNow(LogSink sink, string line)
    {
        sink.Write(Encoding.UTF8.GetBytes(line));
        sink.Flush();
    }

    public void ReopenAll()
    {
        lock (_sinksGate)
        {
            foreach (var s in _sinks.Values)
            {
                s.Reopen();
            }
        }
    }

    private async Task PumpAsync()
    {
        var reader = _channel.Reader;
        var touched = new HashSet<LogSink>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var item))
            {
                item.Sink.Write(item.Line);
                touched.Add(item.Sink);
            }

            foreach (var s in touched)
            {
                s.Flush();
            }

            touched.Clear();
        }
    }

    /// <summary>Waits until everything queued so far is written (graceful stop, tests).</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (_channel.Reader.Count > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5).ConfigureAwait(false);
        }

        lock (_sinksGate)
        {
            foreach (var s in _sinks.Values)
            {
                s.Flush();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        try
        {
            await _pump.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        lock (_sinksGate)
        {
            foreach (var s in _sinks.Values)
            {
                s.Flush();
                s.Dispose();
            }
        }
    }
}
