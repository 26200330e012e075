using System.Net.Quic;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Tls;

/// <summary>
/// ngx_http_v2_module on Kestrel's HTTP/2: "http2 on" (ALPN h2 over TLS, prior knowledge beside HTTP/1.1 on
/// plain ports as nginx ≥ 1.25), the limits Kestrel can express, $http2; and ngx_http_v3_module's directives,
/// which need libmsquic.
/// </summary>
public sealed class Http2Module : PorticoModule
{
    public override string Name => "http2";

    /// <summary>Whether this process can serve QUIC (libmsquic found).</summary>
    public static bool QuicAvailable => (OperatingSystem.IsLinux() || OperatingSystem.IsWindows() || OperatingSystem.IsMacOS()) && QuicListener.IsSupported;

    public static string QuicUnavailable(string what) => QuicAvailable
        ? $"{what} is not supported by this build of Portico: HTTP/3 is not wired to Kestrel's QUIC transport yet"
        : $"{what} requires HTTP/3, which needs libmsquic: the library was not found on this system (install libmsquic to use QUIC)";

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<Http2ServerSettings>(SettingsScope.Server);
        r.AddSettings<Http2MainSettings>(SettingsScope.HttpMain);
        r.Add(new DirectiveSpec("http2", Ctx.HttpServer, Arity.Flag, c => c.Loc<Http2ServerSettings>().Enable = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("http2_max_concurrent_streams", Ctx.HttpServer, Arity.One, c => c.Loc<Http2ServerSettings>().MaxConcurrentStreams = c.Number(0)) { Module = Name });
        r.Add(new DirectiveSpec("http2_body_preread_size", Ctx.HttpServer, Arity.One, c =>
        {
            var size = c.Size(0);
            if (size > int.MaxValue)
            {
                throw c.Emerg($"the maximum body preread buffer size is {int.MaxValue}");
            }

            c.Loc<Http2ServerSettings>().BodyPrereadSize = size;
        }) { Module = Name });
        r.Add(new DirectiveSpec("http2_recv_buffer_size", Ctx.Http, Arity.One, c =>
        {
            var size = c.Size(0);
            if (size <= 2 * 16384)
            {
                throw c.Emerg("the http2 receive buffer size is too small");
            }

            c.HttpMain<Http2MainSettings>().RecvBufferSize = size;
        }) { Module = Name });
        r.Add(new DirectiveSpec("http2_chunk_size", Ctx.HttpServerLocation, Arity.One, c =>
        {
            if (c.Size(0) == 0)
            {
                throw c.Emerg("the http2 chunk size cannot be zero");
            }

            c.Warn("\"http2_chunk_size\" is not applied by Portico: Kestrel sizes HTTP/2 DATA frames itself, ignored");
        }) { Module = Name });
        r.Add(new DirectiveSpec("http2_pool_size", Ctx.HttpServer, Arity.One, c =>
        {
            c.Size(0);
            c.Warn("\"http2_pool_size\" means nothing in Portico (no memory pools per connection), ignored");
        }) { Module = Name });
        r.Add(new DirectiveSpec("http2_streams_index_size", Ctx.HttpServer, Arity.One, c =>
        {
            var n = c.Number(0);
            if (n == 0 || (n & (n - 1)) != 0)
            {
                throw c.Error("must be a power of two");
            }
        }) { Module = Name });

        Obsolete(r, "http2_recv_timeout", "client_header_timeout", Ctx.HttpServer, Arity.One);
        Obsolete(r, "http2_idle_timeout", "keepalive_timeout", Ctx.HttpServer, Arity.One);
        Obsolete(r, "http2_max_requests", "keepalive_requests", Ctx.HttpServer, Arity.One);
        Obsolete(r, "http2_max_field_size", "large_client_header_buffers", Ctx.HttpServer, Arity.One);
        Obsolete(r, "http2_max_header_size", "large_client_header_buffers", Ctx.HttpServer, Arity.One);
        Obsolete(r, "http2_max_concurrent_pushes", null, Ctx.HttpServer, Arity.One);
        Obsolete(r, "http2_push", null, Ctx.HttpServerLocation, Arity.One);
        Obsolete(r, "http2_push_preload", null, Ctx.HttpServerLocation, Arity.Flag);

        // ngx_http_v3_module: QUIC needs libmsquic.
        foreach (var (name, ctx, arity) in new[]
        {
            ("http3", Ctx.HttpServer, Arity.Flag),
            ("http3_hq", Ctx.HttpServer, Arity.Flag),
            ("http3_max_concurrent_streams", Ctx.HttpServer, Arity.One),
            ("http3_stream_buffer_size", Ctx.HttpServer, Arity.One),
            ("quic_retry", Ctx.HttpServer, Arity.Flag),
            ("quic_gso", Ctx.HttpServer, Arity.Flag),
            ("quic_host_key", Ctx.HttpServer, Arity.One),
            ("quic_active_connection_id_limit", Ctx.HttpServer, Arity.One),
            ("quic_bpf", Ctx.Main, Arity.Flag),
        })
        {
            r.Add(new DirectiveSpec(name, ctx, arity, c =>
            {
                if (arity.IsFlag && !c.Flag(0))
                {
                    return;
                }

                throw c.Emerg(QuicUnavailable($"the \"{name}\" directive"));
            }) { Module = "http3" });
        }
    }

    private void Obsolete(DirectiveRegistry r, string name, string? replacement, Ctx ctx, Arity arity) =>
        r.Add(new DirectiveSpec(name, ctx, arity, c => c.Warn(replacement is null
            ? $"the \"{name}\" directive is obsolete, ignored"
            : $"the \"{name}\" directive is obsolete, use the \"{replacement}\" directive instead")) { Module = Name });

    public override void CompileHttp(SnapshotBuilder snapshot)
    {
        if (snapshot.Model.Http is not { } http || TlsListenerHook.CanSelectProtocolPerConnection)
        {
            return;
        }

        // Without Kestrel's per-connection protocol selection, cleartext HTTP/2 cannot share a port with HTTP/1.1.
        foreach (var server in http.Servers)
        {
            if (server.Settings.Get<Http2ServerSettings>().Enable == true)
            {
                snapshot.Error("\"http2\" on a port without \"ssl\" needs per-connection protocol selection, which this Kestrel does not offer", server.Source);
                return;
            }
        }
    }

    /// <summary>WebSocket over HTTP/2 (extended CONNECT) is presented to the configuration as the HTTP/1.1 handshake.</summary>
    public override void CompileServer(ServerCompiler server) => server.AddPostRead(WebSocketOverHttp2.Instance);

    public override void RegisterVariables(VariableRegistry v, SnapshotBuilder snapshot)
    {
        v.Register("http2", r => r.Protocol == "HTTP/2.0" ? (r.Http.Request.IsHttps ? "h2" : "h2c") : string.Empty);
    }
}
