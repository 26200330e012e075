using System.Text;

namespace Portico.Static;

/// <summary>nginx's byte escapes: ngx_escape_uri (URI and URI-component tables), ngx_escape_html, ngx_escape_json.</summary>
public static class NginxEscape
{
    // Bit sets of bytes 0x00-0x7F to escape; every byte >= 0x80 is escaped in both tables.
    private static readonly uint[] UriTable = [0xffffffff, 0xd000002d, 0x50000000, 0xb8000001];
    private static readonly uint[] ComponentTable = [0xffffffff, 0xfc009fff, 0x78000001, 0xb8000001];

    private const string Hex = "0123456789ABCDEF";

    private static bool Escaped(uint[] table, byte b) => b >= 0x80 || (table[b >> 5] & (1u << (b & 0x1f))) != 0;

    /// <summary>NGX_ESCAPE_URI of a string's UTF-8 bytes (the form used in redirects).</summary>
    public static string Uri(string s) => Escape(s, UriTable);

    /// <summary>NGX_ESCAPE_URI_COMPONENT (autoindex links).</summary>
    public static string UriComponent(string s) => Escape(s, ComponentTable);

    /// <summary>True when <see cref="Uri"/> would change the string.</summary>
    public static bool NeedsUriEscape(string s)
    {
        foreach (var c in s)
        {
            if (c >= 0x80 || Escaped(UriTable, (byte)c))
            {
                return true;
            }
        }

        return false;
    }

    private static string Escape(string s, uint[] table)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        var needs = false;
        foreach (var b in bytes)
        {
            if (Escaped(table, b))
            {
                needs = true;
                break;
            }
        }

        if (!needs)
        {
            return s;
        }

        var sb = new StringBuilder(bytes.Length + 16);
        foreach (var b in bytes)
        {
            if (Escaped(table, b))
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

    /// <summary>Appends NGX_ESCAPE_URI_COMPONENT of bytes.</summary>
    public static void AppendUriComponent(List<byte> into, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            if (Escaped(ComponentTable, b))
            {
                into.Add((byte)'%');
                into.Add((byte)Hex[b >> 4]);
                into.Add((byte)Hex[b & 0xf]);
            }
            else
            {
                into.Add(b);
            }
        }
    }

    /// <summary>Appends ngx_escape_html of bytes (&lt; &gt; &amp; &quot;).</summary>
    public static void AppendHtml(List<byte> into, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            switch (b)
            {
                case (byte)'<':
                    Append(into, "&lt;");
                    break;
                case (byte)'>':
                    Append(into, "&gt;");
                    break;
                case (byte)'&':
                    Append(into, "&amp;");
                    break;
                case (byte)'"':
                    Append(into, "&quot;");
                    break;
                default:
                    into.Add(b);
                    break;
            }
        }
    }

    /// <summary>The number of bytes ngx_escape_html changes (0 when none need escaping).</summary>
    public static int HtmlEscapes(ReadOnlySpan<byte> bytes)
    {
        var n = 0;
        foreach (var b in bytes)
        {
            if (b is (byte)'<' or (byte)'>' or (byte)'&' or (byte)'"')
            {
                n++;
            }
        }

        return n;
    }

    /// <summary>Appends ngx_escape_json of bytes.</summary>
    public static void AppendJson(List<byte> into, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            if (b > 0x1f)
            {
                if (b is (byte)'\\' or (byte)'"')
                {
                    into.Add((byte)'\\');
                }

                into.Add(b);
                continue;
            }

            into.Add((byte)'\\');
            switch (b)
            {
                case (byte)'\n':
                    into.Add((byte)'n');
                    break;
                case (byte)'\r':
                    into.Add((byte)'r');
                    break;
                case (byte)'\t':
                    into.Add((byte)'t');
                    break;
                case (byte)'\b':
                    into.Add((byte)'b');
                    break;
                case (byte)'\f':
                    into.Add((byte)'f');
                    break;
                default:
                    Append(into, "u00");
                    into.Add((byte)('0' + (b >> 4)));
                    var low = b & 0xf;
                    into.Add((byte)(low < 10 ? '0' + low : 'A' + low - 10));
                    break;
            }
        }
    }

    public static void Append(List<byte> into, string ascii)
    {
        foreach (var c in ascii)
        {
            into.Add((byte)c);
        }
    }
}
