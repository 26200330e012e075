using System.Buffers;
using System.Net;
using System.Text;

namespace Portico.Upstreams.Transport.Http1;

internal enum HeadParse
{
    /// <summary>More bytes are needed (no line was invalid so far).</summary>
    Incomplete,

    /// <summary>The head (or trailer section) ended with an empty line: <see cref="Http1HeadParser.Length"/> bytes.</summary>
    Complete,

    /// <summary>A line broke the rules: <see cref="Http1HeadParser.Error"/> has nginx's message.</summary>
    Invalid,
}

/// <summary>
/// A strict parser of HTTP/1.x response heads (and chunked trailer sections) working in place on the bytes
/// read from the origin. Stricter than nginx where nginx is lenient (RFC 9112): the status line is
/// <c>HTTP/1.x SP 3DIGIT [SP reason]</c>, every line ends with CRLF (no bare LF, no CR elsewhere), field
/// names are tokens followed directly by a colon, values have no control characters except HTAB, no
/// obsolete line folding. The errors are nginx's messages ("upstream sent invalid header: \"Bad\x20...\"",
/// "upstream sent no valid HTTP/1.0 header"). It parses line by line as data arrives and never re-reads a
/// line, so a slow origin costs no more than a fast one. One instance per connection, reset per head.
/// </summary>
internal sealed class Http1HeadParser
{
    private static readonly SearchValues<byte> Token =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    /// <summary>The bytes no field value or reason phrase may hold: controls other than HTAB, and DEL.</summary>
    private static readonly SearchValues<byte> Controls = SearchValues.Create(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127]);

    private readonly bool _trailers;
    private readonly Http1ValueCache? _values;
    private int[] _lines = new int[4 * 16];
    private int _count;
    private int _position;
    private bool _statusDone;

    public Http1HeadParser(bool trailers = false, Http1ValueCache? values = null)
    {
        _trailers = trailers;
        _values = values;
    }

    /// <summary>The status code (100-999).</summary>
    public int Status { get; private set; }

    /// <summary>The minor version of HTTP/1.x.</summary>
    public int Minor { get; private set; }

    public string? Reason { get; private set; }

    /// <summary>Bytes of the whole head including the empty line, once complete.</summary>
    public int Length { get; private set; }

    /// <summary>nginx's words for what was wrong (without "while ...").</summary>
    public string? Error { get; private set; }

    /// <summary>The fields in order, once <see cref="Finish"/> built them.</summary>
    public KeyValuePair<string, string>[] Headers { get; private set; } = [];

    /// <summary>The Content-Length value; -1 when none.</summary>
    public long ContentLength { get; private set; } = -1;

    public bool Chunked { get; private set; }

    /// <summary>"Connection: close" or an HTTP/1.0 response: the origin closes after this response.</summary>
    public bool ConnectionClose { get; private set; }

    public Version Version => Minor == 0 ? HttpVersion.Version10 : HttpVersion.Version11;

    public int FieldCount => _count;

    public void Reset()
    {
        _count = 0;
        _position = 0;
        _statusDone = false;
        Status = 0;
        Minor = 0;
        Reason = null;
        Length = 0;
        Error = null;
        Headers = [];
        ContentLength = -1;
        Chunked = false;
        ConnectionClose = false;
    }

    /// <summary>
    /// Parses the complete lines of <paramref name="data"/> (the head from its first byte to the end of what
    /// was read) not parsed by an earlier call.
    /// </summary>
    public HeadParse Parse(ReadOnlySpan<byte> data)
    {
        if (!_trailers && !_statusDone && !StatusPrefixPossible(data))
        {
            return Fail(NoValidHeader);
        }

        while (_position < data.Length)
        {
            var rest = data[_position..];
            var lf = rest.IndexOf((byte)'\n');
            if (lf < 0)
            {
                return HeadParse.Incomplete;
            }

            var start = _position;
            var crlf = lf > 0 && rest[lf - 1] == (byte)'\r';
            var content = rest[..(crlf ? lf - 1 : lf)];
            _position += lf + 1;
            if (!_trailers && !_statusDone)
            {
                if (!crlf || !ParseStatusLine(content))
                {
                    return Fail(NoValidHeader);
                }

                _statusDone = true;
                continue;
            }

            if (content.IsEmpty)
            {
                if (!crlf)
                {
                    return Invalid(data, start, start + lf);
                }

                Length = _position;
                return HeadParse.Complete;
            }

            var bad = ParseField(content, start);
            if (bad >= 0)
            {
                return Invalid(data, start, bad);
            }

            if (!crlf)
            {
                return Invalid(data, start, start + lf);
            }
        }

        return HeadParse.Incomplete;
    }

    private const string NoValidHeader = "upstream sent no valid HTTP/1.0 header";

    private static ReadOnlySpan<byte> StatusPrefix => "HTTP/1."u8;

    private static bool StatusPrefixPossible(ReadOnlySpan<byte> data)
    {
        var n = Math.Min(data.Length, StatusPrefix.Length);
        return data[..n].SequenceEqual(StatusPrefix[..n]);
    }

    /// <summary>HTTP/1.x SP 3DIGIT [SP reason-phrase], without the CRLF.</summary>
    private bool ParseStatusLine(ReadOnlySpan<byte> line)
    {
        if (line.Length < 12 || !line.StartsWith(StatusPrefix) || !IsDigit(line[7]) || line[8] != (byte)' '
            || !IsDigit(line[9]) || !IsDigit(line[10]) || !IsDigit(line[11]))
        {
            return false;
        }

        var status = ((line[9] - '0') * 100) + ((line[10] - '0') * 10) + (line[11] - '0');
        if (status < 100)
        {
            return false;
        }

        string? reason = null;
        if (line.Length > 12)
        {
            if (line[12] != (byte)' ')
            {
                return false;
            }

            var text = line[13..];
            if (!IsFieldText(text, out _))
            {
                return false;
            }

            reason = text.SequenceEqual("OK"u8) ? "OK" : Http1Strings.Latin1(text);
        }

        Minor = line[7] - '0';
        Status = status;
        Reason = reason;
        return true;
    }

    /// <summary>Records one field line; returns the offset of the first invalid byte from the data start, or -1.</summary>
    private int ParseField(ReadOnlySpan<byte> line, int start)
    {
        var name = line.IndexOfAnyExcept(Token);
        if (name <= 0 || line[name] != (byte)':')
        {
            return start + (name < 0 ? line.Length : Math.Max(name, 0));
        }

        var v = name + 1;
        while (v < line.Length && line[v] is (byte)' ' or (byte)'\t')
        {
            v++;
        }

        var value = line[v..];
        if (!IsFieldText(value, out var bad))
        {
            return start + v + bad;
        }

        var end = value.Length;
        while (end > 0 && value[end - 1] is (byte)' ' or (byte)'\t')
        {
            end--;
        }

        if (_lines.Length < (_count + 1) * 4)
        {
            Array.Resize(ref _lines, _lines.Length * 2);
        }

        var i = _count * 4;
        _lines[i] = start;
        _lines[i + 1] = start + name;
        _lines[i + 2] = start + v;
        _lines[i + 3] = start + v + end;
        _count++;
        return -1;
    }

    /// <summary>field-vchar / obs-text / SP / HTAB; the position of the first other byte (a vectorized search).</summary>
    private static bool IsFieldText(ReadOnlySpan<byte> text, out int bad)
    {
        bad = text.IndexOfAny(Controls);
        return bad < 0;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private HeadParse Fail(string error)
    {
        Error = error;
        return HeadParse.Invalid;
    }

    /// <summary>nginx: "upstream sent invalid header: \"%*s\\x%02xd...\"": the line up to the bad byte, then the byte in hex.</summary>
    private HeadParse Invalid(ReadOnlySpan<byte> data, int lineStart, int bad)
    {
        var sb = new StringBuilder(_trailers ? "upstream sent invalid trailer: \"" : "upstream sent invalid header: \"");
        sb.Append(Http1Strings.Latin1(data[lineStart..bad]));
        sb.Append("\\x").Append(data[bad].ToString("x2", System.Globalization.CultureInfo.InvariantCulture)).Append("...\"");
        return Fail(sb.ToString());
    }

    /// <summary>
    /// After <see cref="HeadParse.Complete"/>: builds <see cref="Headers"/> and applies nginx's checks of the
    /// framing fields (duplicate or invalid Content-Length, Transfer-Encoding other than chunked, both at
    /// once). False with <see cref="Error"/> set when the head must be rejected.
    /// </summary>
    public bool Finish(ReadOnlySpan<byte> data)
    {
        var headers = _count == 0 ? [] : new KeyValuePair<string, string>[_count];
        var contentLength = -1;
        var transferEncoding = -1;
        ConnectionClose = !_trailers && Minor == 0;
        for (var f = 0; f < _count; f++)
        {
            var i = f * 4;
            var nameSpan = data[_lines[i].._lines[i + 1]];
            var valueSpan = data[_lines[i + 2].._lines[i + 3]];
            var name = Http1Strings.Name(nameSpan, out var id);
            var value = _values is not null && id >= 0 ? _values.Get(id, valueSpan) : Http1Strings.Latin1(valueSpan);
            headers[f] = new KeyValuePair<string, string>(name, value);
            if (_trailers)
            {
                continue;
            }

            if (Ascii.EqualsIgnoreCase(nameSpan, "Content-Length"u8))
            {
                if (contentLength >= 0)
                {
                    return Reject(Duplicate(headers[contentLength], headers[f]));
                }

                if (transferEncoding >= 0)
                {
                    return Reject("upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time");
                }

                contentLength = f;
                if (!TryParseLength(valueSpan, out var length))
                {
                    return Reject($"upstream sent invalid \"Content-Length\" header: \"{name}: {value}\"");
                }

                ContentLength = length;
            }
            else if (Ascii.EqualsIgnoreCase(nameSpan, "Transfer-Encoding"u8))
            {
                if (transferEncoding >= 0)
                {
                    return Reject(Duplicate(headers[transferEncoding], headers[f]));
                }

                if (contentLength >= 0)
                {
                    return Reject("upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time");
                }

                transferEncoding = f;
                if (!Ascii.EqualsIgnoreCase(valueSpan, "chunked"u8))
                {
                    return Reject($"upstream sent unknown \"Transfer-Encoding\": \"{value}\"");
                }

                Chunked = true;
            }
            else if (Ascii.EqualsIgnoreCase(nameSpan, "Connection"u8) && ContainsClose(valueSpan))
            {
                ConnectionClose = true;
            }
        }

        if (Chunked)
        {
            ContentLength = -1;
        }

        Headers = headers;
        if (!_trailers && Minor == 0 && Status == 103)
        {
            return Reject("upstream sent HTTP/1.0 response with early hints");
        }

        return true;
    }

    private bool Reject(string error)
    {
        Error = error;
        return false;
    }

    private static string Duplicate(KeyValuePair<string, string> first, KeyValuePair<string, string> second) =>
        $"upstream sent duplicate header line: \"{second.Key}: {second.Value}\", previous value: \"{first.Key}: {first.Value}\"";

    /// <summary>ngx_atoof: one or more digits, nothing else, no overflow.</summary>
    public static bool TryParseLength(ReadOnlySpan<byte> value, out long length)
    {
        length = 0;
        if (value.IsEmpty)
        {
            return false;
        }

        foreach (var b in value)
        {
            if (!IsDigit(b) || length > (long.MaxValue - 9) / 10)
            {
                return false;
            }

            length = (length * 10) + (b - '0');
        }

        return true;
    }

    /// <summary>nginx looks for "close" anywhere in the Connection value (ngx_strcasestrn).</summary>
    private static bool ContainsClose(ReadOnlySpan<byte> value)
    {
        for (var i = 0; i + 5 <= value.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(value.Slice(i, 5), "close"u8))
            {
                return true;
            }
        }

        return false;
    }
}
