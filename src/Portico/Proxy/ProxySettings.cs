using System.Security.Authentication;
using Portico.ClientSide;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Upstreams;
using Portico.Upstreams.Transport;

namespace Portico.Proxy;

/// <summary>proxy_ignore_headers flags (NGX_HTTP_UPSTREAM_IGN_*).</summary>
[Flags]
public enum IgnoredHeaders
{
    None = 0,
    XAccelRedirect = 0x2,
    XAccelExpires = 0x4,
    Expires = 0x8,
    CacheControl = 0x10,
    SetCookie = 0x20,
    XAccelLimitRate = 0x40,
    XAccelBuffering = 0x80,
    XAccelCharset = 0x100,
    Vary = 0x200,
}

/// <summary>proxy_ignore_headers and grpc_ignore_headers: nginx's bitmask slot (ngx_conf_set_bitmask_slot).</summary>
public static class IgnoredHeadersDirective
{
    /// <summary>
    /// Names compare case-insensitively; a directive repeated at one level adds to the flags set there
    /// (<paramref name="current"/>); a level that sets any replaces what it inherits.
    /// </summary>
    public static IgnoredHeaders Parse(DirectiveCall c, IgnoredHeaders? current)
    {
        var flags = current ?? IgnoredHeaders.None;
        for (var i = 0; i < c.Count; i++)
        {
            var f = c[i].ToUpperInvariant() switch
            {
                "X-ACCEL-REDIRECT" => IgnoredHeaders.XAccelRedirect,
                "X-ACCEL-EXPIRES" => IgnoredHeaders.XAccelExpires,
                "X-ACCEL-LIMIT-RATE" => IgnoredHeaders.XAccelLimitRate,
                "X-ACCEL-BUFFERING" => IgnoredHeaders.XAccelBuffering,
                "X-ACCEL-CHARSET" => IgnoredHeaders.XAccelCharset,
                "EXPIRES" => IgnoredHeaders.Expires,
                "CACHE-CONTROL" => IgnoredHeaders.CacheControl,
                "SET-COOKIE" => IgnoredHeaders.SetCookie,
                "VARY" => IgnoredHeaders.Vary,
                _ => throw c.Emerg($"invalid value \"{c[i]}\""),
            };
            if ((flags & f) != 0)
            {
                c.Warn($"duplicate value \"{c[i]}\"");
            }

            flags |= f;
        }

        return flags;
    }
}

/// <summary>A proxy_redirect, proxy_cookie_domain or proxy_cookie_path rule: a prefix/domain or regex, and a replacement.</summary>
public sealed record RewriteRuleSpec(RewriteRuleKind Kind, ValueTemplate? Pattern, System.Text.RegularExpressions.Regex? Regex, ValueTemplate Replacement, Directive Source);

public enum RewriteRuleKind
{
    /// <summary>Compares a prefix (proxy_redirect, proxy_cookie_path).</summary>
    Prefix,

    /// <summary>Compares a whole domain, case-insensitively, ignoring a leading dot (proxy_cookie_domain).</summary>
    Domain,

    Regex,
}

/// <summary>proxy_cookie_flags cookie flag...: a cookie name (or caseless regex) and flag templates.</summary>
public sealed record CookieFlagsSpec(ValueTemplate? Name, System.Text.RegularExpressions.Regex? Regex, IReadOnlyList<ValueTemplate> Flags);

/// <summary>proxy_bind address [transparent] | off.</summary>
public sealed record BindSpec(ValueTemplate? Address, bool Transparent);

/// <summary>ngx_http_proxy_module's settings of one level, merged with nginx's rules.</summary>
public sealed class ProxySettings : Settings<ProxySettings>
{
    /// <summary>proxy_pass of this level (not inherited, except into "if" and limit_except blocks).</summary>
    public ProxyPassSpec? Pass { get; set; }

    // proxy_redirect: RedirectOff is "proxy_redirect off"; Redirects null means not set at this level.
    public bool? RedirectEnabled { get; set; }
    public List<RewriteRuleSpec>? Redirects { get; set; }

    /// <summary>proxy_cookie_domain / _path / _flags: null unset, empty list "off".</summary>
    public List<RewriteRuleSpec>? CookieDomains { get; set; }
    public List<RewriteRuleSpec>? CookiePaths { get; set; }
    public List<CookieFlagsSpec>? CookieFlags { get; set; }

    /// <summary>proxy_set_header of this level (replaced, not merged, per level).</summary>
    public List<(string Name, ValueTemplate Value)>? SetHeaders { get; set; }

    public List<string>? HideHeaders { get; set; }
    public List<string>? PassHeaders { get; set; }
    public IgnoredHeaders? Ignore { get; set; }

    public bool? PassRequestHeaders { get; set; }
    public bool? PassRequestBody { get; set; }
    public bool? PassTrailers { get; set; }
    public ValueTemplate? Method { get; set; }
    public ValueTemplate? SetBody { get; set; }
    public UpstreamHttpVersion? HttpVersion { get; set; }

    public bool? Buffering { get; set; }
    public bool? RequestBuffering { get; set; }
    public bool? IgnoreClientAbort { get; set; }
    public BindSpec? Bind { get; set; }
    public bool BindSet { get; set; }
    public bool? SocketKeepalive { get; set; }
    public TimeSpan? ConnectTimeout { get; set; }
    public TimeSpan? SendTimeout { get; set; }
    public TimeSpan? ReadTimeout { get; set; }
    public long? SendLowat { get; set; }
    public bool? InterceptErrors { get; set; }
    public long? HeadersHashMaxSize { get; set; }
    public long? HeadersHashBucketSize { get; set; }

    public long? BufferSize { get; set; }
    public (int Number, long Size)? Buffers { get; set; }
    public long? BusyBuffersSize { get; set; }
    public long? MaxTempFileSize { get; set; }
    public long? TempFileWriteSize { get; set; }
    public ValueTemplate? LimitRate { get; set; }
    public TempPath? TempPath { get; set; }

    /// <summary>Where the size directives were written, for nginx's consistency errors.</summary>
    public Directive? SizesAt { get; set; }

    /// <summary>proxy_next_upstream.</summary>
    public UpstreamFailure? NextUpstream { get; set; }

    /// <summary>proxy_next_upstream_tries (0: unlimited).</summary>
    public long? NextUpstreamTries { get; set; }

    /// <summary>proxy_next_upstream_timeout (0: unlimited).</summary>
    public TimeSpan? NextUpstreamTimeout { get; set; }

    public SslProtocols? SslProtocols { get; set; }
    public bool? SslVerify { get; set; }
    public long? SslVerifyDepth { get; set; }
    public string? SslTrustedCertificate { get; set; }
    public string? SslCertificate { get; set; }
    public string? SslCertificateKey { get; set; }
    public bool? SslServerName { get; set; }
    public ValueTemplate? SslName { get; set; }
    public bool? SslSessionReuse { get; set; }
    public Directive? SslAt { get; set; }

    /// <summary>Pages are 4k: nginx's proxy_buffer_size and proxy_buffers defaults.</summary>
    public const long PageSize = 4096;

    public override void MergeFrom(ProxySettings parent)
    {
        RedirectEnabled ??= parent.RedirectEnabled ?? true;
        if (RedirectEnabled == true)
        {
            Redirects ??= parent.Redirects;
            if (Redirects is null && Pass is not null && Pass.Template is null)
            {
                Redirects = [Pass.DefaultRedirect()];
            }
        }
        else
        {
            Redirects = null;
        }

        CookieDomains ??= parent.CookieDomains;
        CookiePaths ??= parent.CookiePaths;
        CookieFlags ??= parent.CookieFlags;
        SetHeaders ??= parent.SetHeaders;
        if (HideHeaders is null && PassHeaders is null)
        {
            HideHeaders = parent.HideHeaders;
            PassHeaders = parent.PassHeaders;
        }
        else
        {
            HideHeaders ??= parent.HideHeaders;
            PassHeaders ??= parent.PassHeaders;
        }

        Ignore ??= parent.Ignore ?? IgnoredHeaders.None;
        PassRequestHeaders ??= parent.PassRequestHeaders ?? true;
        PassRequestBody ??= parent.PassRequestBody ?? true;
        PassTrailers ??= parent.PassTrailers ?? false;
        Method ??= parent.Method;
        SetBody ??= parent.SetBody;
        HttpVersion ??= parent.HttpVersion ?? UpstreamHttpVersion.Http10;
        Buffering ??= parent.Buffering ?? true;
        RequestBuffering ??= parent.RequestBuffering ?? true;
        IgnoreClientAbort ??= parent.IgnoreClientAbort ?? false;
        if (!BindSet)
        {
            Bind = parent.Bind;
            BindSet = true;
        }

        SocketKeepalive ??= parent.SocketKeepalive ?? false;
        ConnectTimeout ??= parent.ConnectTimeout ?? TimeSpan.FromSeconds(60);
        SendTimeout ??= parent.SendTimeout ?? TimeSpan.FromSeconds(60);
        ReadTimeout ??= parent.ReadTimeout ?? TimeSpan.FromSeconds(60);
        SendLowat ??= parent.SendLowat ?? 0;
        InterceptErrors ??= parent.InterceptErrors ?? false;
        HeadersHashMaxSize ??= parent.HeadersHashMaxSize ?? 512;
        HeadersHashBucketSize ??= parent.HeadersHashBucketSize ?? 64;
        BufferSize ??= parent.BufferSize ?? PageSize;
        Buffers ??= parent.Buffers ?? (8, PageSize);
        BusyBuffersSize ??= parent.BusyBuffersSize;
        MaxTempFileSize ??= parent.MaxTempFileSize;
        TempFileWriteSize ??= parent.TempFileWriteSize;
        SizesAt ??= parent.SizesAt;
        LimitRate ??= parent.LimitRate;
        TempPath ??= parent.TempPath;
        NextUpstream ??= parent.NextUpstream ?? UpstreamFailures.DefaultNextUpstream;
        NextUpstreamTries ??= parent.NextUpstreamTries ?? 0;
        NextUpstreamTimeout ??= parent.NextUpstreamTimeout ?? TimeSpan.Zero;
        SslProtocols ??= parent.SslProtocols ?? (System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13);
        SslVerify ??= parent.SslVerify ?? false;
        SslVerifyDepth ??= parent.SslVerifyDepth ?? 1;
        SslTrustedCertificate ??= parent.SslTrustedCertificate;
        SslCertificate ??= parent.SslCertificate;
        SslCertificateKey ??= parent.SslCertificateKey;
        SslServerName ??= parent.SslServerName ?? false;
        SslName ??= parent.SslName;
        SslSessionReuse ??= parent.SslSessionReuse ?? true;
        SslAt ??= parent.SslAt;
    }

    /// <summary>The larger of proxy_buffer_size and one proxy_buffers buffer (nginx's "size" in its checks).</summary>
    public long UnitSize => Math.Max(BufferSize ?? PageSize, Buffers?.Size ?? PageSize);

    public long EffectiveBusyBuffersSize => BusyBuffersSize ?? 2 * UnitSize;
    public long EffectiveTempFileWriteSize => TempFileWriteSize ?? 2 * UnitSize;
    public long EffectiveMaxTempFileSize => MaxTempFileSize ?? 1024L * 1024 * 1024;
}
