using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portico.ClientSide;
using Portico.Pipeline;
using Portico.Upstreams;
using Portico.Upstreams.Transport;

namespace Portico.Proxy;

/// <summary>
/// nginx's processing of an upstream response head for one attempt (ngx_http_upstream_process_header,
/// test_next, intercept_errors, process_headers): next upstream on a status, proxy_intercept_errors,
/// X-Accel-*, proxy_hide_header / proxy_pass_header, proxy_redirect, proxy_cookie_*, then the header filters
/// and the body sink (buffered or direct).
/// </summary>
internal sealed class ProxyResponse : IUpstreamResponseHandler, IDirectBodySink
{
    /// <summary>Headers nginx copies to the response even when X-Accel-Redirect replaces it.</summary>
    private static readonly HashSet<string> RedirectKept = new(StringComparer.OrdinalIgnoreCase)
    {
        "Content-Type", "Set-Cookie", "Content-Disposition", "Cache-Control", "Expires", "Accept-Ranges",
    };

    private RequestContext _r;
    private ProxyLocation _loc;
    private UpstreamStates _states;
    private PeerIterator _iterator;
    private string _method;
    private bool _streamedBody;
    private IHttpResponseBodyFeature? _originalBody;
    private SinkFeature? _sink;
    private PipeWriter? _directWriter;

    // The buffer (and its body feature) of the response this object handled before, drained: used again.
    private ResponseBuffer? _spareBuffer;
    private SinkFeature? _spareSink;

    public ProxyResponse(RequestContext r, ProxyLocation loc, UpstreamStates states, PeerIterator iterator, string method, bool streamedBody)
    {
        Begin(r, loc, states, iterator, method, streamedBody);
    }

    /// <summary>Makes an object that handled an earlier attempt (completely) handle a new one, as a new object would.</summary>
    [MemberNotNull(nameof(_r), nameof(_loc), nameof(_states), nameof(_iterator), nameof(_method))]
    public ProxyResponse Begin(RequestContext r, ProxyLocation loc, UpstreamStates states, PeerIterator iterator, string method, bool streamedBody)
    {
        if (Buffer is { } buffer)
        {
            _spareBuffer = buffer;
            _spareSink = _sink;
        }

        _r = r;
        _loc = loc;
        _states = states;
        _iterator = iterator;
        _method = method;
        _streamedBody = streamedBody;
        _originalBody = null;
        _sink = null;
        _directWriter = null;
        HeadProcessed = false;
        NextFailure = null;
        InterceptFlow = null;
        AccelRedirect = null;
        Buffer = null;
        return this;
    }

    /// <summary>The head was turned into the client's response (headers may be on the wire).</summary>
    public bool HeadProcessed { get; private set; }

    /// <summary>A status proxy_next_upstream names: the body was discarded to try the next peer.</summary>
    public UpstreamFailure? NextFailure { get; private set; }

    /// <summary>proxy_intercept_errors handed the status to error_page: what the pipeline does next.</summary>
    public Flow? InterceptFlow { get; private set; }

    /// <summary>X-Accel-Redirect's target.</summary>
    public string? AccelRedirect { get; private set; }

    /// <summary>The response buffer when proxy_buffering is on.</summary>
    public ResponseBuffer? Buffer { get; private set; }

    public ValueTask<ResponseDisposition> OnResponseHeadAsync(UpstreamResponseHead head)
    {
        var r = _r;
        var loc = _loc;
        _states.ResponseHeaders = head.Headers;
        var status = head.Status;
        if (_states.Attempts.Count > 0)
        {
            // $upstream_status is known from the response head on (add_header and logs read it).
            _states.Attempts[^1].Status = status;
        }

        var response = r.Http.Response;

        if (status >= 300)
        {
            // ngx_http_upstream_test_next.
            var ft = UpstreamFailures.ForStatus(status);
            if (ft != UpstreamFailure.None && _iterator.Remaining > 0)
            {
                var mask = UpstreamFailures.IsNonIdempotent(_method) ? ft | UpstreamFailure.NonIdempotent : ft;
                if (UpstreamFailures.AllowsNext(loc.NextUpstream, mask) && !_streamedBody)
                {
                    NextFailure = ft;
                    return ValueTask.FromResult(ResponseDisposition.Discard);
                }
            }

            // ngx_http_upstream_intercept_errors: only statuses an error_page of the location names; the
            // pipeline then applies it (or nginx's own page when an error_page was used already).
            if (loc.InterceptErrors && r.Location.ErrorPages is { } pages && pages.Has(status))
            {
                if (status == 401)
                {
                    for (var i = 0; i < head.Headers.Count; i++)
                    {
                        var (name, value) = head.Headers[i];
                        if (name.Equals("WWW-Authenticate", StringComparison.OrdinalIgnoreCase))
                        {
                            response.Headers.Append(name, value);
                        }
                    }
                }

                InterceptFlow = r.Finish(status);
                return ValueTask.FromResult(ResponseDisposition.Discard);
            }
        }

        // ngx_http_upstream_process_headers.
        if ((loc.Ignore & IgnoredHeaders.XAccelRedirect) == 0 && Find(head.Headers, "X-Accel-Redirect") is { Length: > 0 } redirect)
        {
            for (var j = 0; j < head.Headers.Count; j++)
            {
                var (name, value) = head.Headers[j];
                if (RedirectKept.Contains(name))
                {
                    Copy(name, value);
                }
            }

            AccelRedirect = redirect;
            return ValueTask.FromResult(ResponseDisposition.Discard);
        }

        var buffering = loc.Buffering;
        long clientRate = 0;
        for (var k = 0; k < head.Headers.Count; k++)
        {
            var (name, value) = head.Headers[k];
            if (name.Equals("X-Accel-Buffering", StringComparison.OrdinalIgnoreCase) && (loc.Ignore & IgnoredHeaders.XAccelBuffering) == 0)
            {
                if (value.Equals("no", StringComparison.OrdinalIgnoreCase))
                {
                    buffering = false;
                }
                else if (value.Equals("yes", StringComparison.OrdinalIgnoreCase))
                {
                    buffering = true;
                }
            }
            else if (name.Equals("X-Accel-Limit-Rate", StringComparison.OrdinalIgnoreCase) && (loc.Ignore & IgnoredHeaders.XAccelLimitRate) == 0
                && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var rate))
            {
                clientRate = rate;
            }

            if (loc.Hidden.Contains(name) || IsHopByHop(name))
            {
                continue;
            }

            if (status is 204 or 101 && name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            Copy(name, value);
        }

        r.Status = status;
        if (status == 101)
        {
            // An upgraded connection is not kept alive in HTTP terms; nginx sends "Connection: upgrade".
            r.CloseConnection = false;
        }

        HeadProcessed = true;
        ResponseStart.Apply(r);

        if (buffering && status != 101 && !HttpMethods.IsHead(_method) && status is not (204 or 304))
        {
            var feature = r.Http.Features.GetRequiredFeature<IHttpResponseBodyFeature>();
            var upstreamRate = loc.LimitRate is { } limit && Config.Directives.ConfigValues.TryParseSize(limit.Evaluate(r), out var l) ? l : 0;
            if (_spareBuffer is { } spare)
            {
                _spareBuffer = null;
                Buffer = spare.Reset(r, feature.Stream, loc.MemoryBuffers, loc.MaxTempFileSize, loc.TempPath, upstreamRate, clientRate, loc.IgnoreClientAbort, feature);
                _sink = _spareSink!.Reset(feature, spare);
                _spareSink = null;
            }
            else
            {
                Buffer = new ResponseBuffer(r, feature.Stream, loc.MemoryBuffers, loc.MaxTempFileSize, loc.TempPath, upstreamRate, clientRate, loc.IgnoreClientAbort, feature);
                _sink = new SinkFeature(feature, Buffer);
            }

            _originalBody = feature;
            r.Http.Features.Set<IHttpResponseBodyFeature>(_sink);
        }

        return ValueTask.FromResult(ResponseDisposition.Proxy);
    }

    /// <summary>
    /// proxy_buffering off: the client connection's output memory for the transport to read the origin's bytes
    /// into, once the response has started (buffered responses lend through <see cref="ResponseBuffer"/>).
    /// </summary>
    public bool CanLend => Buffer is null && HeadProcessed && _r.Http.Response.HasStarted;

    /// <inheritdoc cref="CanLend"/>
    public Memory<byte> DirectMemory(int minimum)
    {
        if (!CanLend)
        {
            return default;
        }

        try
        {
            return (_directWriter ??= _r.Http.Features.GetRequiredFeature<IHttpResponseBodyFeature>().Writer).GetMemory(minimum);
        }
        catch (InvalidOperationException)
        {
            // The response is over on the client's side; the write path reports it.
            return default;
        }
    }

    /// <summary>Sends what the transport read into <see cref="DirectMemory"/>, flushed as a write to the body would be.</summary>
    public async ValueTask CommitDirectAsync(int count, CancellationToken cancellationToken)
    {
        var writer = _directWriter!;
        writer.Advance(count);
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Puts the client's body feature back after the exchange.</summary>
    public void RestoreSink()
    {
        if (_originalBody is not null)
        {
            _r.Http.Features.Set(_originalBody);
            _originalBody = null;
        }
    }

    public void OnTrailers(IReadOnlyList<KeyValuePair<string, string>> trailers)
    {
        _states.ResponseTrailers = trailers;
        if (!_loc.PassTrailers || trailers.Count == 0)
        {
            return;
        }

        var feature = _r.Http.Features.Get<IHttpResponseTrailersFeature>();
        if (feature?.Trailers is not { IsReadOnly: false } target)
        {
            return;
        }

        for (var i = 0; i < trailers.Count; i++)
        {
            var (name, value) = trailers[i];
            if (!_loc.Hidden.Contains(name))
            {
                target.Append(name, value);
            }
        }
    }

    private void Copy(string name, string value)
    {
        var r = _r;
        var loc = _loc;
        var headers = r.Http.Response.Headers;
        if (name.Equals("Location", StringComparison.OrdinalIgnoreCase))
        {
            var rewritten = loc.Redirects is null ? null : ProxyRewrites.Apply(r, loc.Redirects, value, 0);
            if (rewritten is null)
            {
                // Unchanged upstream redirects stay as sent, relative ones too (nginx leaves them alone).
                r.PassRawLocation = true;
                headers.Append(name, value);
            }
            else
            {
                r.PassRawLocation = false;
                headers.Append(name, rewritten);
            }

            return;
        }

        if (loc.Redirects is not null && name.Equals("Refresh", StringComparison.OrdinalIgnoreCase))
        {
            headers.Append(name, ProxyRewrites.Refresh(r, loc.Redirects, value) ?? value);
            return;
        }

        if ((loc.CookieDomains is not null || loc.CookiePaths is not null || loc.CookieFlags is not null)
            && name.Equals("Set-Cookie", StringComparison.OrdinalIgnoreCase))
        {
            headers.Append(name, ProxyRewrites.Cookie(r, loc, value) ?? value);
            return;
        }

        headers.Append(name, value);
    }

    private static bool IsHopByHop(string name) =>
        name.Equals("Connection", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Keep-Alive", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase);

    private static string? Find(IReadOnlyList<KeyValuePair<string, string>> headers, string name)
    {
        for (var i = 0; i < headers.Count; i++)
        {
            var (n, v) = headers[i];
            if (n.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return v;
            }
        }

        return null;
    }

    /// <summary>The response body feature YARP writes to while buffering: writes go to the buffer.</summary>
    private sealed class SinkFeature(IHttpResponseBodyFeature inner, ResponseBuffer buffer) : IHttpResponseBodyFeature
    {
        private PipeWriter? _writer;

        public SinkFeature Reset(IHttpResponseBodyFeature newInner, ResponseBuffer newBuffer)
        {
            inner = newInner;
            buffer = newBuffer;
            _writer = null;
            return this;
        }

        public Stream Stream => buffer;

        public PipeWriter Writer => _writer ??= PipeWriter.Create(buffer, new StreamPipeWriterOptions(leaveOpen: true));

        public void DisableBuffering()
        {
        }

        public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);

        public Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default) =>
            SendFileFallback.SendFileAsync(buffer, path, offset, count, cancellationToken);

        public Task CompleteAsync() => Task.CompletedTask;
    }
}
