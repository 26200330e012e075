using System.Diagnostics.CodeAnalysis;
using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Portico.Compilation;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Hosting;
using Portico.Routing;

namespace Portico.Tls;

/// <summary>
/// How Portico serves a socket's connections for TLS and HTTP/2: a connection middleware looks at the first
/// bytes (a TLS ClientHello, a plain HTTP request on an ssl port, or the HTTP/2 preface on a plain port),
/// then Kestrel's TLS (SslStream, options chosen per connection from the current snapshot and SNI) and
/// Kestrel's HTTP/1.1 or HTTP/2. Nothing here rebinds: certificates and protocols follow the snapshot.
/// </summary>
public sealed class TlsListenerHook : IListenerHook
{
    private const string ProtocolsFeatureName = "Microsoft.AspNetCore.Server.Kestrel.Core.Internal.HttpProtocolsFeature";

    private static readonly Type? ProtocolsFeatureType = FindProtocolsFeature();

    private static readonly object? Http1Feature = CreateProtocolsFeature(HttpProtocols.Http1);
    private static readonly object? Http2Feature = CreateProtocolsFeature(HttpProtocols.Http2);

    // Kestrel's internal per-connection protocol choice, kept by the trimmer for Native AOT.
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicConstructors, ProtocolsFeatureName, "Microsoft.AspNetCore.Server.Kestrel.Core")]
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "The type is kept by the DynamicDependency above.")]
    private static Type? FindProtocolsFeature() => typeof(KestrelServerOptions).Assembly.GetType(ProtocolsFeatureName);

    [UnconditionalSuppressMessage("Trimming", "IL2077", Justification = "The constructors are kept by the DynamicDependency on FindProtocolsFeature.")]
    private static object? CreateProtocolsFeature(HttpProtocols protocols) =>
        ProtocolsFeatureType is null ? null : Activator.CreateInstance(ProtocolsFeatureType, protocols);

    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    /// <summary>Largest ClientHello looked at for certificate choice (nginx reads up to 16k records too).</summary>
    private const int MaxHello = 32 * 1024;

    /// <summary>nginx's client_header_timeout default, which bounds the TLS handshake as well.</summary>
    private static readonly TimeSpan FirstBytesTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Kestrel can choose HTTP/1.1 or HTTP/2 per connection (needed for cleartext HTTP/2 beside HTTP/1.1).</summary>
    public static bool CanSelectProtocolPerConnection => ProtocolsFeatureType is not null;

    public void ApplyLimits(KestrelServerOptions options, RuntimeSnapshot snapshot, BoundSocket socket)
    {
        var server = socket.Addresses[0].Default;
        var h2 = server.Settings.Get<Http2ServerSettings>();
        var main = snapshot.Model.Http?.Settings.Get<Http2MainSettings>();
        var limits = options.Limits.Http2;
        limits.MaxStreamsPerConnection = (int)Math.Clamp(h2.MaxConcurrentStreams ?? 128, 1, int.MaxValue);
        // nginx announces http2_body_preread_size as the stream window and buffers http2_recv_buffer_size per
        // connection; Kestrel's windows are the closest limits (it needs at least 65535 bytes for each).
        limits.InitialStreamWindowSize = (int)Math.Clamp(h2.BodyPrereadSize ?? 65536, 65535, int.MaxValue - 1);
        limits.InitialConnectionWindowSize = (int)Math.Clamp(
            Math.Max(main?.RecvBufferSize ?? 256 * 1024, limits.InitialStreamWindowSize), 65535, int.MaxValue - 1);
    }

    public void ConfigureEndpoint(ListenOptions listenOptions, BoundSocket socket, RuntimeSnapshot snapshot, PorticoHost host)
    {
        // Plain sockets stay HTTP/1.1 by default (cleartext HTTP/2 is chosen per connection below); TLS
        // sockets offer both and ALPN decides.
        listenOptions.Protocols = socket.Ssl ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http1;
        var key = socket.Key;
        var http = new HttpDelegate();
        listenOptions.Use(next => new FirstBytes(next, http, key, socket.Ssl, snapshot, host).OnConnectionAsync);
        if (socket.Ssl)
        {
            listenOptions.UseHttps(new TlsHandshakeCallbackOptions
            {
                OnConnection = OnHandshake,
                HandshakeTimeout = FirstBytesTimeout,
            });
        }

        listenOptions.Use(next =>
        {
            http.Next = next;
            return next;
        });
    }

    private sealed class HttpDelegate
    {
        public ConnectionDelegate Next { get; set; } = _ => Task.CompletedTask;
    }

    /// <summary>The connection middleware that looks at the first bytes before TLS or HTTP starts.</summary>
    private sealed class FirstBytes
    {
        private readonly ConnectionDelegate _next;
        private readonly HttpDelegate _http;
        private readonly string _key;
        private readonly bool _ssl;
        private readonly RuntimeSnapshot _started;
        private readonly PorticoHost _host;

        public FirstBytes(ConnectionDelegate next, HttpDelegate http, string key, bool ssl, RuntimeSnapshot started, PorticoHost host)
        {
            _next = next;
            _http = http;
            _key = key;
            _ssl = ssl;
            _started = started;
            _host = host;
        }

        public Task OnConnectionAsync(ConnectionContext context)
        {
            var snapshot = _host.Current ?? _started;
            if (!snapshot.Listeners.TryGetValue(_key, out var listener))
            {
                snapshot = _started;
                listener = snapshot.Listeners[_key];
            }

            var local = (context.LocalEndPoint as IPEndPoint)?.Address;
            var address = listener.ForLocal(local);
            var tls = snapshot.Feature<TlsRuntime>();
            if (_ssl)
            {
                return SslAsync(context, NewState(context, snapshot, address));
            }

            var h2 = tls is not null && (address.Config.Http2 || tls.For(address.Names.Default.Block).Http2);
            if (h2 && CanSelectProtocolPerConnection)
            {
                return CleartextAsync(context, NewState(context, snapshot, address));
            }

            // Plain HTTP/1.x: nothing to look at, and no frame of this middleware stays for the connection's life.
            // Nor any TLS state: the $ssl_* variables and the request checks read a missing state as plain.
            SetProtocols(context, Http1Feature);
            return _next(context);
        }

        private static TlsConnectionState NewState(ConnectionContext context, RuntimeSnapshot snapshot, AddressRuntime address)
        {
            var state = new TlsConnectionState(snapshot, address);
            context.Items[TlsConnectionState.Key] = state;
            return state;
        }

        private async Task SslAsync(ConnectionContext context, TlsConnectionState state)
        {
            var first = await PeekAsync(context, ssl: true).ConfigureAwait(false);
            if (first.Data is null)
            {
                return;
            }

            if (first.Tls)
            {
                state.Hello = first.Hello;
                await _next(context).ConfigureAwait(false);
                return;
            }

            // nginx reads the plain request and answers it with 497 (a 400 page, or error_page 497).
            state.PlainOnSslPort = true;
            SetProtocols(context, Http1Feature);
            await _http.Next(context).ConfigureAwait(false);
        }

        /// <summary>A plain socket with http2 on: the client's preface chooses h2c or HTTP/1.1.</summary>
        private async Task CleartextAsync(ConnectionContext context, TlsConnectionState state)
        {
            var first = await PeekAsync(context, ssl: false).ConfigureAwait(false);
            if (first.Data is null)
            {
                return;
            }

            state.H2c = first.Http2Preface;
            SetProtocols(context, first.Http2Preface ? Http2Feature : Http1Feature);
            await _next(context).ConfigureAwait(false);
        }

        private static void SetProtocols(ConnectionContext context, object? feature)
        {
            if (feature is not null)
            {
                context.Features[ProtocolsFeatureType!] = feature;
            }
        }

        private readonly record struct First(byte[]? Data, bool Tls, bool Http2Preface, ClientHello? Hello);

        /// <summary>Reads without consuming until the first bytes decide; null data when the client went away.</summary>
        private static async Task<First> PeekAsync(ConnectionContext context, bool ssl)
        {
            var input = context.Transport.Input;
            using var timeout = new CancellationTokenSource(FirstBytesTimeout);
            try
            {
                while (true)
                {
                    var result = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
                    var buffer = result.Buffer;
                    if (buffer.IsEmpty)
                    {
                        input.AdvanceTo(buffer.Start, buffer.End);
                        if (result.IsCompleted)
                        {
                            return default;
                        }

                        continue;
                    }

                    var decided = Decide(buffer, ssl, result.IsCompleted);
                    if (decided is { } d)
                    {
                        input.AdvanceTo(buffer.Start);
                        return d;
                    }

                    input.AdvanceTo(buffer.Start, buffer.End);
                }
            }
            catch (OperationCanceledException)
            {
                context.Abort();
                return default;
            }
            catch (Exception e) when (e is IOException or ConnectionResetException or ConnectionAbortedException or InvalidOperationException)
            {
                return default;
            }
        }

        private static First? Decide(ReadOnlySequence<byte> buffer, bool ssl, bool completed)
        {
            var b0 = buffer.FirstSpan[0];
            if (ssl)
            {
                if (b0 != 0x16 && (b0 & 0x80) == 0)
                {
                    return new First([b0], false, false, null);
                }

                var needed = ClientHello.NeededLength(buffer);
                if (needed < 0 || completed || buffer.Length >= Math.Min(needed + 64, MaxHello) || buffer.Length >= MaxHello)
                {
                    return new First([b0], true, false, needed < 0 ? null : ClientHello.TryParse(buffer));
                }

                if (needed <= buffer.Length)
                {
                    var hello = ClientHello.TryParse(buffer);
                    if (hello is not null)
                    {
                        return new First([b0], true, false, hello);
                    }
                }

                return null;
            }

            var n = (int)Math.Min(buffer.Length, Preface.Length);
            Span<byte> head = stackalloc byte[Preface.Length];
            buffer.Slice(0, n).CopyTo(head);
            if (!head[..n].SequenceEqual(Preface.AsSpan(0, n)))
            {
                return new First([b0], false, false, null);
            }

            if (n == Preface.Length)
            {
                return new First([b0], false, true, null);
            }

            return completed ? new First([b0], false, false, null) : null;
        }
    }

    /// <summary>Kestrel's TLS callback: the SslStream options for this connection, from SNI and the snapshot.</summary>
    private static async ValueTask<SslServerAuthenticationOptions> OnHandshake(TlsHandshakeCallbackContext context)
    {
        if (context.Connection.Items.TryGetValue(TlsConnectionState.Key, out var value) is false || value is not TlsConnectionState state)
        {
            throw new AuthenticationException("no connection state");
        }

        state.Stream = context.SslStream;
        var runtime = state.Snapshot.Feature<TlsRuntime>()!;
        var names = state.Address.Names;
        var server = names.Default;
        var sni = context.ClientHelloInfo.ServerName;
        if (!string.IsNullOrEmpty(sni))
        {
            state.ServerName = sni;
            if (UriNormalizer.TryNormalizeHost(sni, out var host) && host.Length > 0)
            {
                var found = names.Find(host, out _);
                if (found != names.Default || Matches(found, host))
                {
                    server = found;
                    state.MatchedServerName = host;
                }
            }
        }

        var selected = runtime.For(server.Block);
        if (selected.RejectHandshake)
        {
            throw new AuthenticationException("ssl_reject_handshake");
        }

        var defaultTls = runtime.For(names.Default.Block);
        var tls = selected.HasContext ? selected : defaultTls;
        state.Negotiated = tls;

        if (tls.VariableCertificates is null && tls.Contexts.Length == 0)
        {
            throw new AuthenticationException("no certificate for this server");
        }

        var certificate = tls.VariableCertificates is not null
            ? await LoadVariableCertificateAsync(tls, state, context).ConfigureAwait(false)
            : tls.Contexts[ClientHello.Choose(tls.Certificates, state.Hello, (tls.Protocols & SslProtocols.Tls13) != 0)];

        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = certificate,
            EnabledSslProtocols = tls.Protocols,
            ApplicationProtocols = state.Address.Config.Http2 || selected.Http2 ? H2AndHttp11 : Http11Only,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
            AllowTlsResume = tls.AllowResume,
            // SNI does not change the cipher list in nginx: the default server's applies.
            CipherSuitesPolicy = defaultTls.Ciphers,
        };

        if (tls.Verify != VerifyClient.Off)
        {
            options.ClientCertificateRequired = true;
            options.RemoteCertificateValidationCallback = state.Validate;
            options.CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                DisableCertificateDownloads = true,
                RevocationMode = X509RevocationMode.NoCheck,
            };
        }

        return options;
    }

    private static readonly List<SslApplicationProtocol> H2AndHttp11 = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];
    private static readonly List<SslApplicationProtocol> Http11Only = [SslApplicationProtocol.Http11];

    private static bool Matches(ServerRuntime server, string host)
    {
        foreach (var n in server.Block.Names)
        {
            if (n.Kind == ServerNameKind.Exact && n.Name == host)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// ssl_certificate with variables: nginx loads the files on every handshake. Portico reads them
    /// asynchronously and keeps the result for the snapshot's lifetime keyed by file names and modification times.
    /// </summary>
    private static async Task<SslStreamCertificateContext> LoadVariableCertificateAsync(ServerTls tls, TlsConnectionState state, TlsHandshakeCallbackContext context)
    {
        var loaded = new List<(LoadedCertificate Cert, SslStreamCertificateContext Context)>();
        foreach (var (certTemplate, keyTemplate) in tls.VariableCertificates!)
        {
            var certPath = Expand(certTemplate, state, context.Connection);
            var keyPath = Expand(keyTemplate, state, context.Connection);
            certPath = tls.ConfPrefix is { } p1 && !certPath.StartsWith('/') && !certPath.StartsWith("data:", StringComparison.Ordinal) ? p1 + certPath : certPath;
            keyPath = tls.ConfPrefix is { } p2 && !keyPath.StartsWith('/') && !keyPath.StartsWith("data:", StringComparison.Ordinal) ? p2 + keyPath : keyPath;
            var cacheKey = certPath + "|" + keyPath + "|" + Stamp(certPath) + "|" + Stamp(keyPath);
            var cache = tls.VariableCache;
            if (cache.Count > 1000)
            {
                cache.Clear();
            }

            try
            {
                var task = cache.GetOrAdd(cacheKey, _ => Task.Run(() =>
                {
                    var c = CertificateLoader.Load(certPath, keyPath, tls.Passwords);
                    return SslStreamCertificateContext.Create(c.Leaf, c.Chain, offline: true, trust: tls.SentTrust);
                }));
                var ctx = await task.ConfigureAwait(false);
                loaded.Add((new LoadedCertificate(ctx.TargetCertificate, [], certPath), ctx));
            }
            catch (ConfigException e)
            {
                cache.TryRemove(cacheKey, out _);
                state.Snapshot.ErrorLog.Write(LogLevel.Error, e.Message + " while SSL handshaking");
                throw new AuthenticationException(e.Message);
            }
        }

        var index = ClientHello.Choose([.. loaded.Select(l => l.Cert)], state.Hello, (tls.Protocols & SslProtocols.Tls13) != 0);
        return loaded[index].Context;
    }

    private static string Stamp(string path)
    {
        try
        {
            return File.GetLastWriteTimeUtc(path).Ticks.ToString(CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "-";
        }
    }

    /// <summary>Evaluates a certificate path template with the connection variables known at handshake time.</summary>
    private static string Expand(ValueTemplate template, TlsConnectionState state, ConnectionContext connection)
    {
        var sb = new StringBuilder();
        foreach (var part in template.Parts)
        {
            if (part.Kind == TemplatePartKind.Literal)
            {
                sb.Append(part.Text);
                continue;
            }

            sb.Append(part.Text switch
            {
                "ssl_server_name" => state.ServerName ?? string.Empty,
                "server_addr" => (connection.LocalEndPoint as IPEndPoint)?.Address.ToString(),
                "server_port" => (connection.LocalEndPoint as IPEndPoint)?.Port.ToString(CultureInfo.InvariantCulture),
                "remote_addr" => (connection.RemoteEndPoint as IPEndPoint)?.Address.ToString(),
                "remote_port" => (connection.RemoteEndPoint as IPEndPoint)?.Port.ToString(CultureInfo.InvariantCulture),
                _ => string.Empty,
            });
        }

        return sb.ToString();
    }

    /// <summary>Variables an ssl_certificate path may use (known before any request).</summary>
    public static bool IsHandshakeVariable(string name) => name is "ssl_server_name" or "server_addr" or "server_port" or "remote_addr" or "remote_port";
}
