using System.Text;

namespace Portico.Variables;

/// <summary>Which characters <see cref="UriEscape.Escape"/> encodes (nginx's NGX_ESCAPE_* tables).</summary>
public enum UriEscapeKind
{
    /// <summary>NGX_ESCAPE_ARGS: controls, space, '"', '#', '%', '&amp;', '+', ';', '&lt;', '&gt;', '?', '\', '^', '`', '{', '|', '}', DEL and non-ASCII.</summary>
    Args,

    /// <summary>NGX_ESCAPE_REFRESH: controls, space, '"', '\'', '&lt;', '&gt;', '\', '^', '`', '{', '|', DEL and non-ASCII (the MSIE refresh page).</summary>
    Refresh,
}

/// <summary>nginx's ngx_escape_uri and ngx_unescape_uri (NGX_UNESCAPE_REDIRECT), byte for byte on UTF-8.</summary>
public static class UriEscape
{
    // Bit n of word n/32 set: byte n is escaped (the tables of ngx_string.c).
    private static readonly uint[] ArgsTable =
    [
        0xffffffff, 0xd800086d, 0x50000000, 0xb8000001,
        0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
    ];

    private static readonly uint[] RefreshTable =
    [
        0xffffffff, 0x50000085, 0x50000000, 0xd8000001,
        0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
    ];

    private const string Hex = "0123456789ABCDEF";

    /// <summary>True when a byte is escaped by the given table.</summary>
    public static bool IsEscaped(byte b, UriEscapeKind kind)
    {
        var table = kind == UriEscapeKind.Args ? ArgsTable : RefreshTable;
        return (table[b >> 5] & (1u << (b & 0x1f))) != 0;
    }

    /// <summary>Percent-encodes the UTF-8 bytes of <paramref name="value"/> that the table marks; the string itself when none is.</summary>
    public static string Escape(string value, UriEscapeKind kind)
    {
        var needs = false;
        foreach (var c in value)
        {
            if (c >= 0x80 || IsEscaped((byte)c, kind))
            {
                needs = true;
                break;
            }
        }

        if (!needs)
        {
            return value;
        }

        var bytes = Encoding.UTF8.GetBytes(value);
        var sb = new StringBuilder(bytes.Length + 16);
        foreach (var b in bytes)
        {
            if (IsEscaped(b, kind))
            {
                sb.Append('%').Append(Hex[b >> 4]).Append(Hex[b & 0xf]);
            }
            else
            {
                sb.Append((char)b);
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// ngx_unescape_uri with NGX_UNESCAPE_REDIRECT, as nginx applies it to a rewritten redirect: "%XX" is
    /// decoded only when the byte is printable ASCII above '%', decoding stops at the first '?' (literal or
    /// "%3F"), a malformed escape loses its '%' as nginx's state machine does.
    /// </summary>
    public static string UnescapeRedirect(string value)
    {
        if (value.IndexOf('%', StringComparison.Ordinal) < 0)
        {
            return value;
        }

        var src = Encoding.UTF8.GetBytes(value);
        var dst = new List<byte>(src.Length);
        var state = 0;
        byte decoded = 0;
        var i = 0;
        while (i < src.Length)
        {
            var ch = src[i++];
            switch (state)
            {
                case 0:
                    if (ch == '?')
                    {
                        dst.Add(ch);
                        goto Done;
                    }

                    if (ch == '%')
                    {
                        state = 1;
                        break;
                    }

                    dst.Add(ch);
                    break;

                case 1:
                    if (ch is >= (byte)'0' and <= (byte)'9')
                    {
                        decoded = (byte)(ch - '0');
                        state = 2;
                        break;
                    }

                    var lower = (byte)(ch | 0x20);
                    if (lower is >= (byte)'a' and <= (byte)'f')
                    {
                        decoded = (byte)(lower - 'a' + 10);
                        state = 2;
                        break;
                    }

                    // The invalid quoted character: the '%' is dropped.
                    state = 0;
                    dst.Add(ch);
                    break;

                default:
                    state = 0;
                    if (ch is >= (byte)'0' and <= (byte)'9')
                    {
                        var b = (byte)((decoded << 4) + (ch - '0'));
                        if (b > '%' && b < 0x7f)
                        {
                            dst.Add(b);
                        }
                        else
                        {
                            dst.Add((byte)'%');
                            dst.Add(src[i - 2]);
                            dst.Add(src[i - 1]);
                        }

                        break;
                    }

                    var l2 = (byte)(ch | 0x20);
                    if (l2 is >= (byte)'a' and <= (byte)'f')
                    {
                        var b = (byte)((decoded << 4) + (l2 - 'a') + 10);
                        if (b == '?')
                        {
                            dst.Add(b);
                            goto Done;
                        }

                        if (b > '%' && b < 0x7f)
                        {
                            dst.Add(b);
                        }
                        else
                        {
                            dst.Add((byte)'%');
                            dst.Add(src[i - 2]);
                            dst.Add(src[i - 1]);
                        }

                        break;
                    }

                    // The invalid quoted character: the escape is dropped.
                    break;
            }
        }

    Done:
        for (; i < src.Length; i++)
        {
            dst.Add(src[i]);
        }

        return Encoding.UTF8.GetString([.. dst]);
    }

    /// <summary>Percent-encodes characters a header value cannot carry (non-ASCII, controls) as their UTF-8 bytes.</summary>
    public static string ForHeader(string value)
    {
        foreach (var c in value)
        {
            if (c >= 0x7f || c < 0x20)
            {
                var sb = new StringBuilder(value.Length + 16);
                foreach (var b in Encoding.UTF8.GetBytes(value))
                {
                    if (b >= 0x7f || b < 0x20)
                    {
                        sb.Append('%').Append(Hex[b >> 4]).Append(Hex[b & 0xf]);
                    }
                    else
                    {
                        sb.Append((char)b);
                    }
                }

                return sb.ToString();
            }
        }

        return value;
    }
}
