using Portico.Config.Model;

namespace Portico.Headers;

/// <summary>How add_header treats a name (nginx's ngx_http_set_headers table).</summary>
public enum HeaderKind
{
    /// <summary>Any other name: one more header line (none for an empty value).</summary>
    Add,

    /// <summary>Cache-Control and Link: one more line of a multi-line header.</summary>
    Multi,

    /// <summary>Last-Modified: replaces the header (an empty value removes it).</summary>
    LastModified,

    /// <summary>ETag: replaces the header (an empty value removes it).</summary>
    ETag,
}

/// <summary>One add_header: name, value template (null for ""), and "always".</summary>
public sealed record HeaderSpec(string Name, ValueTemplate? Value, bool Always, HeaderKind Kind);

/// <summary>nginx's NGX_HTTP_EXPIRES_* kinds.</summary>
public enum ExpiresKind
{
    Off,
    Epoch,
    Max,
    Access,
    Modified,
    Daily,
}

/// <summary>expires [modified] time | epoch | max | off, or a value with variables parsed per request.</summary>
public sealed record ExpiresSpec(ExpiresKind Kind, long Seconds, ValueTemplate? Value)
{
    public static readonly ExpiresSpec Off = new(ExpiresKind.Off, 0, null);
}

/// <summary>
/// ngx_http_headers_filter_module settings. The add_header list is replaced, not merged: a level
/// that has any of its own does not inherit the enclosing level's (nginx's well-known trap).
/// </summary>
public sealed class HeadersSettings : Settings<HeadersSettings>
{
    public ExpiresSpec? Expires { get; set; }
    public List<HeaderSpec>? Headers { get; set; }

    public override void MergeFrom(HeadersSettings parent)
    {
        Expires ??= parent.Expires ?? ExpiresSpec.Off;
        Headers ??= parent.Headers;
    }
}

/// <summary>ngx_http_parse_expires, shared by the directive and by values computed per request.</summary>
public static class ExpiresParser
{
    /// <summary>
    /// Parses an expires value. <paramref name="kind"/> comes in as Access or Modified and goes out as the
    /// result (Epoch, Max, Off, Daily ...); returns nginx's error text, or null.
    /// </summary>
    public static string? Parse(string value, ref ExpiresKind kind, out long seconds)
    {
        seconds = 0;
        if (kind != ExpiresKind.Modified)
        {
            switch (value)
            {
                case "epoch":
                    kind = ExpiresKind.Epoch;
                    return null;
                case "max":
                    kind = ExpiresKind.Max;
                    return null;
                case "off":
                    kind = ExpiresKind.Off;
                    return null;
            }
        }

        var minus = false;
        var v = value;
        if (v.Length > 0 && v[0] == '@')
        {
            v = v[1..];
            if (kind == ExpiresKind.Modified)
            {
                return "daily time cannot be used with \"modified\" parameter";
            }

            kind = ExpiresKind.Daily;
        }
        else if (v.Length > 0 && v[0] == '+')
        {
            v = v[1..];
        }
        else if (v.Length > 0 && v[0] == '-')
        {
            v = v[1..];
            minus = true;
        }

        if (!Config.Directives.ConfigValues.TryParseSeconds(v, out seconds))
        {
            return "invalid value";
        }

        if (kind == ExpiresKind.Daily && seconds > 24 * 60 * 60)
        {
            return "daily time value must be less than 24 hours";
        }

        if (minus)
        {
            seconds = -seconds;
        }

        return null;
    }
}
