using System.Buffers;
using System.Globalization;
using System.Text;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Logging;

/// <summary>log_format's escape= parameter (nginx's NGX_HTTP_LOG_ESCAPE_*).</summary>
public enum LogEscape
{
    /// <summary>Bytes below 0x20, '"', '\', 0x7f and above as \xXX; a missing value is "-".</summary>
    Default,

    /// <summary>JSON string escaping ('"', '\', controls); a missing value is empty.</summary>
    Json,

    /// <summary>Values as they are; a missing value is empty.</summary>
    None,
}

/// <summary>One piece of a parsed log format: literal text or a $variable name.</summary>
public readonly record struct LogFormatPart(string? Literal, string? Variable);

/// <summary>
/// A log_format as written: its name, escaping and the parts of its strings, split the way nginx's
/// ngx_http_log_compile_format does at configuration time (so its errors come with the directive's position).
/// </summary>
public sealed class LogFormatSpec
{
    public const string CombinedName = "combined";

    /// <summary>nginx's predefined format.</summary>
    public const string CombinedText = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

    public LogFormatSpec(string name, LogEscape escape, IReadOnlyList<LogFormatPart> parts, string file, int line)
    {
        Name = name;
        Escape = escape;
        Parts = parts;
        File = file;
        Line = line;
    }

    public string Name { get; }
    public LogEscape Escape { get; }
    public IReadOnlyList<LogFormatPart> Parts { get; }
    public string File { get; }
    public int Line { get; }

    public static LogFormatSpec Combined { get; } = Parse(CombinedName, [CombinedText], string.Empty, 0);

    /// <summary>Parses "[escape=...] string ..." (the arguments after the name); throws nginx's [emerg].</summary>
    public static LogFormatSpec Parse(string name, IReadOnlyList<string> args, string file, int line)
    {
        var escape = LogEscape.Default;
        var start = 0;
        if (args.Count > 0 && args[0].StartsWith("escape=", StringComparison.Ordinal))
        {
            var value = args[0][7..];
            escape = value switch
            {
                "json" => LogEscape.Json,
                "none" => LogEscape.None,
                "default" => LogEscape.Default,
                _ => throw new ConfigException($"unknown log format escaping \"{value}\"", file, line),
            };
            start = 1;
        }

        var parts = new List<LogFormatPart>();
        var literal = new StringBuilder();
        for (var a = start; a < args.Count; a++)
        {
            var s = args[a];
            var i = 0;
            while (i < s.Length)
            {
                if (s[i] != '$')
                {
                    literal.Append(s[i]);
                    i++;
                    continue;
                }

                var from = i;
                if (++i == s.Length)
                {
                    throw new ConfigException($"invalid parameter \"{s[from..]}\"", file, line);
                }

                var bracket = false;
                if (s[i] == '{')
                {
                    bracket = true;
                    if (++i == s.Length)
                    {
                        throw new ConfigException($"invalid parameter \"{s[from..]}\"", file, line);
                    }
                }

                var nameStart = i;
                var nameEnd = i;
                for (; i < s.Length; i++)
                {
                    var ch = s[i];
                    if (ch == '}' && bracket)
                    {
                        nameEnd = i;
                        i++;
                        bracket = false;
                        break;
                    }

                    if (!Config.Model.ValueTemplate.IsNameChar(ch))
                    {
                        break;
                    }

                    nameEnd = i + 1;
                }

                if (bracket)
                {
                    throw new ConfigException($"the closing bracket in \"{s[nameStart..]}\" variable is missing", file, line);
                }

                if (nameEnd == nameStart)
                {
                    throw new ConfigException($"invalid parameter \"{s[from..]}\"", file, line);
                }

                if (literal.Length > 0)
                {
                    parts.Add(new LogFormatPart(literal.ToString(), null));
                    literal.Clear();
                }

                parts.Add(new LogFormatPart(null, s[nameStart..nameEnd]));
            }
        }

        if (literal.Length > 0)
        {
            parts.Add(new LogFormatPart(literal.ToString(), null));
        }

        return new LogFormatSpec(name, escape, parts, file, line);
    }
}

internal enum LogOpKind : byte
{
    Literal,
    Variable,
    Pipe,
    TimeLocal,
    TimeIso8601,
    Msec,
    RequestTime,
    Status,
    BytesSent,
    BodyBytesSent,
    RequestLength,
}

internal readonly record struct LogOp(LogOpKind Kind, byte[]? Literal, Variable? Variable);

/// <summary>
/// A log format compiled against a snapshot's variables: literal bytes, nginx's own log operations
/// ($status, $body_bytes_sent, $time_local ...) and escaped variables. Rendering writes bytes straight
/// into a pooled buffer; nothing is formatted that the format did not ask for.
/// </summary>
public sealed class CompiledLogFormat
{
    private readonly LogOp[] _ops;

    private CompiledLogFormat(string name, LogEscape escape, LogOp[] ops)
    {
        Name = name;
        Escape = escape;
        _ops = ops;
    }

    public string Name { get; }
    public LogEscape Escape { get; }

    /// <summary>Resolves the variables of a format; throws nginx's "unknown "x" variable".</summary>
    public static CompiledLogFormat Compile(LogFormatSpec spec, VariableRegistry variables)
    {
        var ops = new LogOp[spec.Parts.Count];
        for (var i = 0; i < ops.Length; i++)
        {
            var p = spec.Parts[i];
            if (p.Literal is not null)
            {
                ops[i] = new LogOp(LogOpKind.Literal, Encoding.UTF8.GetBytes(p.Literal), null);
                continue;
            }

            // nginx's log operations take precedence over variables of the same name (case-sensitive match).
            var kind = p.Variable switch
            {
                "pipe" => LogOpKind.Pipe,
                "time_local" => LogOpKind.TimeLocal,
                "time_iso8601" => LogOpKind.TimeIso8601,
                "msec" => LogOpKind.Msec,
                "request_time" => LogOpKind.RequestTime,
                "status" => LogOpKind.Status,
                "bytes_sent" => LogOpKind.BytesSent,
                "body_bytes_sent" => LogOpKind.BodyBytesSent,
                "request_length" => LogOpKind.RequestLength,
                _ => LogOpKind.Variable,
            };
            if (kind != LogOpKind.Variable)
            {
                ops[i] = new LogOp(kind, null, null);
                continue;
            }

            var name = p.Variable!.ToLowerInvariant();
            var v = variables.Find(name) ?? throw new ConfigException($"unknown \"{name}\" variable", spec.File, spec.Line);
            ops[i] = new LogOp(LogOpKind.Variable, null, v);
        }

        return new CompiledLogFormat(spec.Name, spec.Escape, ops);
    }

    /// <summary>Appends one log line (with its "\n") for a request.</summary>
    public void Render(RequestContext r, ref LogLineBuilder line)
    {
        var counters = r.Counters;
        foreach (var op in _ops)
        {
            switch (op.Kind)
            {
                case LogOpKind.Literal:
                    line.Append(op.Literal!);
                    break;
                case LogOpKind.Variable:
                    line.AppendValue(r.GetVariable(op.Variable!), Escape);
                    break;
                case LogOpKind.Pipe:
                    line.Append(counters?.Pipelined == true ? (byte)'p' : (byte)'.');
                    break;
                case LogOpKind.TimeLocal:
                    line.AppendAscii(LogTime.Local);
                    break;
                case LogOpKind.TimeIso8601:
                    line.AppendAscii(LogTime.Iso8601);
                    break;
                case LogOpKind.Msec:
                    line.AppendMilliseconds(LogTime.UnixMilliseconds);
                    break;
                case LogOpKind.RequestTime:
                    line.AppendMilliseconds(Math.Max(0, (long)(r.ElapsedSeconds * 1000)));
                    break;
                case LogOpKind.Status:
                    line.AppendStatus(LogVariables.StatusOf(r));
                    break;
                case LogOpKind.BytesSent:
                    line.AppendNumber(counters?.BytesSent ?? 0);
                    break;
                case LogOpKind.BodyBytesSent:
                    line.AppendNumber(counters?.BodyBytesSent ?? 0);
                    break;
                case LogOpKind.RequestLength:
                    line.AppendNumber(counters?.RequestLength ?? 0);
                    break;
            }
        }

        line.Append((byte)'\n');
    }
}

/// <summary>A log line being built in a pooled byte buffer; <see cref="Detach"/> hands the buffer to the writer.</summary>
public struct LogLineBuilder
{
    private static ReadOnlySpan<byte> Hex => "0123456789ABCDEF"u8;

    private byte[] _buffer;
    private int _length;

    public LogLineBuilder(int capacity)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(capacity);
        _length = 0;
    }

    public readonly int Length => _length;

    public readonly ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    /// <summary>Gives up the buffer (rented from ArrayPool.Shared) to whoever returns it.</summary>
    public (byte[] Buffer, int Length) Detach()
    {
        var result = (_buffer, _length);
        _buffer = [];
        _length = 0;
        return result;
    }

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }

    private Span<byte> Reserve(int n)
    {
        if (_length + n > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + n));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            if (_buffer.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
            }

            _buffer = bigger;
        }

        var span = _buffer.AsSpan(_length, n);
        _length += n;
        return span;
    }

    public void Append(byte b) => Reserve(1)[0] = b;

    public void Append(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Reserve(bytes.Length));

    /// <summary>Text known to be ASCII (times, numbers).</summary>
    public void AppendAscii(string s)
    {
        var span = Reserve(s.Length);
        if (Ascii.FromUtf16(s, span, out _) != OperationStatus.Done)
        {
            for (var i = 0; i < s.Length; i++)
            {
                span[i] = (byte)s[i];
            }
        }
    }

    public void AppendNumber(long n)
    {
        Span<byte> tmp = stackalloc byte[20];
        n.TryFormat(tmp, out var written, default, CultureInfo.InvariantCulture);
        Append(tmp[..written]);
    }

    /// <summary>nginx's "%03ui".</summary>
    public void AppendStatus(int status)
    {
        if ((uint)status > 999)
        {
            AppendNumber(status);
            return;
        }

        var span = Reserve(3);
        span[0] = (byte)('0' + (status / 100));
        span[1] = (byte)('0' + (status / 10 % 10));
        span[2] = (byte)('0' + (status % 10));
    }

    /// <summary>nginx's "%T.%03M": seconds and milliseconds.</summary>
    public void AppendMilliseconds(long ms)
    {
        AppendNumber(ms / 1000);
        Append((byte)'.');
        var rest = (int)(ms % 1000);
        var span = Reserve(3);
        span[0] = (byte)('0' + rest / 100);
        span[1] = (byte)('0' + rest / 10 % 10);
        span[2] = (byte)('0' + rest % 10);
    }

    /// <summary>A variable's value with the format's escaping; null is nginx's not_found.</summary>
    public void AppendValue(string? value, LogEscape escape)
    {
        if (value is null)
        {
            if (escape == LogEscape.Default)
            {
                Append((byte)'-');
            }

            return;
        }

        switch (escape)
        {
            case LogEscape.Default:
                AppendEscapedDefault(value);
                break;
            case LogEscape.Json:
                AppendEscapedJson(value);
                break;
            default:
                AppendUtf8(value);
                break;
        }
    }

    public void AppendUtf8(string value)
    {
        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        var span = Reserve(max);
        var n = Encoding.UTF8.GetBytes(value, span);
        _length -= max - n;
    }

    /// <summary>ngx_http_log_escape: controls, '"', '\', DEL and every non-ASCII byte as \xXX.</summary>
    public void AppendEscapedDefault(string value)
    {
        Span<byte> utf8 = stackalloc byte[4];
        var i = 0;
        while (i < value.Length)
        {
            // The run of characters logged as they are is found with a vectorized search and copied at once.
            var run = value.AsSpan(i).IndexOfAnyExcept(PlainLogText);
            var end = run < 0 ? value.Length : i + run;
            if (end > i)
            {
                Ascii.FromUtf16(value.AsSpan(i, end - i), Reserve(end - i), out _);
                i = end;
                if (i == value.Length)
                {
                    return;
                }
            }

            var c = value[i];
            if (c < 0x80)
            {
                // A control, '"', '\\' or DEL.
                AppendHexEscape((byte)c);
            }
            else
            {
                var n = EncodeScalar(value, ref i, utf8);
                for (var k = 0; k < n; k++)
                {
                    AppendHexEscape(utf8[k]);
                }
            }

            i++;
        }
    }

    /// <summary>Printable ASCII but '"' and '\\': what the default log escaping leaves as it is.</summary>
    private static readonly SearchValues<char> PlainLogText = SearchValues.Create(
        " !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    /// <summary>ngx_escape_json: '"' and '\' with a backslash, controls as \n \r \t \b \f or \u00XX; other bytes as they are.</summary>
    public void AppendEscapedJson(string value)
    {
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c >= 0x80)
            {
                var n = EncodeScalar(value, ref i, utf8);
                Append(utf8[..n]);
                continue;
            }

            if (c > 0x1f)
            {
                if (c is '"' or '\\')
                {
                    Append((byte)'\\');
                }

                Append((byte)c);
                continue;
            }

            var span = c switch
            {
                '\n' or '\r' or '\t' or '\b' or '\f' => Reserve(2),
                _ => Reserve(6),
            };
            span[0] = (byte)'\\';
            switch (c)
            {
                case '\n': span[1] = (byte)'n'; break;
                case '\r': span[1] = (byte)'r'; break;
                case '\t': span[1] = (byte)'t'; break;
                case '\b': span[1] = (byte)'b'; break;
                case '\f': span[1] = (byte)'f'; break;
                default:
                    span[1] = (byte)'u';
                    span[2] = (byte)'0';
                    span[3] = (byte)'0';
                    span[4] = (byte)('0' + (c >> 4));
                    span[5] = Hex[c & 0xf];
                    break;
            }
        }
    }

    private void AppendHexEscape(byte b)
    {
        var span = Reserve(4);
        span[0] = (byte)'\\';
        span[1] = (byte)'x';
        span[2] = Hex[b >> 4];
        span[3] = Hex[b & 0xf];
    }

    /// <summary>
    /// UTF-8 bytes of the scalar at <paramref name="i"/> (advancing past a surrogate pair). A lone
    /// U+DC80..U+DCFF stands for a byte that was not valid UTF-8 (see <see cref="RawText.Decode"/>).
    /// </summary>
    private static int EncodeScalar(string s, ref int i, Span<byte> dest)
    {
        if (s[i] is >= '\uDC80' and <= '\uDCFF')
        {
            dest[0] = (byte)(s[i] - 0xDC00);
            return 1;
        }

        if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            var n = Encoding.UTF8.GetBytes(s.AsSpan(i, 2), dest);
            i++;
            return n;
        }

        return Encoding.UTF8.GetBytes(s.AsSpan(i, 1), dest);
    }
}

/// <summary>Bytes received from a client as text that keeps every byte, for logs.</summary>
public static class RawText
{
    /// <summary>UTF-8 where valid; each other byte b becomes the lone surrogate U+DC00+b, which logs write back as b.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        while (!bytes.IsEmpty)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes, out var rune, out var consumed) == System.Buffers.OperationStatus.Done)
            {
                sb.Append(rune.ToString());
            }
            else
            {
                consumed = 1;
                sb.Append((char)(0xDC00 + bytes[0]));
            }

            bytes = bytes[consumed..];
        }

        return sb.ToString();
    }
}

/// <summary>nginx's cached log times: $time_local, $time_iso8601 and $msec, formatted once per second.</summary>
public static class LogTime
{
    private static Cached? s_cached;

    private sealed record Cached(long Second, string Local, string Iso8601);

    /// <summary>The clock the log times read (tests may replace it).</summary>
    public static TimeProvider Clock { get; set; } = TimeProvider.System;

    public static long UnixMilliseconds => Clock.GetUtcNow().ToUnixTimeMilliseconds();

    public static string Local => Current().Local;

    public static string Iso8601 => Current().Iso8601;

    private static Cached Current()
    {
        // The second is read from the UTC clock: the local time (a time-zone conversion) is only made when
        // the second changes.
        var clock = Clock;
        var second = clock.GetUtcNow().ToUnixTimeSeconds();
        var c = s_cached;
        if (c is not null && c.Second == second)
        {
            return c;
        }

        var now = clock.GetLocalNow();
        second = now.ToUnixTimeSeconds();
        c = new Cached(second, HttpCoreModule.FormatTimeLocal(now), now.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture));
        s_cached = c;
        return c;
    }
}
