using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Portico.Config.Directives;
using Portico.Config.Syntax;
using Portico.Pipeline;

namespace Portico.ClientSide;

/// <summary>
/// client_header_buffer_size and large_client_header_buffers (ngx_http_core_module).
/// <para>
/// nginx reads a request head into a buffer of client_header_buffer_size; a request line or header line that
/// does not fit moves into one of "number" large buffers of "size" bytes, and a line longer than one large
/// buffer, or a head that needs more buffers, is refused: 414 "Request-URI Too Large" for the request line,
/// 400 "Request Header Or Cookie Too Large" (nginx's 494) for a header. Over HTTP/2 a header field longer than
/// "size", or a header list longer than number × size, ends the connection.
/// </para>
/// <para>
/// Kestrel parses the head before Portico sees it, so its limits are set as a backstop above nginx's (twice
/// the limit, at least 16k more): what lies between nginx's limit and the backstop gets nginx's page from the
/// check below; what is larger still is refused by Kestrel itself (414 or 431 without a body). HTTP/2 header
/// fields are limited exactly (Kestrel's MaxRequestHeaderFieldSize = size).
/// </para>
/// </summary>
public static class HeaderBuffers
{
    /// <summary>nginx's default client_header_buffer_size.</summary>
    public const long DefaultHeaderBufferSize = 1024;

    /// <summary>nginx's default large_client_header_buffers: 4 8k.</summary>
    public static readonly (int Number, long Size) DefaultLargeBuffers = (4, 8192);

    /// <summary>nginx's connection_pool_size on 64-bit platforms, the least a large buffer may be.</summary>
    public const long ConnectionPoolSize = 512;

    /// <summary>ngx_http_core_module's NGX_MAX_ERROR_STR - 300: how much of a long header line the log shows.</summary>
    private const int LoggedLine = 2048 - 300;

    /// <summary>large_client_header_buffers number size (ngx_conf_set_bufs_slot, then the merge check).</summary>
    public static void LargeClientHeaderBuffers(DirectiveCall c)
    {
        if (!ConfigValues.TryParseNumber(c[0], out var n) || n == 0 || n > int.MaxValue
            || !ConfigValues.TryParseSize(c[1], out var size) || size == 0)
        {
            throw c.Error("invalid value");
        }

        if (size < ConnectionPoolSize)
        {
            throw c.Emerg("the \"large_client_header_buffers\" size must be equal to or greater than \"connection_pool_size\"");
        }

        c.Loc<ClientServerSettings>().LargeHeaderBuffers = ((int)n, size);
    }

    /// <summary>Kestrel's limits for a socket, from its default server (nginx reads the head before it knows the server).</summary>
    public static void ApplyLimits(KestrelServerOptions options, ClientServerSettings server)
    {
        var (number, size) = server.LargeHeaderBuffers ?? DefaultLargeBuffers;
        var first = server.HeaderBufferSize ?? DefaultHeaderBufferSize;
        var limits = options.Limits;
        limits.MaxRequestLineSize = Backstop(Math.Max(size, first));
        limits.MaxRequestHeadersTotalSize = Backstop(Math.Max(number * size, first));
        limits.Http2.MaxRequestHeaderFieldSize = (int)Math.Clamp(size, 1, int.MaxValue);
    }

    private static int Backstop(long limit) => (int)Math.Min(int.MaxValue / 2, limit + Math.Max(limit, 16 * 1024));

    /// <summary>Why a request head was refused, in nginx's words, and the status nginx finalizes with.</summary>
    public readonly record struct Refusal(int Status, string Message);

    /// <summary>
    /// Lays the lines of an HTTP/1.x request head into nginx's buffers (ngx_http_alloc_large_header_buffer):
    /// null when it fits, else the refusal. Lines are "Name: value" with CRLF, in the order given.
    /// </summary>
    public static Refusal? LayOut(int requestLineLength, IEnumerable<KeyValuePair<string, string>> headers, long firstBuffer, int number, long size)
    {
        var layout = new Layout(firstBuffer, number, size);
        if (layout.Place(requestLineLength + 2) >= 0)
        {
            return new Refusal(414, "client sent too long URI while reading client request line");
        }

        foreach (var (name, value) in headers)
        {
            if (layout.Place(name, value) is { } refused)
            {
                return refused;
            }
        }

        return layout.End();
    }

    private static int ByteCount(string s)
    {
        foreach (var c in s)
        {
            if (c > 0x7F)
            {
                return Encoding.UTF8.GetByteCount(s);
            }
        }

        return s.Length;
    }

    /// <summary>nginx's header buffers as a request head fills them.</summary>
    private struct Layout(long first, int number, long size)
    {
        private long _capacity = first;
        private long _used;
        private int _busy;

        /// <summary>Places one line; -1 when it fits, else how many of its bytes were in the buffer nginx gave up on.</summary>
        public long Place(long length)
        {
            if (_used + length <= _capacity)
            {
                _used += length;
                return -1;
            }

            // The buffer fills while the line is read: what was read of it moves into a new large buffer.
            var partial = _capacity - _used;
            if (partial >= size || _busy >= number)
            {
                return partial;
            }

            if (length > size)
            {
                // The large buffer fills as well before the line ends.
                return size;
            }

            _busy++;
            _capacity = size;
            _used = length;
            return -1;
        }

        /// <summary>Places a header line; the refusal with nginx's log text when it does not fit.</summary>
        public Refusal? Place(string name, string value)
        {
            var shown = Place(ByteCount(name) + 2 + ByteCount(value) + 2);
            if (shown < 0)
            {
                return null;
            }

            var line = name + ": " + value + "\r\n";
            var n = (int)Math.Min(Math.Min(shown, LoggedLine), line.Length);
            return new Refusal(494, "client sent too long header line: \"" + line[..n] + "...\" while reading client request headers");
        }

        /// <summary>The empty line that ends the head.</summary>
        public Refusal? End() => Place(2) >= 0 ? new Refusal(494, "client sent too large request while reading client request headers") : null;
    }

    /// <summary>The post-read check of a server: nginx's 414 and 494 for heads Kestrel let through.</summary>
    internal sealed class Check : PhaseHandler
    {
        private readonly long _first;
        private readonly int _number;
        private readonly long _size;

        public Check(ClientServerSettings s)
        {
            _first = s.HeaderBufferSize ?? DefaultHeaderBufferSize;
            (_number, _size) = s.LargeHeaderBuffers ?? DefaultLargeBuffers;
        }

        public override ValueTask<Flow> InvokeAsync(RequestContext r)
        {
            var request = r.Http.Request;
            if (r.Protocol.StartsWith("HTTP/1", StringComparison.Ordinal))
            {
                // A head that fits in client_header_buffer_size never needs a large buffer: nothing to check.
                if (r.Connection.LogState?.Input is { HeadLength: > 0 } input && input.HeadLength <= _first)
                {
                    return ValueTask.FromResult(Flow.Continue);
                }

                var refusal = HeadRefusal(r);
                if (refusal is { } refused)
                {
                    r.LogError(LogLevel.Info, refused.Message);
                    r.CloseConnection = true;
                    return ValueTask.FromResult(r.Finish(refused.Status));
                }

                return ValueTask.FromResult(Flow.Continue);
            }

            // HTTP/2: the header list (pseudo-headers included, name and value of each field) within number × size.
            long total = 7 + r.Method.Length + 7 + request.Scheme.Length + 5 + r.RawTarget.Length;
            foreach (var (name, values) in request.Headers)
            {
                foreach (var value in values)
                {
                    total += name.Length + (value?.Length ?? 0);
                }
            }

            if (total > (long)_number * _size)
            {
                // nginx ends the connection (ENHANCE_YOUR_CALM); here the stream is reset.
                r.LogError(LogLevel.Info, "client sent too large header");
                return ValueTask.FromResult(r.Finish(444));
            }

            return ValueTask.FromResult(Flow.Continue);
        }

        private Refusal? HeadRefusal(RequestContext r)
        {
            var layout = new Layout(_first, _number, _size);
            var line = r.OriginalMethod.Length + 1 + ByteCount(r.RawTarget) + 1 + r.Protocol.Length;
            if (layout.Place(line + 2) >= 0)
            {
                return new Refusal(414, "client sent too long URI while reading client request line");
            }

            foreach (var (name, values) in r.Http.Request.Headers)
            {
                foreach (var value in values)
                {
                    if (layout.Place(name, value ?? string.Empty) is { } refused)
                    {
                        return refused;
                    }
                }
            }

            return layout.End();
        }
    }
}
