namespace Portico.Upstreams.Transport.Http1;

internal enum ChunkStep
{
    /// <summary>A piece of chunk data is at the returned offset.</summary>
    Data,

    /// <summary>Everything given was consumed or is an incomplete line: read more.</summary>
    NeedMore,

    /// <summary>The last chunk ("0" CRLF) was read: the trailer section (possibly empty) follows.</summary>
    Trailers,

    /// <summary>nginx's "upstream sent invalid chunked response".</summary>
    Invalid,
}

/// <summary>
/// Decodes a chunked response body in place, strictly as ngx_http_parse_chunked does (every line ends
/// with CRLF, hex sizes, extensions skipped) and a little stricter (no control characters in extensions,
/// a size line of at most <see cref="MaxLine"/> bytes).
/// </summary>
internal sealed class Http1ChunkedDecoder
{
    /// <summary>The longest chunk-size line accepted (size and extensions).</summary>
    public const int MaxLine = 4096;

    private const int SizeLine = 0;
    private const int InData = 1;
    private const int AfterData = 2;
    private const int Done = 3;

    private int _state;
    private long _remaining;

    public void Reset()
    {
        _state = SizeLine;
        _remaining = 0;
    }

    /// <summary>
    /// Advances over <paramref name="input"/>. <paramref name="consumed"/> bytes are done with (framing and
    /// the data returned); on <see cref="ChunkStep.Data"/> the data is <c>input[offset..(offset+length)]</c>.
    /// </summary>
    public ChunkStep Next(ReadOnlySpan<byte> input, out int consumed, out int offset, out int length)
    {
        var pos = 0;
        offset = 0;
        length = 0;
        while (true)
        {
            switch (_state)
            {
                case SizeLine:
                {
                    var rest = input[pos..];
                    var lf = rest.IndexOf((byte)'\n');
                    if (lf < 0)
                    {
                        consumed = pos;
                        return rest.Length > MaxLine ? ChunkStep.Invalid : ChunkStep.NeedMore;
                    }

                    if (lf == 0 || rest[lf - 1] != (byte)'\r' || !TryParseSize(rest[..(lf - 1)], out var size))
                    {
                        consumed = pos;
                        return ChunkStep.Invalid;
                    }

                    pos += lf + 1;
                    if (size == 0)
                    {
                        _state = Done;
                        consumed = pos;
                        return ChunkStep.Trailers;
                    }

                    _remaining = size;
                    _state = InData;
                    break;
                }

                case InData:
                {
                    var available = input.Length - pos;
                    if (available == 0)
                    {
                        consumed = pos;
                        return ChunkStep.NeedMore;
                    }

                    var take = (int)Math.Min(_remaining, available);
                    offset = pos;
                    length = take;
                    pos += take;
                    _remaining -= take;
                    if (_remaining == 0)
                    {
                        _state = AfterData;
                    }

                    consumed = pos;
                    return ChunkStep.Data;
                }

                case AfterData:
                {
                    var available = input.Length - pos;
                    if (available < 2)
                    {
                        consumed = pos;
                        return available == 1 && input[pos] != (byte)'\r' ? ChunkStep.Invalid : ChunkStep.NeedMore;
                    }

                    if (input[pos] != (byte)'\r' || input[pos + 1] != (byte)'\n')
                    {
                        consumed = pos;
                        return ChunkStep.Invalid;
                    }

                    pos += 2;
                    _state = SizeLine;
                    break;
                }

                default:
                    consumed = pos;
                    return ChunkStep.Trailers;
            }
        }
    }

    /// <summary>1*HEXDIG, then optional whitespace and ";" extensions (no control characters but HTAB).</summary>
    private static bool TryParseSize(ReadOnlySpan<byte> line, out long size)
    {
        size = 0;
        var i = 0;
        for (; i < line.Length; i++)
        {
            var b = line[i];
            int digit;
            if ((uint)(b - '0') <= 9)
            {
                digit = b - '0';
            }
            else if ((uint)((b | 0x20) - 'a') <= 5)
            {
                digit = (b | 0x20) - 'a' + 10;
            }
            else
            {
                break;
            }

            if (size > (long.MaxValue >> 5))
            {
                return false;
            }

            size = (size << 4) + digit;
        }

        if (i == 0)
        {
            return false;
        }

        if (i == line.Length)
        {
            return true;
        }

        if (line[i] is not ((byte)';' or (byte)' ' or (byte)'\t'))
        {
            return false;
        }

        for (; i < line.Length; i++)
        {
            var b = line[i];
            if ((b < 0x20 && b != (byte)'\t') || b == 0x7F)
            {
                return false;
            }
        }

        return true;
    }
}
