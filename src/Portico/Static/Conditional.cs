using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Portico.Static;

/// <summary>
/// nginx's not-modified filter (If-Unmodified-Since, If-Match, If-Modified-Since, If-None-Match on a 200
/// response) and the HTTP date and ETag formats the static module sends.
/// </summary>
public static class Conditional
{
    /// <summary>
    /// The status the conditional headers turn a 200 response into: 200 (send it), 304 or 412.
    /// <paramref name="lastModified"/> is in Unix seconds, -1 when unknown; <paramref name="etag"/> may be null.
    /// </summary>
    public static int Evaluate(IHeaderDictionary request, long lastModified, string? etag, IfModifiedSince mode)
    {
        if (request.TryGetValue(HeaderNames.IfUnmodifiedSince, out var ius) && ius.Count > 0
            && !UnmodifiedSince(ius[0], lastModified))
        {
            return 412;
        }

        if (request.TryGetValue(HeaderNames.IfMatch, out var im) && im.Count > 0 && !Matches(im[0] ?? string.Empty, etag, weak: false))
        {
            return 412;
        }

        var hasIms = request.TryGetValue(HeaderNames.IfModifiedSince, out var ims) && ims.Count > 0;
        var hasInm = request.TryGetValue(HeaderNames.IfNoneMatch, out var inm) && inm.Count > 0;
        if (!hasIms && !hasInm)
        {
            return 200;
        }

        if (hasIms && ModifiedSince(ims[0], lastModified, mode))
        {
            return 200;
        }

        if (hasInm && !Matches(inm[0] ?? string.Empty, etag, weak: true))
        {
            return 200;
        }

        return 304;
    }

    private static bool UnmodifiedSince(string? value, long lastModified)
    {
        if (lastModified == -1)
        {
            return false;
        }

        return ParseHttpTime(value) is { } t && t >= lastModified;
    }

    /// <summary>ngx_http_test_if_modified: true when the response must be sent.</summary>
    private static bool ModifiedSince(string? value, long lastModified, IfModifiedSince mode)
    {
        if (lastModified == -1 || mode == IfModifiedSince.Off)
        {
            return true;
        }

        var ims = ParseHttpTime(value) ?? -1;
        if (ims == lastModified)
        {
            return false;
        }

        return mode == IfModifiedSince.Exact || ims < lastModified;
    }

    /// <summary>ngx_http_test_if_match: "*", or the ETag in the comma-separated list (W/ ignored when weak).</summary>
    public static bool Matches(string list, string? etag, bool weak)
    {
        if (list == "*")
        {
            return true;
        }

        if (etag is null)
        {
            return false;
        }

        var tag = etag.AsSpan();
        if (weak && tag.Length > 2 && tag[0] == 'W' && tag[1] == '/')
        {
            tag = tag[2..];
        }

        var s = list.AsSpan();
        var p = 0;
        while (p < s.Length)
        {
            if (weak && s.Length - p > 2 && s[p] == 'W' && s[p + 1] == '/')
            {
                p += 2;
            }

            if (tag.Length > s.Length - p)
            {
                return false;
            }

            if (s.Slice(p, tag.Length).SequenceEqual(tag))
            {
                p += tag.Length;
                while (p < s.Length && s[p] is ' ' or '\t')
                {
                    p++;
                }

                if (p == s.Length || s[p] == ',')
                {
                    return true;
                }
            }

            while (p < s.Length && s[p] != ',')
            {
                p++;
            }

            while (p < s.Length && s[p] is ' ' or '\t' or ',')
            {
                p++;
            }
        }

        return false;
    }

    /// <summary>ngx_parse_http_time: RFC 1123, RFC 850 or asctime dates to Unix seconds; null when invalid.</summary>
    public static long? ParseHttpTime(string? value) =>
        value is not null && HeaderUtilities.TryParseDate(value, out var date) ? date.ToUnixTimeSeconds() : null;

    /// <summary>ngx_http_time: "Thu, 02 Jan 2020 03:04:05 GMT".</summary>
    public static string FormatHttpTime(long unixSeconds) =>
        DateTimeOffset.FromUnixTimeSeconds(unixSeconds).ToString("r", CultureInfo.InvariantCulture);

    /// <summary>ngx_http_set_etag: "\"mtime-size\"" in lower-case hex.</summary>
    public static string Etag(long mtime, long size) =>
        "\"" + mtime.ToString("x", CultureInfo.InvariantCulture) + "-" + size.ToString("x", CultureInfo.InvariantCulture) + "\"";
}
