using System.Globalization;
using System.Text;

namespace Portico.Static;

/// <summary>
/// ngx_http_autoindex_module's listings, byte for byte: the HTML page (names cut at 50 bytes, sizes exact or
/// scaled, local or UTC times), JSON, JSONP and XML.
/// </summary>
internal static class AutoindexRenderer
{
    private const int NameLength = 50;

    private static readonly string[] Months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

    /// <summary>Directories first, then names in byte order (ngx_http_autoindex_cmp_entries).</summary>
    public static void Sort(List<NativeFiles.DirEntry> entries) =>
        entries.Sort(static (a, b) =>
        {
            var ad = a.Stat.IsDirectory;
            var bd = b.Stat.IsDirectory;
            if (ad != bd)
            {
                return ad ? -1 : 1;
            }

            return a.Name.AsSpan().SequenceCompareTo(b.Name);
        });

    public static byte[] Html(string uri, List<NativeFiles.DirEntry> entries, bool exactSize, long gmtoffSeconds)
    {
        var o = new List<byte>(1024 + entries.Count * 120);
        var uriBytes = Encoding.UTF8.GetBytes(uri);
        NginxEscape.Append(o, "<html>\r\n<head><title>Index of ");
        NginxEscape.AppendHtml(o, uriBytes);
        NginxEscape.Append(o, "</title></head>\r\n<body>\r\n<h1>Index of ");
        NginxEscape.AppendHtml(o, uriBytes);
        NginxEscape.Append(o, "</h1><hr><pre><a href=\"../\">../</a>\r\n");

        foreach (var e in entries)
        {
            var name = e.Name.AsSpan();
            var dir = e.Stat.IsDirectory;
            NginxEscape.Append(o, "<a href=\"");
            NginxEscape.AppendUriComponent(o, name);
            if (dir)
            {
                o.Add((byte)'/');
            }

            o.Add((byte)'"');
            o.Add((byte)'>');

            var len = name.Length;
            int last;
            if (NginxEscape.HtmlEscapes(name) > 0)
            {
                NginxEscape.AppendHtml(o, name[..(len > NameLength ? NameLength - 3 : len)]);
                last = o.Count;
            }
            else
            {
                foreach (var b in name[..Math.Min(len, NameLength)])
                {
                    o.Add(b);
                }

                last = o.Count - 3;
            }

            if (len > NameLength)
            {
                o.RemoveRange(last, o.Count - last);
                NginxEscape.Append(o, "..&gt;</a>");
            }
            else
            {
                if (dir && NameLength - len > 0)
                {
                    o.Add((byte)'/');
                    len++;
                }

                NginxEscape.Append(o, "</a>");
                for (var i = len; i < NameLength; i++)
                {
                    o.Add((byte)' ');
                }
            }

            o.Add((byte)' ');
            var t = DateTimeOffset.FromUnixTimeSeconds(e.Stat.MtimeSeconds + gmtoffSeconds).UtcDateTime;
            NginxEscape.Append(o, string.Create(CultureInfo.InvariantCulture,
                $"{t.Day:00}-{Months[t.Month - 1]}-{t.Year} {t.Hour:00}:{t.Minute:00} "));
            NginxEscape.Append(o, Size(e, exactSize));
            o.Add((byte)'\r');
            o.Add((byte)'\n');
        }

        NginxEscape.Append(o, "</pre><hr></body>\r\n</html>\r\n");
        return [.. o];
    }

    private static string Size(NativeFiles.DirEntry e, bool exact)
    {
        if (exact)
        {
            return e.Stat.IsDirectory ? "                  -" : e.Stat.Size.ToString(CultureInfo.InvariantCulture).PadLeft(19);
        }

        if (e.Stat.IsDirectory)
        {
            return "      -";
        }

        var length = e.Stat.Size;
        long size;
        char scale;
        const long gig = 1024L * 1024 * 1024;
        const long meg = 1024L * 1024;
        if (length > gig - 1)
        {
            size = length / gig;
            if (length % gig > gig / 2 - 1)
            {
                size++;
            }

            scale = 'G';
        }
        else if (length > meg - 1)
        {
            size = length / meg;
            if (length % meg > meg / 2 - 1)
            {
                size++;
            }

            scale = 'M';
        }
        else if (length > 9999)
        {
            size = length / 1024;
            if (length % 1024 > 511)
            {
                size++;
            }

            scale = 'K';
        }
        else
        {
            return " " + length.ToString(CultureInfo.InvariantCulture).PadLeft(6);
        }

        return size.ToString(CultureInfo.InvariantCulture).PadLeft(6) + scale;
    }

    public static byte[] Json(List<NativeFiles.DirEntry> entries, string? callback)
    {
        var o = new List<byte>(256 + entries.Count * 100);
        if (callback is not null)
        {
            NginxEscape.Append(o, "/* callback */\r\n");
            NginxEscape.Append(o, callback);
            o.Add((byte)'(');
        }

        o.Add((byte)'[');
        foreach (var e in entries)
        {
            NginxEscape.Append(o, "\r\n{ \"name\":\"");
            NginxEscape.AppendJson(o, e.Name);
            NginxEscape.Append(o, "\", \"type\":\"");
            NginxEscape.Append(o, TypeName(e.Stat));
            NginxEscape.Append(o, "\", \"mtime\":\"");
            NginxEscape.Append(o, Conditional.FormatHttpTime(e.Stat.MtimeSeconds));
            if (e.Stat.IsFile)
            {
                NginxEscape.Append(o, "\", \"size\":");
                NginxEscape.Append(o, e.Stat.Size.ToString(CultureInfo.InvariantCulture));
            }
            else
            {
                o.Add((byte)'"');
            }

            NginxEscape.Append(o, " },");
        }

        if (entries.Count > 0)
        {
            o.RemoveAt(o.Count - 1);
        }

        NginxEscape.Append(o, "\r\n]");
        if (callback is not null)
        {
            o.Add((byte)')');
            o.Add((byte)';');
        }

        return [.. o];
    }

    public static byte[] Xml(List<NativeFiles.DirEntry> entries)
    {
        var o = new List<byte>(256 + entries.Count * 100);
        NginxEscape.Append(o, "<?xml version=\"1.0\"?>\r\n<list>\r\n");
        foreach (var e in entries)
        {
            var type = TypeName(e.Stat);
            o.Add((byte)'<');
            NginxEscape.Append(o, type);
            NginxEscape.Append(o, " mtime=\"");
            var t = DateTimeOffset.FromUnixTimeSeconds(e.Stat.MtimeSeconds).UtcDateTime;
            NginxEscape.Append(o, t.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'", CultureInfo.InvariantCulture));
            if (e.Stat.IsFile)
            {
                NginxEscape.Append(o, "\" size=\"");
                NginxEscape.Append(o, e.Stat.Size.ToString(CultureInfo.InvariantCulture));
            }

            o.Add((byte)'"');
            o.Add((byte)'>');
            NginxEscape.AppendHtml(o, e.Name);
            o.Add((byte)'<');
            o.Add((byte)'/');
            NginxEscape.Append(o, type);
            o.Add((byte)'>');
            o.Add((byte)'\r');
            o.Add((byte)'\n');
        }

        NginxEscape.Append(o, "</list>\r\n");
        return [.. o];
    }

    private static string TypeName(FileStat s) => s.IsDirectory ? "directory" : s.IsFile ? "file" : "other";

    /// <summary>ngx_http_autoindex_jsonp_callback: letters, digits, "_" and "." only, at most 128.</summary>
    public static bool ValidCallback(string callback)
    {
        if (callback.Length > 128)
        {
            return false;
        }

        foreach (var ch in callback)
        {
            if (char.IsAsciiLetter(ch) || char.IsAsciiDigit(ch) || ch is '_' or '.')
            {
                continue;
            }

            return false;
        }

        return true;
    }
}
