using System.Net;
using System.Text.RegularExpressions;
using Portico.Config.Syntax;

namespace Portico.Config.Model;

/// <summary>The bound configuration: main-context settings and the http block. Built once per load.</summary>
public sealed class ConfigModel
{
    public ConfigModel(ConfigPaths paths, ConfigDump dump)
    {
        Paths = paths;
        Dump = dump;
    }

    public ConfigPaths Paths { get; }
    public ConfigDump Dump { get; }

    /// <summary>Settings of the main context (pid, error_log, worker_*) and of events {}.</summary>
    public SettingsLevel Main { get; } = new(null);

    public HttpBlock? Http { get; set; }

    /// <summary>Variables the configuration itself declares (set, map, named regex captures, ...).</summary>
    public HashSet<string> DeclaredVariables { get; } = new(StringComparer.Ordinal);

    /// <summary>Warnings found while loading; errors stop the load instead.</summary>
    public List<Diagnostic> Warnings { get; } = [];
}

/// <summary>Where things are: nginx's prefix, conf prefix and the main file.</summary>
public sealed record ConfigPaths(string Prefix, string ConfPrefix, string ConfFile)
{
    /// <summary>ngx_get_full_name relative to the prefix (pid, logs, root ...).</summary>
    public string FromPrefix(string path) => path.StartsWith('/') ? path : Prefix + path;

    /// <summary>Relative to the directory of the main configuration file (include, certificates in nginx ≥ 0.6).</summary>
    public string FromConfPrefix(string path) => path.StartsWith('/') ? path : ConfPrefix + path;
}

public sealed class HttpBlock
{
    public HttpBlock(Directive source, SettingsLevel settings)
    {
        Source = source;
        Settings = settings;
    }

    public Directive Source { get; }
    public SettingsLevel Settings { get; }
    public List<ServerBlock> Servers { get; } = [];
}

public sealed class ServerBlock
{
    public ServerBlock(Directive source, SettingsLevel settings, int index)
    {
        Source = source;
        Settings = settings;
        Index = index;
    }

    public Directive Source { get; }
    public SettingsLevel Settings { get; }

    /// <summary>Position among the http block's servers (first server is the implicit default).</summary>
    public int Index { get; }

    public List<ListenSpec> Listens { get; } = [];
    public List<ServerNameSpec> Names { get; } = [];

    /// <summary>The server-level locations (prefix, exact, regex), in configuration order.</summary>
    public List<LocationBlock> Locations { get; } = [];

    public Dictionary<string, LocationBlock> NamedLocations { get; } = new(StringComparer.Ordinal);

    /// <summary>"if" blocks directly in the server (server-rewrite phase), in order.</summary>
    public List<LocationBlock> IfBlocks { get; } = [];

    /// <summary>The first server_name as nginx shows it in $server_name: lower case, "~regex", "*.x", "x.*", ".x" as "x".</summary>
    public string PrimaryName => Names.Count == 0 ? string.Empty : Names[0].Kind switch
    {
        ServerNameKind.LeadingWildcard => "*." + Names[0].Name,
        ServerNameKind.TrailingWildcard => Names[0].Name + ".*",
        ServerNameKind.Regex => "~" + Names[0].Name,
        _ => Names[0].Name,
    };
}

public enum LocationKind
{
    /// <summary>location /prefix</summary>
    Prefix,

    /// <summary>location ^~ /prefix: no regex check when it is the longest prefix.</summary>
    PrefixNoRegex,

    /// <summary>location = /exact</summary>
    Exact,

    /// <summary>location ~ regex</summary>
    Regex,

    /// <summary>location ~* regex</summary>
    RegexCaseless,

    /// <summary>location @name</summary>
    Named,

    /// <summary>An "if" block: a pseudo-location chosen when its condition holds.</summary>
    If,

    /// <summary>A limit_except block: a pseudo-location for the methods not listed.</summary>
    LimitExcept,
}

public sealed class LocationBlock
{
    public LocationBlock(Directive source, LocationKind kind, string pattern, SettingsLevel settings, ServerBlock server, LocationBlock? parent)
    {
        Source = source;
        Kind = kind;
        Pattern = pattern;
        Settings = settings;
        Server = server;
        Parent = parent;
    }

    public Directive Source { get; }
    public LocationKind Kind { get; }

    /// <summary>The URI, regex source or name as written.</summary>
    public string Pattern { get; }

    public PcreRegex? Regex { get; init; }

    public SettingsLevel Settings { get; }
    public ServerBlock Server { get; }
    public LocationBlock? Parent { get; }

    /// <summary>Nested locations in configuration order.</summary>
    public List<LocationBlock> Children { get; } = [];

    /// <summary>"if" blocks in this location, in order (the rewrite module evaluates them).</summary>
    public List<LocationBlock> IfBlocks { get; } = [];

    /// <summary>The limit_except block of this location, if any.</summary>
    public LocationBlock? LimitExcept { get; set; }

    /// <summary>Module-owned data for pseudo-locations (the "if" condition, the limit_except methods).</summary>
    public object? Tag { get; set; }

    public bool IsRegex => Kind is LocationKind.Regex or LocationKind.RegexCaseless;

    /// <summary>"internal": reachable only by internal redirects.</summary>
    public bool Internal { get; set; }

    /// <summary>The display name nginx uses in messages: "= /x", "~ re", "/x", "@x".</summary>
    public string DisplayName => Kind switch
    {
        LocationKind.Exact => "=" + Pattern,
        LocationKind.PrefixNoRegex => "^~" + Pattern,
        LocationKind.Regex => "~" + Pattern,
        LocationKind.RegexCaseless => "~*" + Pattern,
        _ => Pattern,
    };
}

/// <summary>One listen directive, parsed.</summary>
public sealed class ListenSpec
{
    public ListenSpec(Directive source)
    {
        Source = source;
    }

    public Directive Source { get; }

    /// <summary>IP address; <see cref="IPAddress.Any"/> or IPv6Any for wildcards; null for unix sockets.</summary>
    public IPAddress? Address { get; set; }

    public int Port { get; set; } = 80;
    public string? UnixPath { get; set; }

    /// <summary>The address as written (for messages): "127.0.0.1:8080", "unix:/tmp/s".</summary>
    public string Text { get; set; } = string.Empty;

    public bool DefaultServer { get; set; }
    public bool Ssl { get; set; }
    public bool Http2 { get; set; }
    public bool Quic { get; set; }
    public int? Backlog { get; set; }
    public bool ReusePort { get; set; }
    public bool Bind { get; set; }
    public bool? Ipv6Only { get; set; }
    public bool Deferred { get; set; }
    public int? FastOpen { get; set; }
    public int? RcvBuf { get; set; }
    public int? SndBuf { get; set; }
    public bool? SoKeepalive { get; set; }

    /// <summary>True when any socket-level option was given (nginx allows them once per address).</summary>
    public bool HasSocketOptions => Backlog is not null || ReusePort || Bind || Ipv6Only is not null || Deferred
        || FastOpen is not null || RcvBuf is not null || SndBuf is not null || SoKeepalive is not null;

    /// <summary>"ip:port" with IPv6 in brackets, or "unix:path"; nginx's text for the socket.</summary>
    public string SocketName => UnixPath is not null
        ? "unix:" + UnixPath
        : Address!.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{Address}]:{Port}"
            : $"{Address}:{Port}";

    public bool IsWildcard => Address is not null && (Address.Equals(IPAddress.Any) || Address.Equals(IPAddress.IPv6Any));
}

public enum ServerNameKind
{
    Exact,

    /// <summary>*.example.com (and the wildcard half of .example.com)</summary>
    LeadingWildcard,

    /// <summary>www.example.*</summary>
    TrailingWildcard,

    Regex,
}

public sealed record ServerNameSpec(ServerNameKind Kind, string Name, PcreRegex? Regex, string File, int Line);
