using System.Collections.Frozen;

namespace Portico.Static;

/// <summary>
/// A "types" table: file name extension (lower case) to MIME type, as nginx's types hash. Built once per
/// level that declares "types" (or the built-in table); the request path only looks up.
/// </summary>
public sealed class MimeTypes
{
    private static MimeTypes? s_default;
    private readonly FrozenDictionary<string, string> _byExtension;
    private readonly FrozenDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public MimeTypes(IEnumerable<KeyValuePair<string, string>> entries)
    {
        _byExtension = entries.ToFrozenDictionary(StringComparer.Ordinal);
        _lookup = _byExtension.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int Count => _byExtension.Count;

    /// <summary>
    /// nginx's conf/mime.types (identical in 1.22 and Debian's /etc/nginx/mime.types). Portico uses it when no
    /// "types" block applies; nginx's own built-in default has only html, gif and jpg.
    /// </summary>
    public static MimeTypes Default => s_default ??= new MimeTypes(Expand(DefaultTable));

    /// <summary>The type for an extension (any case), or null.</summary>
    public string? Find(ReadOnlySpan<char> extension)
    {
        if (extension.IsEmpty)
        {
            return null;
        }

        foreach (var c in extension)
        {
            if (char.IsAsciiLetterUpper(c))
            {
                Span<char> lower = extension.Length <= 64 ? stackalloc char[extension.Length] : new char[extension.Length];
                extension.ToLowerInvariant(lower);
                return _lookup.TryGetValue(lower, out var t) ? t : null;
            }
        }

        return _lookup.TryGetValue(extension, out var type) ? type : null;
    }

    /// <summary>
    /// ngx_http_set_exten: the extension of the last path segment ("/a/b.tar.gz" → "gz"); none for names that
    /// start with a dot ("/.htaccess") or have no dot.
    /// </summary>
    public static ReadOnlySpan<char> Extension(ReadOnlySpan<char> uri)
    {
        for (var i = uri.Length - 1; i > 1; i--)
        {
            var c = uri[i];
            if (c == '.' && uri[i - 1] != '/')
            {
                return uri[(i + 1)..];
            }

            if (c == '/')
            {
                return default;
            }
        }

        return default;
    }

    /// <summary>The Content-Type of a URI: its extension's type, or the default type.</summary>
    public string ContentTypeFor(string uri, string defaultType) => Find(Extension(uri)) ?? defaultType;

    private static IEnumerable<KeyValuePair<string, string>> Expand((string Type, string Extensions)[] table)
    {
        foreach (var (type, extensions) in table)
        {
            foreach (var ext in extensions.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                yield return new KeyValuePair<string, string>(ext, type);
            }
        }
    }

    private static readonly (string Type, string Extensions)[] DefaultTable =
    [
        ("text/html", "html htm shtml"),
        ("text/css", "css"),
        ("text/xml", "xml"),
        ("image/gif", "gif"),
        ("image/jpeg", "jpeg jpg"),
        ("application/javascript", "js"),
        ("application/atom+xml", "atom"),
        ("application/rss+xml", "rss"),
        ("text/mathml", "mml"),
        ("text/plain", "txt"),
        ("text/vnd.sun.j2me.app-descriptor", "jad"),
        ("text/vnd.wap.wml", "wml"),
        ("text/x-component", "htc"),
        ("image/avif", "avif"),
        ("image/png", "png"),
        ("image/svg+xml", "svg svgz"),
        ("image/tiff", "tif tiff"),
        ("image/vnd.wap.wbmp", "wbmp"),
        ("image/webp", "webp"),
        ("image/x-icon", "ico"),
        ("image/x-jng", "jng"),
        ("image/x-ms-bmp", "bmp"),
        ("font/woff", "woff"),
        ("font/woff2", "woff2"),
        ("application/java-archive", "jar war ear"),
        ("application/json", "json"),
        ("application/mac-binhex40", "hqx"),
        ("application/msword", "doc"),
        ("application/pdf", "pdf"),
        ("application/postscript", "ps eps ai"),
        ("application/rtf", "rtf"),
        ("application/vnd.apple.mpegurl", "m3u8"),
        ("application/vnd.google-earth.kml+xml", "kml"),
        ("application/vnd.google-earth.kmz", "kmz"),
        ("application/vnd.ms-excel", "xls"),
        ("application/vnd.ms-fontobject", "eot"),
        ("application/vnd.ms-powerpoint", "ppt"),
        ("application/vnd.oasis.opendocument.graphics", "odg"),
        ("application/vnd.oasis.opendocument.presentation", "odp"),
        ("application/vnd.oasis.opendocument.spreadsheet", "ods"),
        ("application/vnd.oasis.opendocument.text", "odt"),
        ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
        ("application/vnd.wap.wmlc", "wmlc"),
        ("application/wasm", "wasm"),
        ("application/x-7z-compressed", "7z"),
        ("application/x-cocoa", "cco"),
        ("application/x-java-archive-diff", "jardiff"),
        ("application/x-java-jnlp-file", "jnlp"),
        ("application/x-makeself", "run"),
        ("application/x-perl", "pl pm"),
        ("application/x-pilot", "prc pdb"),
        ("application/x-rar-compressed", "rar"),
        ("application/x-redhat-package-manager", "rpm"),
        ("application/x-sea", "sea"),
        ("application/x-shockwave-flash", "swf"),
        ("application/x-stuffit", "sit"),
        ("application/x-tcl", "tcl tk"),
        ("application/x-x509-ca-cert", "der pem crt"),
        ("application/x-xpinstall", "xpi"),
        ("application/xhtml+xml", "xhtml"),
        ("application/xspf+xml", "xspf"),
        ("application/zip", "zip"),
        ("application/octet-stream", "bin exe dll"),
        ("application/octet-stream", "deb"),
        ("application/octet-stream", "dmg"),
        ("application/octet-stream", "iso img"),
        ("application/octet-stream", "msi msp msm"),
        ("audio/midi", "mid midi kar"),
        ("audio/mpeg", "mp3"),
        ("audio/ogg", "ogg"),
        ("audio/x-m4a", "m4a"),
        ("audio/x-realaudio", "ra"),
        ("video/3gpp", "3gpp 3gp"),
        ("video/mp2t", "ts"),
        ("video/mp4", "mp4"),
        ("video/mpeg", "mpeg mpg"),
        ("video/quicktime", "mov"),
        ("video/webm", "webm"),
        ("video/x-flv", "flv"),
        ("video/x-m4v", "m4v"),
        ("video/x-mng", "mng"),
        ("video/x-ms-asf", "asx asf"),
        ("video/x-ms-wmv", "wmv"),
        ("video/x-msvideo", "avi"),
    ];
}
