using System.Net;
using Portico.Config.Syntax;

namespace Portico.Config.Model;

/// <summary>The servers reachable on one address:port (or unix path), with its default server.</summary>
public sealed class AddressConfig
{
    public AddressConfig(string key, IPAddress? address, int port, string? unixPath)
    {
        Key = key;
        Address = address;
        Port = port;
        UnixPath = unixPath;
    }

    /// <summary>"127.0.0.1:8080", "[::1]:80", "unix:/path".</summary>
    public string Key { get; }
    public IPAddress? Address { get; }
    public int Port { get; }
    public string? UnixPath { get; }

    /// <summary>Servers in configuration order (each once).</summary>
    public List<ServerBlock> Servers { get; } = [];

    public ServerBlock Default { get; set; } = null!;

    /// <summary>Set when any listen of this address says ssl / http2 (nginx ORs them).</summary>
    public bool Ssl { get; set; }
    public bool Http2 { get; set; }
    public bool Quic { get; set; }
}

/// <summary>One socket to bind, and the address configurations it serves.</summary>
public sealed class BoundSocket
{
    public BoundSocket(string key, ListenSpec options)
    {
        Key = key;
        Options = options;
    }

    /// <summary>Identity across reloads: "0.0.0.0:80", "unix:/path".</summary>
    public string Key { get; }

    /// <summary>The listen that carries the socket options (or the first listen of the address).</summary>
    public ListenSpec Options { get; set; }

    /// <summary>The configurations served: the socket's own address first, then specific addresses
    /// folded into a wildcard socket (dispatched by the connection's local address).</summary>
    public List<AddressConfig> Addresses { get; } = [];

    public bool Ssl => Addresses.Any(a => a.Ssl);
    public bool Http2 => Addresses.Any(a => a.Http2);
}

/// <summary>
/// nginx's ngx_http_optimize_servers: group listens into sockets and addresses, pick default servers,
/// and report duplicate defaults, duplicate socket options and conflicting server names.
/// </summary>
public static class ListenPlan
{
    public static List<BoundSocket> Build(HttpBlock http, List<Diagnostic> errors, List<Diagnostic> warnings)
    {
        var addresses = new Dictionary<string, AddressConfig>(StringComparer.Ordinal);
        var order = new List<AddressConfig>();
        var optionsOwner = new Dictionary<string, ListenSpec>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);

        foreach (var server in http.Servers)
        {
            foreach (var listen in server.Listens)
            {
                var key = listen.SocketName;
                if (!addresses.TryGetValue(key, out var ac))
                {
                    ac = new AddressConfig(key, listen.Address, listen.Port, listen.UnixPath);
                    addresses.Add(key, ac);
                    order.Add(ac);
                }

                if (!ac.Servers.Contains(server))
                {
                    ac.Servers.Add(server);
                }

                if (listen.HasSocketOptions)
                {
                    if (optionsOwner.ContainsKey(key))
                    {
                        errors.Add(new Diagnostic(LogLevel.Emerg, $"duplicate listen options for {key}", listen.Source.File, listen.Source.Line));
                    }
                    else
                    {
                        optionsOwner.Add(key, listen);
                    }
                }

                if (listen.DefaultServer)
                {
                    if (ac.Default is not null && ac.Default != server)
                    {
                        errors.Add(new Diagnostic(LogLevel.Emerg, $"a duplicate default server for {key}", listen.Source.File, listen.Source.Line));
                    }

                    ac.Default = server;
                }

                if (seen.Contains(key) && (ac.Ssl != listen.Ssl || ac.Http2 != listen.Http2))
                {
                    // nginx ≥ 1.25 ORs protocol options and says so.
                    warnings.Add(new Diagnostic(LogLevel.Warn, $"protocol options redefined for {key}", listen.Source.File, listen.Source.Line));
                }

                seen.Add(key);
                ac.Ssl |= listen.Ssl;
                ac.Http2 |= listen.Http2;
                ac.Quic |= listen.Quic;
            }
        }

        foreach (var ac in order)
        {
            ac.Default ??= ac.Servers[0];
            CheckNames(ac, warnings);
        }

        // Sockets: a wildcard address on a port serves the specific addresses of that port,
        // unless a specific one asked for its own socket with "bind" (or socket options).
        var sockets = new List<BoundSocket>();
        var wildcardByPort = new Dictionary<(int Port, bool V6), BoundSocket>();
        foreach (var ac in order)
        {
            if (ac.Address is not null && (ac.Address.Equals(IPAddress.Any) || ac.Address.Equals(IPAddress.IPv6Any)))
            {
                var socket = new BoundSocket(ac.Key, OptionsFor(ac, optionsOwner, http));
                socket.Addresses.Add(ac);
                sockets.Add(socket);
                wildcardByPort[(ac.Port, ac.Address.Equals(IPAddress.IPv6Any))] = socket;
            }
        }

        foreach (var ac in order)
        {
            if (ac.Address is not null && (ac.Address.Equals(IPAddress.Any) || ac.Address.Equals(IPAddress.IPv6Any)))
            {
                continue;
            }

            var v6 = ac.Address is not null && ac.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
            var ownSocket = ac.UnixPath is not null || optionsOwner.TryGetValue(ac.Key, out var o) && o.Bind
                || !wildcardByPort.ContainsKey((ac.Port, v6));
            if (ownSocket)
            {
                var socket = new BoundSocket(ac.Key, OptionsFor(ac, optionsOwner, http));
                socket.Addresses.Add(ac);
                sockets.Add(socket);
            }
            else
            {
                wildcardByPort[(ac.Port, v6)].Addresses.Add(ac);
            }
        }

        return sockets;
    }

    private static ListenSpec OptionsFor(AddressConfig ac, Dictionary<string, ListenSpec> owners, HttpBlock http)
    {
        if (owners.TryGetValue(ac.Key, out var spec))
        {
            return spec;
        }

        foreach (var server in ac.Servers)
        {
            foreach (var l in server.Listens)
            {
                if (l.SocketName == ac.Key)
                {
                    return l;
                }
            }
        }

        return http.Servers[0].Listens[0];
    }

    private static void CheckNames(AddressConfig ac, List<Diagnostic> warnings)
    {
        var exact = new HashSet<string>(StringComparer.Ordinal);
        var lead = new HashSet<string>(StringComparer.Ordinal);
        var trail = new HashSet<string>(StringComparer.Ordinal);
        foreach (var server in ac.Servers)
        {
            foreach (var name in server.Names)
            {
                var set = name.Kind switch
                {
                    ServerNameKind.Exact => exact,
                    ServerNameKind.LeadingWildcard => lead,
                    ServerNameKind.TrailingWildcard => trail,
                    _ => null,
                };
                if (set is not null && !set.Add(name.Name))
                {
                    var shown = name.Kind switch
                    {
                        ServerNameKind.LeadingWildcard => "*." + name.Name,
                        ServerNameKind.TrailingWildcard => name.Name + ".*",
                        _ => name.Name,
                    };
                    warnings.Add(new Diagnostic(LogLevel.Warn, $"conflicting server name \"{shown}\" on {ac.Key}, ignored", null, 0));
                }
            }
        }
    }
}
