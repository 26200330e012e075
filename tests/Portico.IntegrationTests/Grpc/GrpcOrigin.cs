using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Portico.IntegrationTests.Grpc.Proto;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Grpc;

/// <summary>What the gRPC origin shares with the test: pacing of streams and the TLS names it was asked for.</summary>
public sealed class GrpcOriginState
{
    /// <summary>A paced stream waits for one of these before each message after the first.</summary>
    public Channel<bool> Pace { get; } = Channel.CreateUnbounded<bool>();

    public List<string?> ServerNames { get; } = [];

    /// <summary>Calls that reached the origin.</summary>
    public int Calls;
}

/// <summary>A Kestrel gRPC origin (Grpc.AspNetCore) serving the test's Echo service over h2c or TLS with ALPN h2.</summary>
public sealed class GrpcOrigin : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcOrigin(WebApplication app, int port, GrpcOriginState state)
    {
        _app = app;
        Port = port;
        State = state;
    }

    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";
    public GrpcOriginState State { get; }

    public static async Task<GrpcOrigin> StartAsync(X509Certificate2? certificate = null, string? unixSocket = null)
    {
        var port = unixSocket is null ? TestPorts.GetFree() : 0;
        var state = new GrpcOriginState();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(state);
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (unixSocket is not null)
            {
                k.ListenUnixSocket(unixSocket, Configure);
            }
            else
            {
                k.Listen(IPAddress.Loopback, port, Configure);
            }
        });

        void Configure(ListenOptions lo)
        {
            lo.Protocols = HttpProtocols.Http2;
            if (certificate is not null)
            {
                lo.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificateSelector = (_, name) =>
                    {
                        lock (state.ServerNames)
                        {
                            state.ServerNames.Add(name);
                        }

                        return certificate;
                    },
                });
            }
        }

        var app = builder.Build();
        app.MapGrpcService<EchoService>();
        await app.StartAsync();
        return new GrpcOrigin(app, port, state);
    }

    /// <summary>A certificate the origin can serve (a PKCS#12 round trip makes the key usable for TLS).</summary>
    public static X509Certificate2 Usable(X509Certificate2 issued) =>
        X509CertificateLoader.LoadPkcs12(issued.Export(X509ContentType.Pkcs12), null);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>The Echo service: replies describe what reached the origin.</summary>
public sealed class EchoService(GrpcOriginState state) : Echo.EchoBase
{
    private static readonly string[] Reported = ["te", "content-type", "user-agent", "x-custom", "x-from", "grpc-timeout", "x-forwarded-for", "connection"];

    private static EchoReply Describe(ServerCallContext context, string text, int index)
    {
        var http = context.GetHttpContext();
        var reply = new EchoReply
        {
            Text = text,
            Index = index,
            Authority = http.Request.Host.Value ?? string.Empty,
            Path = http.Request.Path.Value ?? string.Empty,
            Scheme = http.Request.Scheme,
            Protocol = http.Request.Protocol,
            Connection = http.Connection.Id,
        };
        foreach (var name in Reported)
        {
            if (http.Request.Headers.TryGetValue(name, out var value))
            {
                reply.Headers[name] = value.ToString();
            }
        }

        return reply;
    }

    public override async Task<EchoReply> Unary(EchoRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref state.Calls);
        if (request.FailCode != 0)
        {
            throw new RpcException(new Status((StatusCode)request.FailCode, "origin says " + request.Text));
        }

        await context.WriteResponseHeadersAsync(new Metadata { { "x-origin-header", "head" }, { "x-secret", "hidden" } });
        context.ResponseTrailers.Add("x-origin-trailer", "tail");
        return Describe(context, "echo:" + request.Text, 0);
    }

    public override async Task Count(CountRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        Interlocked.Increment(ref state.Calls);
        for (var i = 0; i < request.Count; i++)
        {
            if (i > 0 && request.Paced)
            {
                await state.Pace.Reader.ReadAsync(context.CancellationToken);
            }

            if (request.AbortAfter > 0 && request.AbortAfter == i)
            {
                context.GetHttpContext().Abort();
                return;
            }

            await responseStream.WriteAsync(Describe(context, "n" + i, i));
        }

        context.ResponseTrailers.Add("x-origin-trailer", "streamed");
    }

    public override async Task<EchoReply> Collect(IAsyncStreamReader<EchoRequest> requestStream, ServerCallContext context)
    {
        Interlocked.Increment(ref state.Calls);
        var texts = new List<string>();
        await foreach (var item in requestStream.ReadAllAsync(context.CancellationToken))
        {
            texts.Add(item.Text);
        }

        return Describe(context, string.Join(",", texts), texts.Count);
    }
}
