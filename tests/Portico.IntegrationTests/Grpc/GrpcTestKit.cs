using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Grpc.Net.Client;
using Portico.IntegrationTests.Grpc.Proto;

namespace Portico.IntegrationTests.Grpc;

/// <summary>gRPC clients (Grpc.Net.Client) pinned to a loopback port, over h2c or TLS.</summary>
public static class GrpcTestKit
{
    /// <summary>A client for http://127.0.0.1:port (h2c with prior knowledge) or https://NAME:port (TLS, any certificate).</summary>
    public static (Echo.EchoClient Client, GrpcChannel Channel) Client(int port, bool tls = false, string name = "localhost")
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        };
        var address = tls ? $"https://{name}:{port}" : $"http://127.0.0.1:{port}";
        var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        return (new Echo.EchoClient(channel), channel);
    }

    /// <summary>A deadline for calls, so a broken build fails instead of hanging.</summary>
    public static DateTime Deadline => DateTime.UtcNow.AddSeconds(20);
}
