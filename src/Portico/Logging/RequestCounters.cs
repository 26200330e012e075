using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;

namespace Portico.Logging;

/// <summary>
/// What the log needs to know about one request's bytes ($bytes_sent, $body_bytes_sent, $request_length,
/// $request_completion, $pipe). Installed once per request as the response body feature (one object: it is
/// also the counting response stream); the request body is wrapped only when the request can have one.
/// </summary>
public sealed class RequestCounters : Stream, IHttpResponseBodyFeature
{
    private HttpContext _http;
    private IHttpResponseBodyFeature _inner;
    private Stream? _innerStream;
    private CountingPipeWriter? _writer;
    private CountingRequestBody? _requestBody;
    private long _body;
    private long _chunkFraming;
    private long _pendingChunk;

    private RequestCounters(HttpContext http, IHttpResponseBodyFeature inner)
    {
        _http = http;
        _inner = inner;
    }

    /// <summary>The slot where a request leaves its counters for the next request run on its RequestContext.</summary>
    public static readonly Pipeline.RequestKey ReuseKey = new();

    /// <summary>
    /// Wraps the request's response body (and request body) features; null when the server has none.
    /// <paramref name="reuse"/>: counters of an ended request, made new again.
    /// </summary>
    public static RequestCounters? Install(HttpContext http, RequestCounters? reuse = null)
    {
        var features = http.Features;
        var inner = features.Get<IHttpResponseBodyFeature>();
        if (inner is null)
        {
            return null;
        }

        var counters = reuse?.Reset(http, inner) ?? new RequestCounters(http, inner);
        features.Set<IHttpResponseBodyFeature>(counters);
        if (features.Get<IHttpRequestBodyDetectionFeature>() is not { CanHaveBody: false }
            && features.Get<IHttpRequestFeature>() is { } request)
        {
            counters._requestBody = new CountingRequestBody(request.Body);
            request.Body = counters._requestBody;

            // Request.BodyReader then reads through Request.Body, so both ways of reading are counted.
            features.Set<IRequestBodyPipeFeature>(null);
        }

        return counters;
    }

    private RequestCounters Reset(HttpContext http, IHttpResponseBodyFeature inner)
    {
        _http = http;
        _inner = inner;
        _innerStream = null;
        _writer = null;
        _requestBody = null;
        _body = 0;
        _chunkFraming = 0;
        _pendingChunk = 0;
        Connection = null;
        Pipelined = false;
        Finished = false;
        Completed = false;
        BodyBytesSent = 0;
        _bytesSent = -1;
        _requestLength = -1;
        _started = false;
        return this;
    }

    /// <summary>The connection's log state (accept time, pipelining), when the listener tracks it.</summary>
    public ConnectionLogState? Connection { get; set; }

    /// <summary>The request arrived while the previous one on its connection was being served ($pipe "p").</summary>
    public bool Pipelined { get; set; }

    /// <summary>The numbers below are final.</summary>
    public bool Finished { get; private set; }

    /// <summary>The whole response was handed to the connection ($request_completion "OK").</summary>
    public bool Completed { get; private set; }

    /// <summary>$bytes_sent: status line, headers and body (with chunked framing).</summary>
    public long BytesSent
    {
        get
        {
            // Computed on first use: formats without $bytes_sent never walk the header collection.
            if (_bytesSent < 0)
            {
                _bytesSent = _started ? ResponseHeaderSize(_http) + BodyBytesSent : 0;
            }

            return _bytesSent;
        }
    }

    /// <summary>$body_bytes_sent: the body as sent, chunked framing included, as nginx counts it.</summary>
    public long BodyBytesSent { get; private set; }

    /// <summary>$request_length: request line, headers and the body bytes read.</summary>
    public long RequestLength
    {
        get
        {
            if (_requestLength < 0)
            {
                _requestLength = RequestHeaderSize(_http) + RequestBodyBytesRead;
            }

            return _requestLength;
        }
    }

    private long _bytesSent = -1;
    private long _requestLength = -1;
    private bool _started;

    /// <summary>Body bytes the handlers wrote, before any framing.</summary>
    public long BodyBytesWritten => _body;

    /// <summary>Body bytes read from the client so far.</summary>
    public long RequestBodyBytesRead => _requestBody?.BytesRead ?? 0;

    /// <summary>Takes the final numbers once the response is over (after <see cref="CompleteAsync"/>).</summary>
    public void Finish(bool completed)
    {
        Finished = true;
        Completed = completed;
        var response = _http.Response;
        _started = response.HasStarted;
        if (_started)
        {
            long body = 0;
            if (!HttpMethods.IsHead(_http.Request.Method))
            {
                body = _body;
                if (IsChunked(response))
                {
                    body += _chunkFraming + ChunkFraming(_pendingChunk) + 5; // last-chunk "0\r\n\r\n"
                }
            }

            BodyBytesSent = body;
        }

        // The request headers stay readable until the request is over: $request_length is computed on use,
        // but the body count is final now.
        _requestLength = -1;
    }

    private static bool IsChunked(HttpResponse response)
    {
        var te = response.Headers.TransferEncoding;
        return te.Count > 0 && te[te.Count - 1] is { } last && last.EndsWith("chunked", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>"{hex}\r\n" before and "\r\n" after a chunk of <paramref name="size"/> bytes.</summary>
    internal static long ChunkFraming(long size)
    {
        if (size <= 0)
        {
            return 0;
        }

        var digits = 0;
        for (var s = size; s > 0; s >>= 4)
        {
            digits++;
        }

        return digits + 4;
    }

    /// <summary>The status line and header block as the server writes them for HTTP/1.1.</summary>
    internal static long ResponseHeaderSize(HttpContext http)
    {
        var response = http.Response;
        var reason = http.Features.Get<IHttpResponseFeature>()?.ReasonPhrase;
        if (string.IsNullOrEmpty(reason))
        {
            reason = ReasonPhrases.GetReasonPhrase(response.StatusCode);
        }

        long size = "HTTP/1.1 000 ".Length + reason.Length + 2 + 2;
        foreach (var (name, values) in response.Headers)
        {
            foreach (var v in values)
            {
                size += name.Length + 2 + ByteCount(v) + 2;
            }
        }

        return size;
    }

    /// <summary>The request line and headers as received (one space after each colon, CRLF line ends).</summary>
    internal static long RequestHeaderSize(HttpContext http)
    {
        var feature = http.Features.Get<IHttpRequestFeature>();
        if (feature is null)
        {
            return 0;
        }

        long size = feature.Method.Length + 1 + ByteCount(feature.RawTarget) + 1 + feature.Protocol.Length + 2 + 2;
        foreach (var (name, values) in feature.Headers)
        {
            if (name.Length > 0 && name[0] == ':')
            {
                continue; // HTTP/2 pseudo-headers are part of the request line above.
            }

            foreach (var v in values)
            {
                size += name.Length + 2 + ByteCount(v) + 2;
            }
        }

        return size;
    }

    /// <summary>Header values are decoded from UTF-8 (or ASCII); count the bytes that were on the wire.</summary>
    private static int ByteCount(string? value)
    {
        if (value is null)
        {
            return 0;
        }

        return System.Text.Ascii.IsValid(value) ? value.Length : System.Text.Encoding.UTF8.GetByteCount(value);
    }

    private void Chunk(long size) => _chunkFraming += ChunkFraming(size);

    // ---- IHttpResponseBodyFeature ----

    Stream IHttpResponseBodyFeature.Stream => this;

    PipeWriter IHttpResponseBodyFeature.Writer => _writer ??= new CountingPipeWriter(this, _inner.Writer);

    void IHttpResponseBodyFeature.DisableBuffering() => _inner.DisableBuffering();

    Task IHttpResponseBodyFeature.StartAsync(CancellationToken cancellationToken) => _inner.StartAsync(cancellationToken);

    async Task IHttpResponseBodyFeature.SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken)
    {
        await _inner.SendFileAsync(path, offset, count, cancellationToken).ConfigureAwait(false);
        var length = count ?? new FileInfo(path).Length - offset;
        _body += length;
        Chunk(length);
    }

    public async Task CompleteAsync()
    {
        FlushPendingChunk();
        await _inner.CompleteAsync().ConfigureAwait(false);
    }

    private void FlushPendingChunk()
    {
        if (_pendingChunk > 0)
        {
            Chunk(_pendingChunk);
            _pendingChunk = 0;
        }
    }

    // ---- the counting response stream ----

    private Stream Inner => _innerStream ??= _inner.Stream;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush() => Inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => Inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Inner.Write(buffer);
        Counted(buffer.Length);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Counted(buffer.Length);
        return Inner.WriteAsync(buffer, cancellationToken);
    }

    /// <summary>Each non-empty write through the stream is one chunk when the response is chunked.</summary>
    private void Counted(int n)
    {
        if (n > 0)
        {
            _body += n;
            Chunk(n);
        }
    }

    private sealed class CountingPipeWriter : PipeWriter
    {
        private readonly RequestCounters _owner;
        private readonly PipeWriter _inner;

        public CountingPipeWriter(RequestCounters owner, PipeWriter inner)
        {
            _owner = owner;
            _inner = inner;
        }

        public override void Advance(int bytes)
        {
            _inner.Advance(bytes);
            _owner._body += bytes;
            _owner._pendingChunk += bytes;
        }

        public override void CancelPendingFlush() => _inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => _inner.Complete(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            _owner.FlushPendingChunk();
            return _inner.FlushAsync(cancellationToken);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => _inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => _inner.GetSpan(sizeHint);

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            _owner.FlushPendingChunk();
            _owner.Counted(source.Length);
            return _inner.WriteAsync(source, cancellationToken);
        }

        public override bool CanGetUnflushedBytes => _inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => _inner.UnflushedBytes;
    }

    private sealed class CountingRequestBody : Stream
    {
        private readonly Stream _inner;

        public CountingRequestBody(Stream inner)
        {
            _inner = inner;
        }

        public long BytesRead { get; private set; }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => Counted(_inner.Read(buffer, offset, count));

        public override int Read(Span<byte> buffer) => Counted(_inner.Read(buffer));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Counted(await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        private int Counted(int n)
        {
            BytesRead += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
