using System.Text.RegularExpressions;
using Portico.Config.Model;

namespace Portico.Routing;

/// <summary>
/// nginx's server_name selection for one address:port: exact name, longest leading wildcard, longest
/// trailing wildcard, first matching regex in configuration order, then the default server.
/// </summary>
public sealed class ServerNameTable
{
    private readonly Dictionary<string, ServerRuntime> _exact = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServerRuntime> _leading = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServerRuntime> _trailing = new(StringComparer.Ordinal);
    private readonly List<(PcreRegex Regex, ServerRuntime Server)> _regexes = [];
    private readonly bool _hasWildcards;

    public ServerNameTable(IEnumerable<ServerRuntime> servers, ServerRuntime defaultServer)
    {
        Default = defaultServer;
        foreach (var server in servers)
        {
            foreach (var name in server.Block.Names)
            {
                switch (name.Kind)
                {
                    case ServerNameKind.Exact:
                        _exact.TryAdd(name.Name, server);
                        break;
                    case ServerNameKind.LeadingWildcard:
                        _leading.TryAdd(name.Name, server);
                        break;
                    case ServerNameKind.TrailingWildcard:
                        _trailing.TryAdd(name.Name, server);
                        break;
                    case ServerNameKind.Regex:
                        _regexes.Add((name.Regex!, server));
                        break;
                }
            }
        }

        _hasWildcards = _leading.Count > 0 || _trailing.Count > 0;
    }

    public ServerRuntime Default { get; }

    public bool HasRegexes => _regexes.Count > 0;

    /// <summary>Finds the server for a normalized host (null host: only "" names and the default).</summary>
    public ServerRuntime Find(string? host, out Match? match) => Find(host, out match, out _);

    public ServerRuntime Find(string? host, out Match? match, out PcreRegex? regex)
    {
        match = null;
        regex = null;
        host ??= string.Empty;
        if (_exact.TryGetValue(host, out var s))
        {
            return s;
        }

        if (host.Length == 0)
        {
            return Default;
        }

        if (_hasWildcards)
        {
            // Longest leading wildcard: "*.example.com" stored as "example.com"; try suffixes after each dot.
            if (_leading.Count > 0)
            {
                var dot = host.IndexOf('.');
                while (dot >= 0)
                {
                    if (_leading.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(host.AsSpan(dot + 1), out s))
                    {
                        return s;
                    }

                    dot = host.IndexOf('.', dot + 1);
                }
            }

            // Longest trailing wildcard: "www.example.*" stored as "www.example"; try prefixes before each dot.
            if (_trailing.Count > 0)
            {
                var dot = host.LastIndexOf('.');
                while (dot > 0)
                {
                    if (_trailing.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(host.AsSpan(0, dot), out s))
                    {
                        return s;
                    }

                    dot = host.LastIndexOf('.', dot - 1);
                }
            }
        }

        foreach (var (re, server) in _regexes)
        {
            var m = re.Match(host);
            if (m.Success)
            {
                match = m;
                regex = re;
                return server;
            }
        }

        return Default;
    }
}
