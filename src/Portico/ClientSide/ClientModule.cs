using System.Buffers;
using System.Globalization;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Hosting;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.ClientSide;

/// <summary>
/// The client side of ngx_http_core_module: request body limits and buffering, client timeouts and
/// keepalive. Kestrel's own limits carry what maps onto them (keepalive_timeout, client_header_timeout);
/// the rest is enforced per request by Portico.
/// </summary>
public sealed class ClientModule : PorticoModule
{
    private static readonly Pipeline.RequestKey DiscardKey = new();
    private static readonly Pipeline.RequestKey LocationUriKey = new();

    public override string Name => "http_core";

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<ClientSettings>(SettingsScope.Location);
        r.AddSettings<ClientServerSettings>(SettingsScope.Server);
        const Ctx loc = Ctx.HttpServerLocation;
        r.Add(new DirectiveSpec("client_max_body_size", loc, Arity.One, c => c.Loc<ClientSettings>().MaxBodySize = c.Offset(0)) { Module = Name });
        r.Add(new DirectiveSpec("client_body_buffer_size", loc, Arity.One, c => c.Loc<ClientSettings>().BodyBufferSize = c.Size(0)) { Module = Name });
        r.Add(new DirectiveSpec("client_body_temp_path", loc, Arity.Range(1, 4), c => c.Loc<ClientSettings>().BodyTempPath = TempFiles.Parse(c)) { Module = Name });
        r.Add(new DirectiveSpec("client_body_in_file_only", loc, Arity.One, InFileOnly) { Module = Name });
        r.Add(new DirectiveSpec("client_body_in_single_buffer", loc, Arity.Flag, c => c.Loc<ClientSettings>().InSingleBuffer = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("client_body_timeout", loc, Arity.One, c => c.Loc<ClientSettings>().BodyTimeout = c.Time(0)) { Module = Name });
        r.Add(new DirectiveSpec("send_timeout", loc, Arity.One, c => c.Loc<ClientSettings>().SendTimeout = c.Time(0)) { Module = Name });
        r.Add(new DirectiveSpec("keepalive_timeout", loc, Arity.Range(1, 2), KeepaliveTimeout) { Module = Name });
        r.Add(new DirectiveSpec("keepalive_requests", loc, Arity.One, c => c.Loc<ClientSettings>().KeepaliveRequests = c.Number(0)) { Module = Name });
        r.Add(new DirectiveSpec("client_header_timeout", Ctx.HttpServer, Arity.One, c => c.Loc<ClientServerSettings>().HeaderTimeout = c.Time(0)) { Module = Name });
        r.Add(new DirectiveSpec("underscores_in_headers", Ctx.HttpServer, Arity.Flag, c => c.Loc<ClientServerSettings>().UnderscoresInHeaders = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("ignore_invalid_headers", Ctx.HttpServer, Arity.Flag, c => c.Loc<ClientServerSettings>().IgnoreInvalidHeaders = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("client_header_buffer_size", Ctx.HttpServer, Arity.One, c => c.Loc<ClientServerSettings>().HeaderBufferSize = c.Size(0)) { Module = Name });
        r.Add(new DirectiveSpec("large_client_header_buffers", Ctx.HttpServer, Arity.Two, HeaderBuffers.LargeClientHeaderBuffers) { Module = Name });
    }

    private static void InFileOnly(DirectiveCall c)
    {
        c.Loc<ClientSettings>().InFileOnly = c[0] switch
        {
            "on" => BodyInFileOnly.On,
            "clean" => BodyInFileOnly.Clean,
            "off" => BodyInFileOnly.Off,
            _ => throw c.Emerg($"invalid value \"{c[0]}\""),
        };
    }

    /// <summary>keepalive_timeout timeout [header_timeout] (ngx_http_core_keepalive).</summary>
    private static void KeepaliveTimeout(DirectiveCall c)
    {
        var s = c.Loc<ClientSettings>();
        s.KeepaliveTimeout = c.Time(0);
        if (c.Count == 2)
        {
            s.KeepaliveHeader = c.Seconds(1);
        }

        s.KeepaliveSet = true;
    }

    public override void RegisterVariables(VariableRegistry v, SnapshotBuilder snapshot)
    {
        v.Register("request_body", r => ClientBody.Of(r)?.Text, cacheable: false);
        v.Register("request_body_file", r => ClientBody.Of(r)?.FileName, cacheable: false);
    }

    public override void CompileLocation(LocationCompiler location)
    {
        var s = location.Settings<ClientSettings>();
        if (s.BodyTempPath is { } path && TempFiles.Ensure(path) is { } error)
        {
            location.Snapshot.Error(error, location.Block?.Source ?? location.Server.Block.Source);
        }

        if (location.Block is { Kind: LocationKind.If or LocationKind.LimitExcept })
        {
            return;
        }

        location.Add(Phase.Rewrite, new ClientLimits(s));
        if (s.KeepaliveHeader is { } header && s.KeepaliveTimeout > TimeSpan.Zero)
        {
            location.AddHeaderFilter(new KeepAliveHeader("timeout=" + header.ToString(CultureInfo.InvariantCulture)));
        }
    }

    /// <summary>nginx's checks of the request head against client_header_buffer_size and large_client_header_buffers.</summary>
    public override void CompileServer(ServerCompiler server) => server.AddPostRead(new HeaderBuffers.Check(server.Settings<ClientServerSettings>()));

    public override void CompleteSnapshot(SnapshotBuilder snapshot) => snapshot.Snapshot.ListenerHooks.Add(ListenerLimits.Instance);

    /// <summary>The default temporary directory of client bodies: prefix/client_body_temp.</summary>
    public static TempPath DefaultTempPath(RuntimeSnapshot snapshot) =>
        new(snapshot.Load.Paths.FromPrefix("client_body_temp"), []);

    /// <summary>After a 413 the body is being discarded; nginx checks client_max_body_size no more.</summary>
    public static void MarkBodyDiscarded(RequestContext r) => r.SetItem(DiscardKey, DiscardKey);

    public static bool BodyDiscarded(RequestContext r) => r.GetItem<object>(DiscardKey) is not null;

    /// <summary>Remembers the URI when a location is entered, to know later whether a rewrite changed it there.</summary>
    public static void EnterLocation(RequestContext r) => r.SetItem(LocationUriKey, r.Uri);

    /// <summary>
    /// nginx's r->valid_location: false once "rewrite ... break" (or a rewrite followed by "break") changed the
    /// URI inside the location; proxy_pass then ignores its URI part and sends the URI as rewritten.
    /// </summary>
    public static bool ValidLocation(RequestContext r) =>
        r.GetItem<string>(LocationUriKey) is not { } entered || string.Equals(entered, r.Uri, StringComparison.Ordinal);

    /// <summary>
    /// nginx's header name check (ngx_http_parse_header_line): letters, digits and "-" are valid, "_" only
    /// with underscores_in_headers on.
    /// </summary>
    public static bool IsValidHeaderName(string name, bool underscores) =>
        name.Length > 0 && name.AsSpan().IndexOfAnyExcept(underscores ? NameCharsWithUnderscore : NameChars) < 0;

    private const string NameCharList = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// <summary>Letters, digits and '-': what nginx accepts in a header name without underscores_in_headers.</summary>
    private static readonly SearchValues<char> NameChars = SearchValues.Create(NameCharList);

    private static readonly SearchValues<char> NameCharsWithUnderscore = SearchValues.Create(NameCharList + "_");

    /// <summary>
    /// What nginx does right after the location is found (ngx_http_core_find_config_handler and
    /// ngx_http_update_location_config): keepalive per location, client_max_body_size against Content-Length,
    /// and send_timeout for what is written to the client.
    /// </summary>
    private sealed class ClientLimits : PhaseHandler
    {
        private readonly long _maxBody;
        private readonly TimeSpan _sendTimeout;
        private readonly bool _noKeepalive;
        private readonly long _keepaliveRequests;

        public ClientLimits(ClientSettings s)
        {
            _maxBody = s.MaxBodySize ?? 0;
            _sendTimeout = s.SendTimeout ?? TimeSpan.FromSeconds(60);
            _noKeepalive = s.KeepaliveTimeout is { } t && t <= TimeSpan.Zero;
            _keepaliveRequests = s.KeepaliveRequests ?? 1000;
        }

        public override ValueTask<Flow> InvokeAsync(RequestContext r)
        {
            EnterLocation(r);
            TimedResponseBodyFeature.Install(r, _sendTimeout);
            if (_noKeepalive || r.Connection.Requests >= _keepaliveRequests)
            {
                r.CloseConnection = true;
            }

            if (_maxBody > 0 && r.Http.Request.ContentLength is { } length && length > _maxBody && !BodyDiscarded(r))
            {
                r.LogError(LogLevel.Error, "client intended to send too large body: " + length.ToString(CultureInfo.InvariantCulture) + " bytes");
                MarkBodyDiscarded(r);
                return ValueTask.FromResult(r.Finish(413));
            }

            return ValueTask.FromResult(Flow.Continue);
        }
    }

    private sealed class KeepAliveHeader(string value) : HeaderFilter
    {
        public override void Apply(RequestContext r)
        {
            if (!r.CloseConnection)
            {
                r.Http.Response.Headers["Keep-Alive"] = value;
            }
        }
    }

    /// <summary>Kestrel's per-socket limits from the socket's default server (nginx reads headers before it knows the server).</summary>
    private sealed class ListenerLimits : IListenerHook
    {
        public static readonly ListenerLimits Instance = new();

        public void ApplyLimits(KestrelServerOptions options, RuntimeSnapshot snapshot, BoundSocket socket)
        {
            if (socket.Addresses.Count == 0)
            {
                return;
            }

            var server = socket.Addresses[0].Default.Settings;
            var header = server.Get<ClientServerSettings>().HeaderTimeout ?? TimeSpan.FromSeconds(60);
            var keepalive = server.Get<ClientSettings>().KeepaliveTimeout ?? TimeSpan.FromSeconds(75);
            options.Limits.RequestHeadersTimeout = header > TimeSpan.Zero ? header : TimeSpan.FromMilliseconds(1);
            HeaderBuffers.ApplyLimits(options, server.Get<ClientServerSettings>());
            if (keepalive > TimeSpan.Zero)
            {
                options.Limits.KeepAliveTimeout = keepalive;
            }
        }

        public void ConfigureEndpoint(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listenOptions, BoundSocket socket, RuntimeSnapshot snapshot, PorticoHost host)
        {
        }
    }
}
