using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Portico.Compilation;
using Portico.Config.Model;
using Portico.Hosting;

namespace Portico.Logging;

/// <summary>
/// Per-connection facts the log needs and HTTP requests cannot see: when the connection was accepted
/// ($connection_time) and whether the next request had already arrived while the previous one was being
/// served ($pipe). A connection middleware installed on every listening socket.
/// </summary>
public sealed class ConnectionLogState
{
    internal static readonly object Key = new();

    internal ConnectionLogState(TrackingPipeReader? input)
    {
        Input = input;
    }

    public long StartTimestamp { get; } = Stopwatch.GetTimestamp();

    internal TrackingPipeReader? Input { get; }

    /// <summary>Set when a request ends with the next one already received.</summary>
    internal bool NextPipelined { get; set; }

    public TimeSpan Age => Stopwatch.GetElapsedTime(StartTimestamp);

    public static ConnectionLogState? Of(HttpContext http) =>
        http.Features.Get<IConnectionItemsFeature>()?.Items is { } items && items.TryGetValue(Key, out var v) ? v as ConnectionLogState : null;
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
            context.Transport = new TrackedPipe(input, context.Transport.Output);
            context.Items[ConnectionLogState.Key] = new ConnectionLogState(input);
            return next(context);
        });

    private sealed class TrackedPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    /// <summary>At the start of an HTTP/1.x request: was it pipelined behind the previous one?</summary>
    public static void Begin(HttpContext http, RequestCounters counters)
    {
        var state = ConnectionLogState.Of(http);
        counters.Connection = state;
        if (state is not null)
        {
            counters.Pipelined = state.NextPipelined;
            state.NextPipelined = false;
        }
    }

    /// <summary>At the end of a request: bytes beyond what this request still owns mean the next request is already here.</summary>
    public static void End(HttpContext http, RequestCounters counters)
    {
        if (counters.Connection is not { Input: { } input } state || !HttpProtocol.IsHttp11(http.Request.Protocol) && !HttpProtocol.IsHttp10(http.Request.Protocol))
        {
            return;
        }

        var unread = Math.Max(0, (http.Request.ContentLength ?? 0) - counters.RequestBodyBytesRead);
        state.NextPipelined = input.Remaining > unread;
    }
}

/// <summary>Remembers how many received bytes lie beyond what the HTTP parser consumed.</summary>
internal sealed class TrackingPipeReader : PipeReader
{
    private readonly PipeReader _inner;
    private ReadOnlySequence<byte> _last;

    public TrackingPipeReader(PipeReader inner)
    {
        _inner = inner;
    }

    /// <summary>Bytes read from the connection and not yet consumed, as of the last AdvanceTo.</summary>
    public long Remaining { get; private set; }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        var task = _inner.ReadAsync(cancellationToken);
        if (task.IsCompletedSuccessfully)
        {
            var result = task.Result;
            _last = result.Buffer;
            return new ValueTask<ReadResult>(result);
        }

        return Await(task);
    }

    private async ValueTask<ReadResult> Await(ValueTask<ReadResult> task)
    {
        var result = await task.ConfigureAwait(false);
        _last = result.Buffer;
        return result;
    }

    public override bool TryRead(out ReadResult result)
    {
        if (_inner.TryRead(out result))
        {
            _last = result.Buffer;
            return true;
        }

        return false;
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
