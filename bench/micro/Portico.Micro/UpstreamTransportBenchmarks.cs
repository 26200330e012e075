using System.Net;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portico.Compilation;
using Portico.Config;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Logging;
using Portico.Pipeline;
using Portico.Proxy;
using Portico.Upstreams;
using Portico.Upstreams.Transport;
using Portico.Upstreams.Transport.Http1;
using Portico.Variables;

namespace Portico.Micro;

/// <summary>
/// One upstream exchange of a small GET (the bench's 64-byte response, the four forwarding headers) over a
/// keep-alive connection to an in-process origin that allocates nothing per request: what the transport
/// itself costs and allocates per proxied request, Portico's HTTP/1 transport against YARP's forwarder.
/// The request context is reused, so the allocations are the transport's alone.
/// </summary>
[MemoryDiagnoser]
public class UpstreamTransportBenchmarks
{
    private static readonly byte[] Response = Encoding.ASCII.GetBytes(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 64\r\nConnection: keep-alive\r\n\r\n"
        + new string('x', 64));

    private Socket _listener = null!;
    private Http1Pool _pool = null!;
    private UpstreamRequest _request = null!;
    private UpstreamRequest _yarpRequest = null!;
    private YarpTransport _yarp = null!;
    private TransportHandle _yarpHandle = null!;
    private DefaultHttpContext _http = null!;
    private MemoryStream _sink = null!;

    [GlobalSetup]
    public void Setup()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        _ = AcceptAsync();
        var endPoint = (IPEndPoint)_listener.LocalEndPoint!;
        var peer = new UpstreamPeer(endPoint, UpstreamPeer.NameOf(endPoint), new PeerState());
        var options = new UpstreamConnectionOptions(null, false, false, 4096, TimeSpan.FromSeconds(60), 16);
        _pool = new Http1Pool(peer, options);

        var services = new HostServices(new LogWriter(start: false), TimeProvider.System, new EmptyServices());
        var load = new ConfigLoadResult { Paths = new ConfigPaths("/p/", "/p/conf/", "/p/conf/x.conf") };
        var snapshot = new RuntimeSnapshot(1, load, new VariableRegistry(), ErrorLog.Stderr(LogLevel.Emerg), services);
        _http = new DefaultHttpContext();
        _http.Request.Method = "GET";
        _http.Features.Get<IHttpRequestFeature>()!.RawTarget = "/small";
        _sink = new MemoryStream(1024);
        _http.Response.Body = _sink;
        var r = new RequestContext(_http, snapshot, null!, new ClientConnection(IPAddress.Loopback, 1, IPAddress.Loopback, 2));
        KeyValuePair<string, string>[] headers =
        [
            new("Host", "backend"), new("X-Real-IP", "127.0.0.1"), new("X-Forwarded-For", "127.0.0.1"), new("X-Forwarded-Proto", "http"),
            new("User-Agent", "wrk"), new("Accept", "*/*"),
        ];
        _request = Request(r, peer, options, headers);
        _yarpHandle = TransportPool.Get(services.State, new UpstreamRegistry(services.State), peer, options);
        _yarp = new YarpTransport(ProxyModule.Forwarder(new EmptyServices()), _ => _yarpHandle);
        _yarpRequest = Request(r, peer, options, headers);
    }

    private static UpstreamRequest Request(RequestContext r, UpstreamPeer peer, UpstreamConnectionOptions options, IReadOnlyList<KeyValuePair<string, string>> headers) => new()
    {
        Context = r,
        Peer = peer,
        Tls = false,
        Method = "GET",
        Target = "/small",
        Version = UpstreamHttpVersion.Http11,
        Headers = headers,
        Timeouts = new UpstreamTimeouts(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(60)),
        Connection = options,
        Handler = new Handler(),
        State = new UpstreamAttemptState { Peer = peer.Name },
    };

    [Benchmark(Baseline = true)]
    public async Task<UpstreamOutcome> PorticoHttp1()
    {
        _sink.Position = 0;
        return await Http1Transport.SendAsync(_request, _pool);
    }

    [Benchmark]
    public async Task<UpstreamOutcome> Yarp()
    {
        _sink.Position = 0;
        _http.Response.Headers.Clear();
        return await _yarp.SendAsync(_yarpRequest);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _yarpHandle.Dispose();
        _listener.Dispose();
    }

    /// <summary>The origin: answers every request head on a connection with the same bytes, allocating nothing per request.</summary>
    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket s;
            try
            {
                s = await _listener.AcceptAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = ServeAsync(s);
        }
    }

    private static async Task ServeAsync(Socket s)
    {
        var buffer = new byte[16 * 1024];
        var filled = 0;
        try
        {
            while (true)
            {
                var n = await s.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
                if (n == 0)
                {
                    return;
                }

                filled += n;
                int end;
                while ((end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) >= 0)
                {
                    await s.SendAsync(Response, SocketFlags.None);
                    var rest = filled - (end + 4);
                    buffer.AsSpan(end + 4, rest).CopyTo(buffer);
                    filled = rest;
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            s.Dispose();
        }
    }

    private sealed class Handler : IUpstreamResponseHandler
    {
        private static readonly ValueTask<ResponseDisposition> Proxy = ValueTask.FromResult(ResponseDisposition.Proxy);

        public ValueTask<ResponseDisposition> OnResponseHeadAsync(UpstreamResponseHead head) => Proxy;

        public void OnTrailers(IReadOnlyList<KeyValuePair<string, string>> trailers)
        {
        }
    }

    private sealed class EmptyServices : IServiceProvider
    {
        public object? GetService(Type serviceType) => null;
    }
}
