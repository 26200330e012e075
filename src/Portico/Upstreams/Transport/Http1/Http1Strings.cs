using System.Buffers;
using System.Text;

namespace Portico.Upstreams.Transport.Http1;

/// <summary>
/// Turns header bytes from origins into strings without allocating for what repeats: known header names
/// (as the origin spelled them: canonical or lower case) come from a static table, and the values of
/// headers that rarely change (Server, Content-Type, Date within a second ...) from a per-pool cache of
/// the last value seen. Everything else is decoded as Latin-1, byte for byte, as nginx passes it on.
/// </summary>
internal static class Http1Strings
{
    /// <summary>Known names; an index below <see cref="CachedValues"/> also caches its last value.</summary>
    private static readonly string[] Names =
    [
        "Date", "Server", "Content-Type", "Content-Length", "Connection", "Keep-Alive", "Transfer-Encoding",
        "Last-Modified", "ETag", "Accept-Ranges", "Cache-Control", "Expires", "Vary", "Content-Encoding", "Pragma",
        "X-Powered-By", "Access-Control-Allow-Origin", "Strict-Transport-Security", "X-Content-Type-Options",
        "X-Frame-Options", "Referrer-Policy", "Alt-Svc", "Age", "Content-Language", "Trailer", "Upgrade",
        "X-Accel-Buffering", "X-Accel-Limit-Rate", "X-Accel-Expires", "X-Accel-Charset", "X-Cache",
        // Names whose values change from response to response: not cached.
        "Set-Cookie", "Location", "Content-Disposition", "WWW-Authenticate", "Link", "Content-Range", "Refresh",
        "X-Accel-Redirect", "X-Request-Id",
    ];

    /// <summary>Names at indexes below this one keep their last value per pool.</summary>
    public const int CachedValues = 31;

    public static int KnownCount => Names.Length;

    private static readonly (byte[] Bytes, string Text, int Id)[][] ByLength = Build();

    private static (byte[] Bytes, string Text, int Id)[][] Build()
    {
        var max = 0;
        foreach (var n in Names)
        {
            max = Math.Max(max, n.Length);
        }

        var lists = new List<(byte[], string, int)>[max + 1];
        for (var i = 0; i < Names.Length; i++)
        {
            var name = Names[i];
            (lists[name.Length] ??= []).Add((Encoding.ASCII.GetBytes(name), name, i));
            var lower = name.ToLowerInvariant();
            if (lower != name)
            {
                lists[name.Length].Add((Encoding.ASCII.GetBytes(lower), lower, i));
            }
        }

        var result = new (byte[], string, int)[max + 1][];
        for (var i = 0; i <= max; i++)
        {
            result[i] = lists[i] is { } l ? [.. l] : [];
        }

        return result;
    }

    /// <summary>The name's string and its known index (-1 when unknown).</summary>
    public static string Name(ReadOnlySpan<byte> name, out int id)
    {
        if (name.Length < ByLength.Length)
        {
            foreach (var (bytes, text, known) in ByLength[name.Length])
            {
                if (name.SequenceEqual(bytes))
                {
                    id = known;
                    return text;
                }
            }
        }

        id = -1;
        return Latin1(name);
    }

    public static string Latin1(ReadOnlySpan<byte> bytes) => bytes.IsEmpty ? string.Empty : Encoding.Latin1.GetString(bytes);

    private static readonly SearchValues<char> Unsafe = SearchValues.Create("\r\n\0");

    /// <summary>True when a request header name or value may be written as is (no CR, LF or NUL).</summary>
    public static bool IsSafe(ReadOnlySpan<char> text) => !text.ContainsAny(Unsafe);

    /// <summary>
    /// The bytes of a request line part or header: Latin-1 for what Kestrel decoded as Latin-1 or ASCII, UTF-8
    /// for characters beyond (values built from configuration text).
    /// </summary>
    public static int ByteCount(string text)
    {
        if (Ascii.IsValid(text))
        {
            return text.Length;
        }

        foreach (var c in text)
        {
            if (c > 0xFF)
            {
                return Encoding.UTF8.GetByteCount(text);
            }
        }

        return text.Length;
    }

    /// <summary>Writes <paramref name="text"/> as <see cref="ByteCount"/> counted it; returns the bytes written.</summary>
    public static int Write(string text, Span<byte> target)
    {
        if (Ascii.FromUtf16(text, target, out var written) == OperationStatus.Done)
        {
            return written;
        }

        foreach (var c in text)
        {
            if (c > 0xFF)
            {
                return Encoding.UTF8.GetBytes(text, target);
            }
        }

        return Encoding.Latin1.GetBytes(text, target);
    }
}

/// <summary>
/// The last value each cacheable known header had in responses of one pool: a response whose Server,
/// Content-Type or Date bytes equal the previous ones gets the same string. Entries are immutable and
/// replaced whole, so concurrent exchanges read them without locks.
/// </summary>
internal sealed class Http1ValueCache
{
    private readonly Entry?[] _entries = new Entry?[Http1Strings.CachedValues];

    private sealed class Entry(byte[] bytes, string text)
    {
        public readonly byte[] Bytes = bytes;
        public readonly string Text = text;
    }

    public string Get(int id, ReadOnlySpan<byte> value)
    {
        if ((uint)id >= (uint)_entries.Length || value.Length > 256)
        {
            return Http1Strings.Latin1(value);
        }

        var entry = Volatile.Read(ref _entries[id]);
        if (entry is not null && value.SequenceEqual(entry.Bytes))
        {
            return entry.Text;
        }

        var text = Http1Strings.Latin1(value);
        Volatile.Write(ref _entries[id], new Entry(value.ToArray(), text));
        return text;
    }
}
