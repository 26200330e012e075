using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Threading.Tasks.Sources;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Portico.Compilation;
using Portico.Config.Model;
using Portico.Hosting;
using Portico.Pipeline;

namespace Portico.Logging;

/// <summary>
/// Per-connection facts the log needs and HTTP requests cannot see: when the connection was accepted
/// ($connection_time) and whether the next request had already arrived while the previous one was being
/// served ($pipe). A connection middleware installed on every listening socket.
/// </summary>
public sealed class ConnectionLogState
{
    internal ConnectionLogState(TrackingPipeReader? input)
    {
        Input = input;
    }

    /// <summary>The host and socket, to log a request the HTTP server rejected before Portico saw it.</summary>
    internal PorticoHost? Host { get; init; }

    internal string? SocketKey { get; init; }

    internal IPEndPoint? Remote { get; init; }

    internal IPEndPoint? Local { get; init; }

    /// <summary>A request of this connection is being served by Portico.</summary>
    internal bool AppActive { get; set; }

    /// <summary>The response the HTTP server wrote on its own was logged already.</summary>
    internal bool RejectionLogged { get; set; }

    public long StartTimestamp { get; } = Stopwatch.GetTimestamp();

    internal TrackingPipeReader? Input { get; }

    /// <summary>Set when a request ends with the next one already received.</summary>
    internal bool NextPipelined { get; set; }

    /// <summary>The connection's facts as requests see them, made by the first request.</summary>
    internal ClientConnection? Client { get; set; }

    public TimeSpan Age => Stopwatch.GetElapsedTime(StartTimestamp);
}

/// <summary>The listener hook that installs <see cref="ConnectionLogState"/> on each connection.</summary>
public sealed class ConnectionTrackerHook : IListenerHook
{
    public static ConnectionTrackerHook Instance { get; } = new();

    public void ApplyLimits(KestrelServerOptions options, RuntimeSnapshot snapshot, BoundSocket socket)
    {
    }

    public void ConfigureEndpoint(ListenOptions listenOptions, BoundSocket socket, RuntimeSnapshot snapshot, PorticoHost host) =>
        listenOptions.Use(next => context =>
        {
            var input = new TrackingPipeReader(context.Transport.Input);
            var state = new ConnectionLogState(input)
            {
                Host = host,
                SocketKey = socket.Key,
                Remote = context.RemoteEndPoint as IPEndPoint,
                Local = context.LocalEndPoint as IPEndPoint,
            };
            context.Transport = new TrackedPipe(input, new TrackingPipeWriter(context.Transport.Output, state));
            // A connection feature (requests see the connection's features), not an item: a connection whose
            // items nothing else uses never makes the items dictionary.
            context.Features.Set(state);
            return next(context);
        });

    private sealed class TrackedPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    /// <summary>At the start of an HTTP/1.x request: was it pipelined behind the previous one?</summary>
    public static void Begin(ConnectionLogState? state, RequestCounters? counters)
    {
        if (state is null)
        {
            return;
        }

        state.AppActive = true;
        state.RejectionLogged = false;
        if (state.Input is { } input)
        {
            input.CaptureNext = false;
        }

        if (counters is not null)
        {
            counters.Connection = state;
            counters.Pipelined = state.NextPipelined;
        }

        state.NextPipelined = false;
    }

    /// <summary>At the end of a request: bytes beyond what this request still owns mean the next request is already here.</summary>
    public static void End(HttpContext http, ConnectionLogState? tracked, RequestCounters? counters)
    {
        if (tracked is not { Input: { } input } state
            || !HttpProtocol.IsHttp11(http.Request.Protocol) && !HttpProtocol.IsHttp10(http.Request.Protocol))
        {
            return;
        }

        var unread = Math.Max(0, (http.Request.ContentLength ?? 0) - (counters?.RequestBodyBytesRead ?? 0));
        state.NextPipelined = input.Remaining > unread;
        state.AppActive = false;
        input.ExpectNext();
    }

    /// <summary>
    /// The HTTP server answered on its own (a request line or header it could not parse, a header timeout):
    /// log the request in the default server of the address, with the request line as received.
    /// </summary>
    internal static void LogRejected(ConnectionLogState state, int status)
    {
        if (state.Host?.Current is not { } snapshot || state.SocketKey is null
            || !snapshot.Listeners.TryGetValue(state.SocketKey, out var listener))
        {
            return;
        }

        var line = state.Input?.CapturedLine() ?? string.Empty;
        var http = new DefaultHttpContext();
        var request = http.Features.Get<IHttpRequestFeature>()!;
        var parts = line.Split(' ', 3);
        request.Method = parts[0];
        request.RawTarget = parts.Length > 1 ? parts[1] : string.Empty;
        request.Protocol = parts.Length > 2 ? parts[2] : string.Empty;
        http.Response.StatusCode = status;
        var connection = new ClientConnection(state.Remote?.Address, state.Remote?.Port ?? 0, state.Local?.Address, state.Local?.Port ?? 0);
        snapshot.Enter();
        try
        {
            var r = new RequestContext(http, snapshot, listener, connection) { Status = status, RequestLine = line };
            r.Address = listener.ForLocal(connection.LocalAddress);
            r.Server = r.Address.Names.Default;
            r.Location = r.Server.ServerLevel;
            foreach (var h in r.Location.LogHandlers)
            {
                h.Log(r);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            snapshot.ErrorLog.Alert($"logging a rejected request failed: {e.Message}");
        }
        finally
        {
            snapshot.Leave();
        }
    }
}

/// <summary>Remembers how many received bytes lie beyond what the HTTP parser consumed.</summary>
internal sealed class TrackingPipeReader : PipeReader, IValueTaskSource<ReadResult>
{
    private readonly PipeReader _inner;
    private ReadOnlySequence<byte> _last;
    private ManualResetValueTaskSourceCore<ReadResult> _core;
    private ValueTask<ReadResult> _pending;
    private Action? _onInnerCompleted;

    public TrackingPipeReader(PipeReader inner)
    {
        _inner = inner;
    }

    private const int MaxLine = 8192;
    private byte[]? _line;
    private int _lineLength;

    /// <summary>Bytes read from the connection and not yet consumed, as of the last AdvanceTo.</summary>
    public long Remaining { get; private set; }

    private const int MaxHeadScan = 16 * 1024;

    /// <summary>Bytes of the current request's head (request line to the empty line), or -1 when it did not
    /// arrive with its first line.</summary>
    public int HeadLength { get; private set; } = -1;

    /// <summary>Keep the first line of the next data read: the start of the next request.</summary>
    public bool CaptureNext { get; set; } = true;

    /// <summary>The request ended: the next data read starts the next one.</summary>
    public void ExpectNext()
    {
        HeadLength = -1;
        CaptureNext = true;
    }

    /// <summary>The first line of the request being read (without CRLF), as text that keeps every byte.</summary>
    public string CapturedLine() => _line is null ? string.Empty : RawText.Decode(_line.AsSpan(0, _lineLength));

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        var task = _inner.ReadAsync(cancellationToken);
        if (task.IsCompletedSuccessfully)
        {
            var result = task.Result;
            Seen(result);
            return new ValueTask<ReadResult>(result);
        }

        // Pending: this reader is the completion source (one read at a time per PipeReader), so a read
        // that waits for the next request allocates nothing.
        _core.Reset();
        _pending = task;
        _onInnerCompleted ??= OnInnerCompleted;
        task.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onInnerCompleted);
        return new ValueTask<ReadResult>(this, _core.Version);
    }

    private void OnInnerCompleted()
    {
        var task = _pending;
        _pending = default;
        ReadResult result;
        try
        {
            result = task.Result; // completed: the callback runs once the read has finished
        }
        catch (Exception e)
        {
            _core.SetException(e);
            return;
        }

        Seen(result);
        _core.SetResult(result);
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    public override bool TryRead(out ReadResult result)
    {
        if (_inner.TryRead(out result))
        {
            Seen(result);
            return true;
        }

        return false;
    }

    private void Seen(in ReadResult result)
    {
        _last = result.Buffer;
        if (!CaptureNext || result.Buffer.IsEmpty)
        {
            return;
        }

        // Copied into one buffer per connection: no allocation per request.
        var slice = result.Buffer.Length > MaxLine ? result.Buffer.Slice(0, MaxLine) : result.Buffer;
        var newline = slice.PositionOf((byte)'\n');
        if (newline is null && slice.Length < MaxLine && !result.IsCompleted)
        {
            return;
        }

        // The whole head in the first segment of this read: its length spares the header-buffer check its walk.
        var first = result.Buffer.FirstSpan;
        var head = first.Length > MaxHeadScan ? first[..MaxHeadScan] : first;
        var headEnd = head.IndexOf("\r\n\r\n"u8);
        HeadLength = headEnd >= 0 ? headEnd + 4 : -1;

        var line = newline is { } end ? slice.Slice(0, end) : slice;
        _line ??= new byte[256];
        if (_line.Length < line.Length)
        {
            _line = new byte[Math.Max(line.Length, _line.Length * 2)];
        }

        line.CopyTo(_line);
        _lineLength = (int)line.Length;
        if (_lineLength > 0 && _line[_lineLength - 1] == (byte)'\r')
        {
            _lineLength--;
        }

        CaptureNext = false;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        Remaining = _last.IsEmpty ? 0 : _last.Slice(consumed).Length;
        _last = default;
        _inner.AdvanceTo(consumed, examined);
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => _inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => _inner.CompleteAsync(exception);
}

/// <summary>Notices a response the HTTP server writes while no request is being served (its own rejections).</summary>
internal sealed class TrackingPipeWriter : PipeWriter
{
    private readonly PipeWriter _inner;
    private readonly ConnectionLogState _state;
    private Memory<byte> _last;

    public TrackingPipeWriter(PipeWriter inner, ConnectionLogState state)
    {
        _inner = inner;
        _state = state;
    }

    public override Memory<byte> GetMemory(int sizeHint = 0) => _last = _inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => (_last = _inner.GetMemory(sizeHint)).Span;

    public override void Advance(int bytes)
    {
        if (!_state.AppActive && !_state.RejectionLogged && bytes <= _last.Length)
        {
            Inspect(_last.Span[..bytes]);
        }

        _last = default;
        _inner.Advance(bytes);
    }

    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        if (!_state.AppActive && !_state.RejectionLogged)
        {
            Inspect(source.Span);
        }

        return _inner.WriteAsync(source, cancellationToken);
    }

    /// <summary>"HTTP/1.x NNN ": the server's own response to a request it did not hand over.</summary>
    private void Inspect(ReadOnlySpan<byte> data)
    {
        if (data.Length < 13 || !data.StartsWith("HTTP/1."u8) || data[8] != (byte)' ' || data[12] != (byte)' '
            || !char.IsAsciiDigit((char)data[9]) || !char.IsAsciiDigit((char)data[10]) || !char.IsAsciiDigit((char)data[11]))
        {
            return;
        }

        var status = (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');
        if (status < 400)
        {
            return;
        }

        _state.RejectionLogged = true;
        ConnectionTrackerHook.LogRejected(_state, status);
    }

    public override void CancelPendingFlush() => _inner.CancelPendingFlush();

    public override void Complete(Exception? exception = null) => _inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => _inner.CompleteAsync(exception);

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => _inner.FlushAsync(cancellationToken);

    public override bool CanGetUnflushedBytes => _inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => _inner.UnflushedBytes;
}
