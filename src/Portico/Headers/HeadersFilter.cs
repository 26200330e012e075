using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Headers;

/// <summary>
/// ngx_http_headers_filter: for the statuses nginx considers safe (200, 201, 204, 206, 301, 302, 303, 304, 307,
/// 308) sets Expires and Cache-Control and adds the add_header headers; for any other status only the headers
/// marked "always".
/// </summary>
public sealed class HeadersFilter : HeaderFilter
{
    private readonly ExpiresSpec _expires;
    private readonly CompiledTemplate? _expiresValue;
    private readonly CompiledHeader[] _headers;

    public HeadersFilter(ExpiresSpec expires, CompiledTemplate? expiresValue, CompiledHeader[] headers)
    {
        _expires = expires;
        _expiresValue = expiresValue;
        _headers = headers;
    }

    public static bool IsSafeStatus(int status) => status is 200 or 201 or 204 or 206 or 301 or 302 or 303 or 304 or 307 or 308;

    public override void Apply(RequestContext r)
    {
        var status = r.Status != 0 ? r.Status : r.Http.Response.StatusCode;
        var safe = IsSafeStatus(status);
        if (safe && (_expires.Kind != ExpiresKind.Off || _expiresValue is not null))
        {
            SetExpires(r);
        }

        var headers = r.Http.Response.Headers;
        foreach (var h in _headers)
        {
            if (!safe && !h.Always)
            {
                continue;
            }

            var value = h.Value?.Evaluate(r) ?? string.Empty;
            if (value.Length > 0 && !Sendable(value))
            {
                r.LogError(LogLevel.Error, $"header \"{h.Name}\" not sent: its value holds characters an HTTP header cannot carry");
                continue;
            }

            switch (h.Kind)
            {
                case HeaderKind.ETag:
                case HeaderKind.LastModified:
                    if (value.Length == 0)
                    {
                        headers.Remove(h.Name);
                    }
                    else
                    {
                        headers[h.Name] = value;
                    }

                    break;
                default:
                    if (value.Length > 0)
                    {
                        headers.Append(h.Name, value);
                    }

                    break;
            }
        }
    }

    /// <summary>ngx_http_set_expires.</summary>
    private void SetExpires(RequestContext r)
    {
        var kind = _expires.Kind;
        var seconds = _expires.Seconds;
        if (_expiresValue is not null)
        {
            var text = _expiresValue.Evaluate(r);
            if (ExpiresParser.Parse(text, ref kind, out seconds) is not null || kind == ExpiresKind.Off)
            {
                return;
            }
        }

        var headers = r.Http.Response.Headers;
        switch (kind)
        {
            case ExpiresKind.Epoch:
                headers.Expires = "Thu, 01 Jan 1970 00:00:01 GMT";
                headers.CacheControl = "no-cache";
                return;
            case ExpiresKind.Max:
                headers.Expires = "Thu, 31 Dec 2037 23:55:55 GMT";
                headers.CacheControl = "max-age=315360000";
                return;
        }

        var now = r.Snapshot.Services.Time.GetUtcNow();
        var nowSeconds = now.ToUnixTimeSeconds();
        if (headers.Date.Count == 0)
        {
            // nginx computes Expires from the same clock as Date: send the Date this was computed at.
            headers.Date = Format(nowSeconds);
        }

        if (seconds == 0 && kind != ExpiresKind.Daily)
        {
            headers.Expires = Format(nowSeconds);
            headers.CacheControl = "max-age=0";
            return;
        }

        long expiresAt;
        long maxAge;
        long lastModified;
        if (kind == ExpiresKind.Daily)
        {
            expiresAt = NextTime(now, seconds);
            maxAge = expiresAt - nowSeconds;
        }
        else if (kind == ExpiresKind.Access || (lastModified = LastModified(r)) == -1)
        {
            maxAge = seconds;
            expiresAt = nowSeconds + seconds;
        }
        else
        {
            expiresAt = lastModified + seconds;
            maxAge = expiresAt - nowSeconds;
        }

        headers.Expires = Format(expiresAt);
        headers.CacheControl = _expires.Seconds < 0 || maxAge < 0
            ? "no-cache"
            : "max-age=" + maxAge.ToString(CultureInfo.InvariantCulture);
    }

    private static long LastModified(RequestContext r) =>
        r.Http.Response.Headers.LastModified is { Count: > 0 } lm && HeaderUtilities.TryParseDate(lm[0], out var date)
            ? date.ToUnixTimeSeconds()
            : -1;

    private static string Format(long unixSeconds) =>
        DateTimeOffset.FromUnixTimeSeconds(unixSeconds).ToString("r", CultureInfo.InvariantCulture);

    /// <summary>ngx_next_time: the next moment (local time) at the given time of day.</summary>
    public static long NextTime(DateTimeOffset now, long timeOfDay)
    {
        var local = TimeZoneInfo.ConvertTime(now, TimeZoneInfo.Local);
        var today = new DateTime(local.Year, local.Month, local.Day, 0, 0, 0, DateTimeKind.Unspecified).AddSeconds(timeOfDay);
        var next = new DateTimeOffset(today, TimeZoneInfo.Local.GetUtcOffset(today)).ToUnixTimeSeconds();
        if (next - now.ToUnixTimeSeconds() > 0)
        {
            return next;
        }

        var tomorrow = today.AddDays(1);
        return new DateTimeOffset(tomorrow, TimeZoneInfo.Local.GetUtcOffset(tomorrow)).ToUnixTimeSeconds();
    }

    /// <summary>What Kestrel accepts in a header value: visible ASCII, space and tab.</summary>
    private static bool Sendable(string value)
    {
        foreach (var c in value)
        {
            if ((c < 0x20 && c != '\t') || c >= 0x7F)
            {
                return false;
            }
        }

        return true;
    }
}
