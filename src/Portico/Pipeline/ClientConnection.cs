using System.Globalization;
using System.Net;

namespace Portico.Pipeline;

/// <summary>Per client connection: nginx's connection serial number ($connection) and request count.</summary>
public sealed class ClientConnection
{
    private static long s_serial;
    private int _requests;
    private string? _remoteText;
    private string? _localText;
    private string? _binary;

    public ClientConnection(IPAddress? remote, int remotePort, IPAddress? local, int localPort, string? unixPath = null)
    {
        Serial = Interlocked.Increment(ref s_serial);
        RemoteAddress = remote is { IsIPv4MappedToIPv6: true } ? remote.MapToIPv4() : remote;
        RemotePort = remotePort;
        LocalAddress = local is { IsIPv4MappedToIPv6: true } ? local.MapToIPv4() : local;
        LocalPort = localPort;
        UnixPath = unixPath;
    }

    public long Serial { get; }
    public IPAddress? RemoteAddress { get; }
    public int RemotePort { get; }
    public IPAddress? LocalAddress { get; }
    public int LocalPort { get; }
    public string? UnixPath { get; }

    /// <summary>The connection tracker's state of this connection ($pipe, the request head length), when tracked.</summary>
    public Logging.ConnectionLogState? LogState { get; init; }

    /// <summary>Requests served on this connection so far, this one included ($connection_requests).</summary>
    public int Requests => _requests;

    public void CountRequest() => Interlocked.Increment(ref _requests);

    /// <summary>$remote_addr: the client address, "unix:" for unix-domain clients.</summary>
    public string RemoteAddressText => _remoteText ??= RemoteAddress?.ToString() ?? "unix:";

    public string LocalAddressText => _localText ??= LocalAddress?.ToString() ?? ("unix:" + UnixPath);

    public string BinaryRemoteAddress => _binary ??= HttpCoreModule.BinaryAddress(RemoteAddress);

    public override string ToString() => Serial.ToString(CultureInfo.InvariantCulture);
}
