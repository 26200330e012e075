using System.Net;
using System.Text.RegularExpressions;
using Portico.Config.Model;
using Portico.Logging;
using Portico.Pipeline;

namespace Portico.Routing;

/// <summary>A compiled location: its phase handlers, content handler, filters and nested lookup.</summary>
public sealed class LocationRuntime
{
    public LocationRuntime(LocationBlock? block, ServerRuntime server, SettingsLevel settings, ErrorLog errorLog)
    {
        Block = block;
        Server = server;
        Settings = settings;
        ErrorLog = errorLog;
    }

    /// <summary>The configuration block; null for the server level.</summary>
    public LocationBlock? Block { get; }
    public ServerRuntime Server { get; }

    /// <summary>The merged settings of every module at this level.</summary>
    public SettingsLevel Settings { get; }

    public ErrorLog ErrorLog { get; }

    public LocationKind Kind => Block?.Kind ?? LocationKind.Prefix;
    public string Name => Block?.DisplayName ?? string.Empty;
    public PcreRegex? Regex => Block?.Regex;
    public bool Internal => Block?.Internal ?? false;

    public PhaseHandler[] Rewrite { get; set; } = [];
    public PhaseHandler[] PreAccess { get; set; } = [];
    public PhaseHandler[] Access { get; set; } = [];
    public PhaseHandler[] PreContent { get; set; } = [];
    public ContentHandler? Content { get; set; }
    public LogHandler[] LogHandlers { get; set; } = [];
    public HeaderFilter[] HeaderFilters { get; set; } = [];
    public IErrorPages? ErrorPages { get; set; }

    /// <summary>nginx's auto_redirect: a prefix location ending in "/" whose content is proxied.</summary>
    public bool AutoRedirect { get; set; }

    /// <summary>Nested locations (null when none).</summary>
    public LocationTree? Nested { get; set; }

    public T Get<T>() where T : class, new() => Settings.Get<T>();

    public override string ToString() => Name;
}

/// <summary>The result of a location lookup.</summary>
public readonly record struct LocationMatch(LocationRuntime? Location, bool Redirect);

/// <summary>
/// One level of location lookup (a server, or the nested locations of a location): exact and prefix
/// locations in a radix tree, regex locations in configuration order. nginx's ngx_http_core_find_location.
/// </summary>
public sealed class LocationTree
{
    private readonly PrefixTree<LocationRuntime> _static = new();
    private readonly LocationRuntime[] _regexes;

    public LocationTree(IEnumerable<LocationRuntime> locations)
    {
        var regexes = new List<LocationRuntime>();
        foreach (var l in locations)
        {
            switch (l.Kind)
            {
                case LocationKind.Exact:
                    _static.Add(l.Block!.Pattern, l, exact: true);
                    break;
                case LocationKind.Prefix:
                case LocationKind.PrefixNoRegex:
                    _static.Add(l.Block!.Pattern, l, exact: false);
                    break;
                case LocationKind.Regex:
                case LocationKind.RegexCaseless:
                    regexes.Add(l);
                    break;
            }
        }

        _regexes = [.. regexes];
    }

    public bool IsEmpty => _static.IsEmpty && _regexes.Length == 0;

    private enum Outcome
    {
        Declined,
        Prefix,
        Final,
        Redirect,
    }

    /// <summary>
    /// Finds the location for a URI (nginx's ngx_http_core_find_location): exact match; nginx's auto
    /// redirect; longest prefix, then its nested locations; then regexes in order unless the prefix was
    /// "^~". Sets regex captures on the request when a regex matches.
    /// </summary>
    public LocationMatch Find(string uri, RequestContext? r)
    {
        LocationRuntime? current = null;
        var outcome = Find(uri, r, ref current);
        return new LocationMatch(current, outcome == Outcome.Redirect);
    }

    private Outcome Find(string uri, RequestContext? r, ref LocationRuntime? current)
    {
        _static.Find(uri, out var exact, out var prefix, out var equalPrefix, out var slashExact, out var slashInclusive);
        if (exact is not null)
        {
            current = exact;
            return Outcome.Final;
        }

        if (!equalPrefix)
        {
            var candidate = slashExact is { AutoRedirect: true } ? slashExact : slashInclusive is { AutoRedirect: true } ? slashInclusive : null;
            if (candidate is not null)
            {
                current = candidate;
                return Outcome.Redirect;
            }
        }

        var outcome = Outcome.Declined;
        var noRegex = false;
        if (prefix is not null)
        {
            current = prefix;
            noRegex = prefix.Kind == LocationKind.PrefixNoRegex;
            outcome = Outcome.Prefix;
            if (prefix.Nested is { } nested)
            {
                var inner = nested.Find(uri, r, ref current);
                if (inner is Outcome.Final or Outcome.Redirect)
                {
                    return inner;
                }
            }
        }

        if (!noRegex)
        {
            foreach (var loc in _regexes)
            {
                var regex = loc.Regex!;
                if (regex.CaptureCount == 0)
                {
                    // No groups: nothing to keep (nginx leaves no $1..$9 after such a match), and IsMatch
                    // allocates no Match object.
                    if (!regex.IsMatch(uri))
                    {
                        continue;
                    }

                    r?.ClearCaptures();
                }
                else
                {
                    var m = regex.Match(uri);
                    if (!m.Success)
                    {
                        continue;
                    }

                    r?.SetCaptures(regex, m, uri);
                }

                current = loc;
                if (loc.Nested is { } regexNested)
                {
                    regexNested.Find(uri, r, ref current);
                }

                return Outcome.Final;
            }
        }

        return outcome;
    }
}

/// <summary>A compiled server block.</summary>
public sealed class ServerRuntime
{
    public ServerRuntime(ServerBlock block)
    {
        Block = block;
        Name = block.PrimaryName;
    }

    public ServerBlock Block { get; }

    /// <summary>$server_name: the first name of the block.</summary>
    public string Name { get; }

    /// <summary>The server level as a location: used before a location is found or when none matches.</summary>
    public LocationRuntime ServerLevel { get; set; } = null!;

    public PhaseHandler[] ServerRewrite { get; set; } = [];

    /// <summary>Handlers run once per request before server rewrite (nginx's post-read phase).</summary>
    public PhaseHandler[] PostRead { get; set; } = [];

    public LocationTree Locations { get; set; } = null!;
    public Dictionary<string, LocationRuntime> Named { get; } = new(StringComparer.Ordinal);

    public override string ToString() => Name;
}

/// <summary>The servers of one address:port and how names select among them.</summary>
public sealed class AddressRuntime
{
    public AddressRuntime(AddressConfig config, ServerNameTable names)
    {
        Config = config;
        Names = names;
    }

    public AddressConfig Config { get; }
    public ServerNameTable Names { get; }
    public IPAddress? Address => Config.Address;
}

/// <summary>A bound socket's routing: the address configurations it serves.</summary>
public sealed class ListenerRuntime
{
    public ListenerRuntime(BoundSocket socket, AddressRuntime[] addresses)
    {
        Socket = socket;
        Addresses = addresses;
    }

    public BoundSocket Socket { get; }
    public string Key => Socket.Key;

    /// <summary>The socket's own address first; specific addresses folded into a wildcard socket follow.</summary>
    public AddressRuntime[] Addresses { get; }

    /// <summary>Chooses the address configuration by the connection's local address (nginx's per-address servers).</summary>
    public AddressRuntime ForLocal(IPAddress? local)
    {
        if (Addresses.Length == 1 || local is null)
        {
            return Addresses[0];
        }

        if (local.IsIPv4MappedToIPv6)
        {
            local = local.MapToIPv4();
        }

        for (var i = 1; i < Addresses.Length; i++)
        {
            if (local.Equals(Addresses[i].Address))
            {
                return Addresses[i];
            }
        }

        return Addresses[0];
    }
}
