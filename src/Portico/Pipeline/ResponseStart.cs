using System.Globalization;
using System.Text;
using Microsoft.Net.Http.Headers;

namespace Portico.Pipeline;

/// <summary>
/// The header filter chain, run once before any response's headers leave, whatever produced them:
/// the location's filters (add_header, expires ...) and then nginx's header filter (Server, an absolute
/// Location, Connection: close).
/// </summary>
public static class ResponseStart
{
    public static void Apply(RequestContext r)
    {
        if (r.HeadersFiltered)
        {
            return;
        }

        r.HeadersFiltered = true;
        if (r.StatusOverride > 0)
        {
            // error_page's status (nginx's r->err_status) wins over what the redirected request produced.
            r.Http.Response.StatusCode = r.StatusOverride;
            r.Status = r.StatusOverride;
        }

        r.Status = r.Status == 0 ? r.Http.Response.StatusCode : r.Status;
        var headers = r.Http.Response.Headers;

        // A Server header passed from an upstream (proxy_pass_header Server) stays, as in nginx.
        var upstreamServer = headers.ContainsKey(ServerHeader);
        foreach (var f in r.Location.HeaderFilters)
        {
            f.Apply(r);
        }

        var core = r.Location.Get<HttpCoreSettings>();
        if (!upstreamServer)
        {
            headers.Server = (core.ServerTokens ?? ServerTokens.On) == ServerTokens.Off ? Product.Name : Product.NameAndVersion;
        }

        var location = headers.Location;
        if (location.Count == 1 && location[0] is { Length: > 0 } value && value[0] == '/' && core.AbsoluteRedirect != false && !r.PassRawLocation)
        {
            headers.Location = AbsoluteBase(r, core) + value;
        }

        // HTTP/2 has no Connection header (Kestrel would drop it with a warning).
        if (r.CloseConnection && r.Protocol.StartsWith("HTTP/1", StringComparison.Ordinal))
        {
            headers.Connection = "close";
        }

        // nginx's own status lines (proxied responses keep the origin's reason phrase, set beforehand).
        var feature = r.Http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseFeature>();
        if (feature is not null && feature.ReasonPhrase is null && StatusLine(r.Http.Response.StatusCode) is { } reason)
        {
            feature.ReasonPhrase = reason;
        }
    }

    /// <summary>The reason phrases of nginx's ngx_http_status_lines where they differ from Kestrel's.</summary>
    public static string? StatusLine(int status) => status switch
    {
        302 => "Moved Temporarily",
        405 => "Not Allowed",
        408 => "Request Time-out",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        416 => "Requested Range Not Satisfiable",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        _ => null,
    };

    /// <summary>scheme://host[:port] for relative redirects (absolute_redirect, server_name_in_redirect, port_in_redirect).</summary>
    public static string AbsoluteBase(RequestContext r, HttpCoreSettings core)
    {
        var https = r.Http.Request.IsHttps;
        var sb = new StringBuilder(64);
        sb.Append(https ? "https://" : "http://");
        var host = core.ServerNameInRedirect == true ? r.Server.Name : (r.Host ?? r.Server.Name);
        if (host.Length == 0)
        {
            host = r.Connection.LocalAddressText;
        }

        sb.Append(host);
        var port = r.Connection.LocalPort;
        if (core.PortInRedirect != false && port > 0 && port != (https ? 443 : 80) && r.Connection.LocalPort >= 0)
        {
            sb.Append(':').Append(port.ToString(CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    public static readonly string ServerHeader = HeaderNames.Server;
}
