using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portico.Pipeline;

namespace Portico.Tls;

/// <summary>
/// WebSocket over HTTP/2 (RFC 8441): Kestrel hands an extended CONNECT with ":protocol: websocket" to the
/// application. Portico presents it as the HTTP/1.1 handshake it stands for, right after the server is chosen:
/// GET with "Upgrade: websocket", "Connection: upgrade" and the Sec-WebSocket-Key an HTTP/2 client does not send,
/// an upgradable request without a body. The usual nginx WebSocket configuration then proxies it as an HTTP/1.1
/// Upgrade to the origin, whichever transport carries it, and accepting the upgrade answers the HTTP/2 client
/// with 200 and the stream as the tunnel.
/// </summary>
internal sealed class WebSocketOverHttp2 : PhaseHandler
{
    public static readonly WebSocketOverHttp2 Instance = new();

    private const string WebSocket = "websocket";

    public override ValueTask<Flow> InvokeAsync(RequestContext r)
    {
        if (r.Protocol != "HTTP/2.0")
        {
            return ValueTask.FromResult(Flow.Continue);
        }

        var features = r.Http.Features;
        var connect = features.Get<IHttpExtendedConnectFeature>();
        if (connect is not { IsExtendedConnect: true })
        {
            return ValueTask.FromResult(Flow.Continue);
        }

        if (!WebSocket.Equals(connect.Protocol, StringComparison.OrdinalIgnoreCase))
        {
            // nginx knows no ":protocol" at all; Portico only WebSocket's.
            r.LogError(Config.Syntax.LogLevel.Info, "client sent unknown pseudo-header \":protocol\"");
            return ValueTask.FromResult(r.Finish(StatusCodes.Status400BadRequest));
        }

        var headers = r.Http.Request.Headers;
        headers.Upgrade = WebSocket;
        headers.Connection = "upgrade";
        if (headers.SecWebSocketKey.Count == 0)
        {
            // An HTTP/1.1 origin needs a key; an HTTP/2 client sends none (RFC 8441 section 5).
            headers.SecWebSocketKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        }

        // $request keeps the line as received ("CONNECT /path HTTP/2.0"); $request_method and the exchange see GET.
        r.RequestLine = r.RequestLine;
        r.Http.Request.Method = HttpMethods.Get;
        r.Method = HttpMethods.Get;
        var tunnel = new Tunnel(r, connect);
        features.Set<IHttpExtendedConnectFeature>(tunnel);
        features.Set<IHttpUpgradeFeature>(tunnel);
        // Nothing is read before the tunnel opens: the stream's data belongs to the WebSocket.
        features.Set<IHttpRequestBodyDetectionFeature>(NoBody.Instance);
        return ValueTask.FromResult(Flow.Continue);
    }

    /// <summary>Both ways in: the HTTP/1.1 upgrade the proxy asks for, and the extended CONNECT Kestrel accepts.</summary>
    private sealed class Tunnel(RequestContext r, IHttpExtendedConnectFeature inner) : IHttpExtendedConnectFeature, IHttpUpgradeFeature
    {
        public bool IsExtendedConnect => true;

        public string? Protocol => inner.Protocol;

        public bool IsUpgradableRequest => true;

        public async ValueTask<Stream> AcceptAsync()
        {
            // The origin's 101 becomes the HTTP/2 200; its connection-level headers mean nothing on a stream.
            var response = r.Http.Response;
            response.Headers.Remove("Upgrade");
            response.Headers.Remove("Connection");
            response.Headers.Remove("Sec-WebSocket-Accept");
            response.StatusCode = StatusCodes.Status200OK;
            r.Status = StatusCodes.Status200OK;
            return await inner.AcceptAsync().ConfigureAwait(false);
        }

        public Task<Stream> UpgradeAsync() => AcceptAsync().AsTask();
    }

    private sealed class NoBody : IHttpRequestBodyDetectionFeature
    {
        public static readonly NoBody Instance = new();

        public bool CanHaveBody => false;
    }
}
