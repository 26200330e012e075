using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Portico.Compilation;
using Portico.Config.Model;

namespace Portico.Hosting;

/// <summary>
/// One listening socket served by its own Kestrel server, so sockets can be added and removed on reload
/// without touching the others. Requests read the host's current snapshot.
/// </summary>
internal sealed class KestrelListener
{
    private readonly KestrelServer _server;
    private readonly KestrelServerOptions _options;

    private KestrelListener(BoundSocket socket, KestrelServer server, KestrelServerOptions options, RuntimeSnapshot snapshot)
    {
        Socket = socket;
        _server = server;
        _options = options;
        LastSnapshot = snapshot;
        Signature = SignatureOf(socket);
    }

    public BoundSocket Socket { get; private set; }
    public string Key => Socket.Key;

    /// <summary>The options that need a new socket when they change.</summary>
    public string Signature { get; }

    /// <summary>The newest snapshot that has this socket; serves its connections after it left the configuration.</summary>
    public RuntimeSnapshot LastSnapshot { get; private set; }

    public static string SignatureOf(BoundSocket s)
    {
        var o = s.Options;
        return $"{s.Ssl}|{s.Http2}|{o.Backlog}|{o.ReusePort}|{o.Ipv6Only}|{o.Deferred}|{o.FastOpen}|{o.RcvBuf}|{o.SndBuf}|{o.SoKeepalive}";
    }

    public void Update(BoundSocket socket, RuntimeSnapshot snapshot)
    {
        Socket = socket;
        LastSnapshot = snapshot;
        ListenerSettings.ApplyLimits(_options, snapshot, socket);
    }

    public static async Task<KestrelListener> StartAsync(BoundSocket socket, RuntimeSnapshot snapshot, PorticoHost host)
    {
        var options = new KestrelServerOptions
        {
            AddServerHeader = false,
            AllowSynchronousIO = false,
            ApplicationServices = host.ServiceProvider,
        };
        ListenerSettings.ApplyLimits(options, snapshot, socket);

        var listen = socket.Options;
        if (listen.UnixPath is not null)
        {
            if (File.Exists(listen.UnixPath))
            {
                File.Delete(listen.UnixPath);
            }

            options.ListenUnixSocket(listen.UnixPath, lo => ListenerSettings.ConfigureEndpoint(lo, socket, snapshot, host));
        }
        else
        {
            options.Listen(new IPEndPoint(listen.Address!, listen.Port), lo => ListenerSettings.ConfigureEndpoint(lo, socket, snapshot, host));
        }

        var transportOptions = new SocketTransportOptions
        {
            Backlog = listen.Backlog ?? 511,
            NoDelay = true,
            CreateBoundListenSocket = endpoint => SocketFactory.CreateListenSocket(endpoint, listen),
            // The request runs on the socket's I/O thread (no thread-pool hop each way). This is why nothing
            // on the request path may block (ARCHITECTURE rule 7). PORTICO_INLINE_SCHEDULING=0 turns it off.
            UnsafePreferInlineScheduling = HotPath.InlineScheduling,
        };
        if (HotPath.LargeBlocks)
        {
            LargeBlockMemoryPoolFactory.TryInstall(transportOptions);
        }

        var loggerFactory = host.LoggerFactory;
        var transport = new SocketTransportFactory(Options.Create(transportOptions), loggerFactory);
        var server = new KestrelServer(Options.Create(options), transport, loggerFactory);
        var listener = new KestrelListener(socket, server, options, snapshot);
        try
        {
            await server.StartAsync(new PorticoApplication(listener, host), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            server.Dispose();
            throw ListenException.For(socket.Key, e);
        }

        if (listen.UnixPath is not null && !OperatingSystem.IsWindows())
        {
            // nginx makes unix sockets usable by every user of the machine.
            File.SetUnixFileMode(listen.UnixPath,
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
        }

        return listener;
    }

    /// <summary>Stops accepting; lets in-flight requests finish until <paramref name="abortAfter"/> cancels.</summary>
    public async Task StopAsync(CancellationToken abortAfter)
    {
        try
        {
            await _server.StopAsync(abortAfter).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            _server.Dispose();
            if (Socket.Options.UnixPath is { } path)
            {
                try
                {
                    File.Delete(path);
                }
                catch (IOException)
                {
                }
            }
        }
    }
}

/// <summary>A socket could not be bound; the message is nginx's bind() line.</summary>
internal sealed class ListenException : Exception
{
    public static ListenException For(string key, Exception inner) => new($"bind() to {key} failed ({Errno(inner)})", inner);

    public ListenException() { }
    public ListenException(string message) : base(message) { }
    public ListenException(string message, Exception inner) : base(message, inner) { }

    private static string Errno(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is SocketException se)
            {
                return se.SocketErrorCode switch
                {
                    SocketError.AddressAlreadyInUse => "98: Address already in use",
                    SocketError.AddressNotAvailable => "99: Cannot assign requested address",
                    SocketError.AccessDenied => "13: Permission denied",
                    _ => $"{se.ErrorCode}: {se.Message}",
                };
            }

            if (x.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                return "98: Address already in use";
            }
        }

        return e.Message;
    }
}
