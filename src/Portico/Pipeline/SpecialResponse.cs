using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Portico.Pipeline;

/// <summary>
/// nginx's default pages for redirects and errors: the same status lines, the same HTML shape, the
/// server_tokens tail, and the MSIE/Chrome padding for 4xx/5xx.
/// </summary>
public static class SpecialResponse
{
    private static readonly Dictionary<int, (string Title, string? Detail)> Pages = new()
    {
        [301] = ("301 Moved Permanently", null),
        [302] = ("302 Found", null),
        [303] = ("303 See Other", null),
        [307] = ("307 Temporary Redirect", null),
        [308] = ("308 Permanent Redirect", null),
        [400] = ("400 Bad Request", null),
        [401] = ("401 Authorization Required", null),
        [402] = ("402 Payment Required", null),
        [403] = ("403 Forbidden", null),
        [404] = ("404 Not Found", null),
        [405] = ("405 Not Allowed", null),
        [406] = ("406 Not Acceptable", null),
        [407] = ("407 Proxy Authentication Required", null),
        [408] = ("408 Request Time-out", null),
        [409] = ("409 Conflict", null),
        [410] = ("410 Gone", null),
        [411] = ("411 Length Required", null),
        [412] = ("412 Precondition Failed", null),
        [413] = ("413 Request Entity Too Large", null),
        [414] = ("414 Request-URI Too Large", null),
        [415] = ("415 Unsupported Media Type", null),
        [416] = ("416 Requested Range Not Satisfiable", null),
        [421] = ("421 Misdirected Request", null),
        [429] = ("429 Too Many Requests", null),
        [494] = ("400 Request Header Or Cookie Too Large", "Request Header Or Cookie Too Large"),
        [495] = ("400 The SSL certificate error", "The SSL certificate error"),
        [496] = ("400 No required SSL certificate was sent", "No required SSL certificate was sent"),
        [497] = ("400 The plain HTTP request was sent to HTTPS port", "The plain HTTP request was sent to HTTPS port"),
        [498] = ("404 Not Found", null),
        [500] = ("500 Internal Server Error", null),
        [501] = ("501 Not Implemented", null),
        [502] = ("502 Bad Gateway", null),
        [503] = ("503 Service Temporarily Unavailable", null),
        [504] = ("504 Gateway Time-out", null),
        [505] = ("505 HTTP Version Not Supported", null),
        [507] = ("507 Insufficient Storage", null),
    };

    private const string Padding =
        "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
        "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
        "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
        "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
        "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" +
        "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n";

    /// <summary>
    /// <see cref="Body"/> as the bytes sent, made once for each status, server_tokens form and padding, and then
    /// shared: an error page costs no allocation (a 502 storm or a 404 scan is when they are many).
    /// </summary>
    public static byte[]? BodyBytes(int status, ServerTokens tokens, bool padding)
    {
        var key = (status << 2) | (tokens == ServerTokens.Off ? 2 : 0) | (padding ? 1 : 0);
        if (BodyCache.TryGetValue(key, out var cached))
        {
            return cached;
        }

        var body = Body(status, tokens, padding);
        var bytes = body is null ? null : Encoding.ASCII.GetBytes(body);
        BodyCache.TryAdd(key, bytes);
        return bytes;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, byte[]?> BodyCache = new();

    /// <summary>The page body nginx sends for a status, or null for statuses without a page.</summary>
    public static string? Body(int status, ServerTokens tokens, bool padding)
    {
        if (!Pages.TryGetValue(status, out var page))
        {
            return null;
        }

        var sb = new StringBuilder(256);
        sb.Append("<html>\r\n<head><title>").Append(page.Title).Append("</title></head>\r\n<body>\r\n");
        if (page.Detail is null)
        {
            sb.Append("<center><h1>").Append(page.Title).Append("</h1></center>\r\n");
        }
        else
        {
            sb.Append("<center><h1>400 Bad Request</h1></center>\r\n<center>").Append(page.Detail).Append("</center>\r\n");
        }

        sb.Append("<hr><center>").Append(tokens == ServerTokens.Off ? Product.Name : Product.NameAndVersion).Append("</center>\r\n</body>\r\n</html>\r\n");
        if (padding && status >= 400)
        {
            sb.Append(Padding);
        }

        return sb.ToString();
    }

    /// <summary>Marks a request whose redirect is sent as MSIE's refresh page whatever its 30x code (error_page to a URL).</summary>
    public static readonly RequestKey RefreshKey = new();

    /// <summary>nginx's r->headers_in.msie: "MSIE " with a version after it, and not Opera.</summary>
    public static bool IsMsie(string userAgent)
    {
        var at = userAgent.IndexOf("MSIE ", StringComparison.Ordinal);
        return at >= 0 && at + 7 < userAgent.Length && !userAgent.Contains("Opera", StringComparison.Ordinal);
    }

    /// <summary>nginx's r->headers_in.chrome: "Chrome/" in a user agent that is not MSIE, Opera or Gecko.</summary>
    public static bool IsChrome(string userAgent) =>
        !IsMsie(userAgent) && !userAgent.Contains("Opera", StringComparison.Ordinal)
        && !userAgent.Contains("Gecko/", StringComparison.Ordinal) && userAgent.Contains("Chrome/", StringComparison.Ordinal);

    /// <summary>The status line code sent for nginx's internal codes (494–497 are sent as 400).</summary>
    public static int WireStatus(int status) => status is 494 or 495 or 496 or 497 ? 400 : status;

    /// <summary>Whether nginx closes the connection after this error.</summary>
    public static bool ClosesConnection(int status) => status is 400 or 413 or 414 or 497 or 495 or 496 or 500 or 501;

    /// <summary>Sends the special response for <see cref="RequestContext.Status"/> (error_page already considered).</summary>
    public static async ValueTask SendAsync(RequestContext r)
    {
        var response = r.Http.Response;
        var status = r.Status;
        if (response.HasStarted)
        {
            // Too late for a page: nginx closes the connection.
            r.Http.Abort();
            return;
        }

        if (status is 444 or 499 or 408)
        {
            r.Http.Features.Get<IHttpResponseFeature>();
            r.Http.Abort();
            return;
        }

        // The special response is sent with its own status (nginx sets r->err_status = error).
        r.StatusOverride = 0;
        var core = r.Location.Get<HttpCoreSettings>();
        var ua = r.Http.Request.Headers.UserAgent.ToString();
        if (ClosesConnection(status))
        {
            r.CloseConnection = true;
        }

        if (core.MsieRefresh == true && IsMsie(ua)
            && (status is 301 or 302 || (r.GetItem<object>(RefreshKey) is not null && status is 303 or 307 or 308)))
        {
            await SendRefreshAsync(r).ConfigureAwait(false);
            return;
        }

        var padding = core.MsiePadding == true && (IsMsie(ua) || IsChrome(ua));
        var bytes = BodyBytes(status, core.ServerTokens ?? ServerTokens.On, padding);

        // nginx's special response drops these from whatever was prepared.
        var headers = response.Headers;
        headers.ContentLength = null;
        headers.Remove("Accept-Ranges");
        headers.Remove("Last-Modified");
        headers.Remove("ETag");
        response.StatusCode = WireStatus(status);
        if (bytes is null)
        {
            headers.ContentType = default;
            headers.ContentLength = status is 204 or 304 || status < 200 ? null : 0;
            ResponseStart.Apply(r);
            return;
        }

        headers.ContentType = "text/html";
        headers.ContentLength = bytes.Length;
        ResponseStart.Apply(r);
        if (!HttpMethods.IsHead(r.Http.Request.Method))
        {
            await response.Body.WriteAsync(bytes, r.Http.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// ngx_http_send_refresh (msie_refresh on): MSIE gets a 200 page whose meta refresh carries the
    /// redirect target, escaped for the attribute, instead of a Location header.
    /// </summary>
    public static async ValueTask SendRefreshAsync(RequestContext r)
    {
        var response = r.Http.Response;
        var headers = response.Headers;
        var location = headers.Location.Count > 0 ? headers.Location[0] ?? string.Empty : string.Empty;
        headers.Remove("Location");
        headers.Remove("Accept-Ranges");
        headers.Remove("Last-Modified");
        headers.Remove("ETag");
        var body = Encoding.ASCII.GetBytes(
            "<html><head><meta http-equiv=\"Refresh\" content=\"0; URL="
            + Variables.UriEscape.Escape(location, Variables.UriEscapeKind.Refresh)
            + "\"></head><body></body></html>\r\n");
        r.Status = 200;
        response.StatusCode = 200;
        headers.ContentType = "text/html";
        headers.ContentLength = body.Length;
        ResponseStart.Apply(r);
        if (!HttpMethods.IsHead(r.Http.Request.Method))
        {
            await response.Body.WriteAsync(body, r.Http.RequestAborted).ConfigureAwait(false);
        }
    }
}

/// <summary>Portico's name and version as they appear in Server headers and error pages.</summary>
public static class Product
{
    public const string Name = "portico";
    public const string Version = "0.1.0";
    public const string NameAndVersion = Name + "/" + Version;
}
