using System.Security.Authentication;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Proxy;
using Portico.Upstreams;

namespace Portico.Grpc;

/// <summary>
/// ngx_http_grpc_module's settings of one level, merged with nginx's rules (ngx_http_grpc_merge_loc_conf).
/// What nginx hard-codes for gRPC (no response buffering, the request body streamed, trailers passed)
/// is not a setting here: the compiler applies it.
/// </summary>
public sealed class GrpcSettings : Settings<GrpcSettings>
{
    /// <summary>grpc_pass of this level (not inherited, except into "if" and limit_except blocks).</summary>
    public GrpcPassSpec? Pass { get; set; }

    /// <summary>grpc_set_header of this level (replaced, not merged, per level).</summary>
    public List<(string Name, ValueTemplate Value)>? SetHeaders { get; set; }

    public List<string>? HideHeaders { get; set; }
    public List<string>? PassHeaders { get; set; }

    /// <summary>grpc_ignore_headers: a bitmask, so several directives at one level add up (ngx_conf_set_bitmask_slot).</summary>
    public IgnoredHeaders? Ignore { get; set; }

    /// <summary>grpc_next_upstream: a bitmask as well; "off" alone wins.</summary>
    public UpstreamFailure? NextUpstream { get; set; }

    public long? NextUpstreamTries { get; set; }
    public TimeSpan? NextUpstreamTimeout { get; set; }

    public BindSpec? Bind { get; set; }
    public bool BindSet { get; set; }
    public bool? SocketKeepalive { get; set; }
    public TimeSpan? ConnectTimeout { get; set; }
    public TimeSpan? SendTimeout { get; set; }
    public TimeSpan? ReadTimeout { get; set; }
    public bool? InterceptErrors { get; set; }
    public long? BufferSize { get; set; }

    public SslProtocols? SslProtocols { get; set; }
    public bool? SslVerify { get; set; }
    public long? SslVerifyDepth { get; set; }
    public string? SslTrustedCertificate { get; set; }
    public string? SslCertificate { get; set; }
    public string? SslCertificateKey { get; set; }
    public bool? SslServerName { get; set; }
    public ValueTemplate? SslName { get; set; }
    public bool? SslSessionReuse { get; set; }

    /// <summary>The first grpc_ssl_* directive of the level, for the load-time TLS errors.</summary>
    public Directive? SslAt { get; set; }

    public override void MergeFrom(GrpcSettings parent)
    {
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
        NextUpstream ??= parent.NextUpstream ?? UpstreamFailures.DefaultNextUpstream;
        if ((NextUpstream & UpstreamFailure.Off) != 0)
        {
            NextUpstream = UpstreamFailure.Off;
        }

        NextUpstreamTries ??= parent.NextUpstreamTries ?? 0;
        NextUpstreamTimeout ??= parent.NextUpstreamTimeout ?? TimeSpan.Zero;
        if (!BindSet)
        {
            Bind = parent.Bind;
            BindSet = true;
        }

        SocketKeepalive ??= parent.SocketKeepalive ?? false;
        ConnectTimeout ??= parent.ConnectTimeout ?? TimeSpan.FromSeconds(60);
        SendTimeout ??= parent.SendTimeout ?? TimeSpan.FromSeconds(60);
        ReadTimeout ??= parent.ReadTimeout ?? TimeSpan.FromSeconds(60);
        InterceptErrors ??= parent.InterceptErrors ?? false;
        BufferSize ??= parent.BufferSize ?? ProxySettings.PageSize;
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
}
