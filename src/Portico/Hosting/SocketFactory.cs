using System.Net;
using System.Net.Sockets;
using Portico.Config.Model;

namespace Portico.Hosting;

/// <summary>Creates listening sockets with nginx's listen options (reuseport, ipv6only, buffers, deferred, fastopen, keepalive).</summary>
internal static class SocketFactory
{
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;
    private const int SoReusePort = 15;
    private const int IpProtoTcp = 6;
    private const int TcpDeferAccept = 9;
    private const int TcpFastOpen = 23;

    public static Socket CreateListenSocket(EndPoint endpoint, ListenSpec listen)
    {
        Socket socket;
        if (endpoint is UnixDomainSocketEndPoint)
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        }
        else
        {
            socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            // SO_REUSEADDR only: .NET's ReuseAddress option also sets SO_REUSEPORT on Linux, which would let a
            // second process bind the same port silently (nginx fails with "Address already in use").
            socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6)
            {
                // nginx's default is ipv6only=on.
                socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.IPv6Only, listen.Ipv6Only ?? true);
            }

            if (listen.ReusePort)
            {
                socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
            }

            if (listen.Deferred)
            {
                socket.SetRawSocketOption(IpProtoTcp, TcpDeferAccept, BitConverter.GetBytes(1));
            }

            if (listen.FastOpen is { } fastOpen)
            {
                socket.SetRawSocketOption(IpProtoTcp, TcpFastOpen, BitConverter.GetBytes(fastOpen));
            }

            if (listen.SoKeepalive is { } keepalive)
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, keepalive);
            }
        }

        if (listen.RcvBuf is { } rcv)
        {
            socket.ReceiveBufferSize = rcv;
        }

        if (listen.SndBuf is { } snd)
        {
            socket.SendBufferSize = snd;
        }

        try
        {
            socket.Bind(endpoint);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return socket;
    }
}
