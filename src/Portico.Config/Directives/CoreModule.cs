using System.Net;
using System.Net.Sockets;
using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Config.Directives;

/// <summary>
/// The structure of an nginx configuration: the main context, events, http, server, location, listen and
/// server_name. Behaviour directives belong to the runtime's modules.
/// </summary>
public sealed class CoreModule : IConfigModule
{
    public void Register(DirectiveRegistry r)
    {
        r.AddSettings<ErrorLogSettings>(SettingsScope.Location);

        // ---- main context (ngx_core_module) ----
        r.Add(new DirectiveSpec("pid", Ctx.Main, Arity.One, c => c.Main<MainSettings>().Pid = c.Model.Paths.FromPrefix(c[0])));
        r.Add(new DirectiveSpec("daemon", Ctx.Main, Arity.Flag, c => c.Main<MainSettings>().Daemon = c.Flag(0)));
        r.Add(new DirectiveSpec("master_process", Ctx.Main, Arity.Flag, c => c.Main<MainSettings>().MasterProcess = c.Flag(0)));
        r.Add(new DirectiveSpec("worker_processes", Ctx.Main, Arity.One, WorkerProcesses));
        r.Add(new DirectiveSpec("worker_rlimit_nofile", Ctx.Main, Arity.One, c => c.Main<MainSettings>().WorkerRlimitNofile = c.Number(0)));
        r.Add(new DirectiveSpec("worker_shutdown_timeout", Ctx.Main, Arity.One, c => c.Main<MainSettings>().WorkerShutdownTimeout = c.Time(0)));
        r.Add(new DirectiveSpec("worker_cpu_affinity", Ctx.Main, Arity.OneOrMore, _ => { }));
        r.Add(new DirectiveSpec("worker_priority", Ctx.Main, Arity.One, _ => { }));
        r.Add(new DirectiveSpec("timer_resolution", Ctx.Main, Arity.One, c => c.Time(0)));
        r.Add(new DirectiveSpec("pcre_jit", Ctx.Main, Arity.Flag, c => c.Flag(0)));
        r.Add(new DirectiveSpec("user", Ctx.Main, Arity.Range(1, 2), c => c.Main<MainSettings>().User = c[0]));
        r.Add(new DirectiveSpec("env", Ctx.Main, Arity.One, c => c.Main<MainSettings>().Env.Add(c[0])) { Repeatable = true });
        r.Add(new DirectiveSpec("load_module", Ctx.Main, Arity.One,
            c => c.Warn($"\"load_module\" ignored: Portico's modules are built in, \"{c[0]}\" is not loaded")) { Repeatable = true });
        r.Add(new DirectiveSpec("error_log", Ctx.Main | Ctx.HttpServerLocation, Arity.OneOrMore, ErrorLog) { Repeatable = true });

        // ---- events ----
        r.Add(new DirectiveSpec("events", Ctx.Main, Arity.None, Events) { IsBlock = true });
        r.Add(new DirectiveSpec("worker_connections", Ctx.Events, Arity.One, c => c.Main<MainSettings>().WorkerConnections = c.Number(0)));
        r.Add(new DirectiveSpec("multi_accept", Ctx.Events, Arity.Flag, c => c.Main<MainSettings>().MultiAccept = c.Flag(0)));
        r.Add(new DirectiveSpec("use", Ctx.Events, Arity.One, Use));
        r.Add(new DirectiveSpec("accept_mutex", Ctx.Events, Arity.Flag, c => c.Flag(0)));
        r.Add(new DirectiveSpec("accept_mutex_delay", Ctx.Events, Arity.One, c => c.Time(0)));
        r.Add(new DirectiveSpec("worker_aio_requests", Ctx.Events, Arity.One, c => c.Number(0)));

        // ---- http structure ----
        r.Add(new DirectiveSpec("http", Ctx.Main, Arity.None, Http) { IsBlock = true });
        r.Add(new DirectiveSpec("server", Ctx.Http, Arity.None, Server) { IsBlock = true, Repeatable = true });
        r.Add(new DirectiveSpec("location", Ctx.Server | Ctx.Location, Arity.Range(1, 2), Location) { IsBlock = true, Repeatable = true });
        r.Add(new DirectiveSpec("listen", Ctx.Server, Arity.OneOrMore, Listen) { Repeatable = true });
        r.Add(new DirectiveSpec("server_name", Ctx.Server, Arity.OneOrMore, ServerName) { Repeatable = true });
        r.Add(new DirectiveSpec("internal", Ctx.Location, Arity.None, c => c.Scope.Location!.Internal = true));
    }

    private static void WorkerProcesses(DirectiveCall c)
    {
        if (c[0] != "auto" && !ConfigValues.TryParseNumber(c[0], out _))
        {
            throw c.InvalidValue(0);
        }

        c.Main<MainSettings>().WorkerProcesses = c[0];
    }

    private static void Use(DirectiveCall c)
    {
        if (c[0] is not ("epoll" or "poll" or "select"))
        {
            throw c.Emerg($"invalid event type \"{c[0]}\"");
        }
    }

    private static void Events(DirectiveCall c)
    {
        var main = c.Main<MainSettings>();
        main.HasEvents = true;
        c.BindBlock(new BindScope(Ctx.Events, c.Scope, null));
    }

    /// <summary>error_log file|stderr [level]: the main log at main level, per-level logs below it.</summary>
    private static void ErrorLog(DirectiveCall c)
    {
        var path = c[0];
        if (path.StartsWith("syslog:", StringComparison.Ordinal) || path.StartsWith("memory:", StringComparison.Ordinal))
        {
            throw c.Emerg($"\"{path[..path.IndexOf(':', StringComparison.Ordinal)]}:\" error logs are not supported by Portico; use a file or \"stderr\"");
        }

        var level = LogLevel.Error;
        if (c.Count > 1)
        {
            if (c.Count > 2 || !Diagnostic.TryParseLevel(c[1], out level))
            {
                throw c.Emerg($"invalid log level \"{c[c.Count > 2 && Diagnostic.TryParseLevel(c[1], out _) ? 2 : 1]}\"");
            }
        }

        var spec = new ErrorLogSpec(path == "stderr" ? path : c.Model.Paths.FromPrefix(path), level);
        if (c.Scope.Kind == Ctx.Main)
        {
            c.Main<MainSettings>().ErrorLogs.Add(spec);
        }
        else
        {
            (c.Loc<ErrorLogSettings>().Logs ??= []).Add(spec);
        }
    }

    private static void Http(DirectiveCall c)
    {
        if (c.Model.Http is not null)
        {
            throw c.Error("is duplicate");
        }

        var http = new HttpBlock(c.Directive, new SettingsLevel(null));
        c.Model.Http = http;
        c.BindBlock(new BindScope(Ctx.Http, c.Scope, http.Settings) { Http = http });
    }

    private static void Server(DirectiveCall c)
    {
        var http = c.Scope.Http!;
        var server = new ServerBlock(c.Directive, c.Binder.NewServerLevel(http.Settings), http.Servers.Count);
        http.Servers.Add(server);
        c.BindBlock(new BindScope(Ctx.Server, c.Scope, server.Settings) { Http = http, Server = server });
        if (server.Listens.Count == 0)
        {
            // nginx: a server without "listen" listens on *:80 (or *:8000 when not started as root).
            var port = Environment.IsPrivilegedProcess ? 80 : 8000;
            server.Listens.Add(new ListenSpec(c.Directive) { Address = IPAddress.Any, Port = port, Text = "*:" + port });
        }

        if (server.Names.Count == 0)
        {
            server.Names.Add(new ServerNameSpec(ServerNameKind.Exact, string.Empty, null, c.Directive.File, c.Directive.Line));
        }
    }

    private static void Location(DirectiveCall c)
    {
        LocationKind kind;
        string name;
        var model = c.Model;
        PcreRegex? regex = null;

        if (c.Count == 2)
        {
            name = c[1];
            kind = c[0] switch
            {
                "=" => LocationKind.Exact,
                "^~" => LocationKind.PrefixNoRegex,
                "~" => LocationKind.Regex,
                "~*" => LocationKind.RegexCaseless,
                _ => throw c.Emerg($"invalid location modifier \"{c[0]}\""),
            };
        }
        else
        {
            var v = c[0];
            if (v.StartsWith('='))
            {
                kind = LocationKind.Exact;
                name = v[1..];
            }
            else if (v.StartsWith("^~", StringComparison.Ordinal))
            {
                kind = LocationKind.PrefixNoRegex;
                name = v[2..];
            }
            else if (v.StartsWith("~*", StringComparison.Ordinal))
            {
                kind = LocationKind.RegexCaseless;
                name = v[2..];
            }
            else if (v.StartsWith('~'))
            {
                kind = LocationKind.Regex;
                name = v[1..];
            }
            else
            {
                kind = v.StartsWith('@') ? LocationKind.Named : LocationKind.Prefix;
                name = v;
            }
        }

        if (kind is LocationKind.Regex or LocationKind.RegexCaseless)
        {
            regex = NginxRegex.Compile(name, kind == LocationKind.RegexCaseless, c.Directive, model);
        }

        var server = c.Scope.Server!;
        var parent = c.Scope.Location;
        if (parent is not null)
        {
            if (parent.Kind == LocationKind.Exact)
            {
                throw c.Emerg($"location \"{name}\" cannot be inside the exact location \"{parent.Pattern}\"");
            }

            if (parent.Kind == LocationKind.Named)
            {
                throw c.Emerg($"location \"{name}\" cannot be inside the named location \"{parent.Pattern}\"");
            }

            if (kind == LocationKind.Named)
            {
                throw c.Emerg($"named location \"{name}\" can be on the server level only");
            }

            if (regex is null && !name.StartsWith(parent.Pattern, StringComparison.Ordinal))
            {
                throw c.Emerg($"location \"{name}\" is outside location \"{parent.Pattern}\"");
            }
        }

        var siblings = parent?.Children ?? server.Locations;
        foreach (var other in siblings)
        {
            var samePrefix = kind is LocationKind.Prefix or LocationKind.PrefixNoRegex
                && other.Kind is LocationKind.Prefix or LocationKind.PrefixNoRegex;
            if ((samePrefix || (kind == LocationKind.Exact && other.Kind == LocationKind.Exact)) && other.Pattern == name)
            {
                throw c.Emerg($"duplicate location \"{name}\"");
            }
        }

        var level = c.Binder.NewLocationLevel(c.Scope.Level!);
        var location = new LocationBlock(c.Directive, kind, name, level, server, parent) { Regex = regex };
        if (kind == LocationKind.Named)
        {
            // nginx accepts a repeated named location; the first one is used.
            server.NamedLocations.TryAdd(name, location);
        }
        else if (parent is null)
        {
            server.Locations.Add(location);
        }
        else
        {
            parent.Children.Add(location);
        }

        c.BindBlock(new BindScope(Ctx.Location, c.Scope, level) { Http = c.Scope.Http, Server = server, Location = location });
    }

    private static void ServerName(DirectiveCall c)
    {
        var server = c.Scope.Server!;
        foreach (var arg in c.Args)
        {
            var value = arg.Value;
            if (value.Length == 0)
            {
                server.Names.Add(new ServerNameSpec(ServerNameKind.Exact, string.Empty, null, c.Directive.File, c.Directive.Line));
                continue;
            }

            var ch = value[0];
            if ((ch == '*' && (value.Length < 3 || value[1] != '.')) || (ch == '.' && value.Length < 2))
            {
                throw c.Emerg($"server name \"{value}\" is invalid");
            }

            if (value.Contains('/', StringComparison.Ordinal))
            {
                c.Warn($"server name \"{value}\" has suspicious symbols");
            }

            if (value.Equals("$hostname", StringComparison.OrdinalIgnoreCase))
            {
                value = Dns.GetHostName();
            }

            if (ch == '~')
            {
                if (value.Length == 1)
                {
                    throw c.Emerg($"empty regex in server name \"{value}\"");
                }

                var pattern = value[1..];
                var caseless = pattern.Any(char.IsAsciiLetterUpper);
                var regex = NginxRegex.Compile(pattern, caseless, c.Directive, c.Model);
                server.Names.Add(new ServerNameSpec(ServerNameKind.Regex, pattern, regex, c.Directive.File, c.Directive.Line));
                continue;
            }

            value = value.ToLowerInvariant();
            if (value.StartsWith('.'))
            {
                server.Names.Add(new ServerNameSpec(ServerNameKind.Exact, value[1..], null, c.Directive.File, c.Directive.Line));
                server.Names.Add(new ServerNameSpec(ServerNameKind.LeadingWildcard, value[1..], null, c.Directive.File, c.Directive.Line));
            }
            else if (value.StartsWith("*.", StringComparison.Ordinal))
            {
                server.Names.Add(new ServerNameSpec(ServerNameKind.LeadingWildcard, value[2..], null, c.Directive.File, c.Directive.Line));
            }
            else if (value.EndsWith(".*", StringComparison.Ordinal))
            {
                server.Names.Add(new ServerNameSpec(ServerNameKind.TrailingWildcard, value[..^2], null, c.Directive.File, c.Directive.Line));
            }
            else
            {
                server.Names.Add(new ServerNameSpec(ServerNameKind.Exact, value.TrimEnd('.'), null, c.Directive.File, c.Directive.Line));
            }
        }
    }

    private static void Listen(DirectiveCall c)
    {
        var server = c.Scope.Server!;
        var url = c[0];
        var template = new ListenSpec(c.Directive);
        List<IPAddress> addresses = [];

        if (url.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = url[5..];
            if (path.Length == 0)
            {
                throw c.Emerg($"no path in the unix domain socket in \"{url}\" of the \"listen\" directive");
            }

            template.UnixPath = c.Model.Paths.FromPrefix(path);
            template.Text = "unix:" + template.UnixPath;
        }
        else
        {
            ParseHostPort(c, url, template, addresses);
        }

        for (var n = 1; n < c.Count; n++)
        {
            var v = c[n];
            switch (v)
            {
                case "default_server":
                case "default":
                    template.DefaultServer = true;
                    continue;
                case "bind":
                    template.Bind = true;
                    continue;
                case "ssl":
                    template.Ssl = true;
                    continue;
                case "http2":
                    c.Warn("the \"listen ... http2\" directive is deprecated, use the \"http2\" directive instead");
                    template.Http2 = true;
                    continue;
                case "quic":
                    template.Quic = true;
                    continue;
                case "reuseport":
                    template.ReusePort = true;
                    continue;
                case "deferred":
                    template.Deferred = true;
                    continue;
                case "proxy_protocol":
                    throw c.Emerg("the \"proxy_protocol\" parameter of \"listen\" is not supported by Portico");
                case "multipath":
                    throw c.Emerg("the \"multipath\" parameter of \"listen\" is not supported by Portico");
            }

            if (v.StartsWith("backlog=", StringComparison.Ordinal))
            {
                if (!ConfigValues.TryParseNumber(v[8..], out var b) || b == 0 || b > int.MaxValue)
                {
                    throw c.Emerg($"invalid backlog \"{v}\"");
                }

                template.Backlog = (int)b;
            }
            else if (v.StartsWith("rcvbuf=", StringComparison.Ordinal))
            {
                template.RcvBuf = ConfigValues.TryParseSize(v[7..], out var s) && s <= int.MaxValue ? (int)s : throw c.Emerg($"invalid rcvbuf \"{v}\"");
            }
            else if (v.StartsWith("sndbuf=", StringComparison.Ordinal))
            {
                template.SndBuf = ConfigValues.TryParseSize(v[7..], out var s) && s <= int.MaxValue ? (int)s : throw c.Emerg($"invalid sndbuf \"{v}\"");
            }
            else if (v.StartsWith("fastopen=", StringComparison.Ordinal))
            {
                template.FastOpen = ConfigValues.TryParseNumber(v[9..], out var f) && f <= int.MaxValue ? (int)f : throw c.Emerg($"invalid fastopen \"{v}\"");
            }
            else if (v.StartsWith("ipv6only=o", StringComparison.Ordinal))
            {
                template.Ipv6Only = v[10..] switch
                {
                    "n" => true,
                    "ff" => false,
                    _ => throw c.Emerg($"invalid ipv6only flags \"{v[9..]}\""),
                };
            }
            else if (v.StartsWith("so_keepalive=", StringComparison.Ordinal))
            {
                var s = v[13..];
                if (s == "on")
                {
                    template.SoKeepalive = true;
                }
                else if (s == "off")
                {
                    template.SoKeepalive = false;
                }
                else
                {
                    var parts = s.Split(':');
                    if (parts.Length > 3 || parts.All(p => p.Length == 0)
                        || (parts[0].Length > 0 && !ConfigValues.TryParseSeconds(parts[0], out _))
                        || (parts.Length > 1 && parts[1].Length > 0 && !ConfigValues.TryParseSeconds(parts[1], out _))
                        || (parts.Length > 2 && parts[2].Length > 0 && !ConfigValues.TryParseNumber(parts[2], out _)))
                    {
                        throw c.Emerg($"invalid so_keepalive value: \"{s}\"");
                    }

                    template.SoKeepalive = true;
                }
            }
            else if (v.StartsWith("setfib=", StringComparison.Ordinal) || v.StartsWith("accept_filter=", StringComparison.Ordinal))
            {
                throw c.Emerg($"invalid parameter \"{v}\"");
            }
            else
            {
                throw c.Emerg($"invalid parameter \"{v}\"");
            }
        }

        if (template.HasSocketOptions)
        {
            template.Bind = true;
        }

        if (template.Quic)
        {
            if (template.Ssl)
            {
                throw c.Error("\"ssl\" parameter is incompatible with \"quic\"");
            }

            if (template.Http2)
            {
                throw c.Error("\"http2\" parameter is incompatible with \"quic\"");
            }

            if (template.Backlog is not null)
            {
                throw c.Error("\"backlog\" parameter is incompatible with \"quic\"");
            }
        }

        if (template.UnixPath is not null)
        {
            server.Listens.Add(template);
            return;
        }

        foreach (var address in addresses.Distinct())
        {
            var spec = new ListenSpec(c.Directive)
            {
                Address = address,
                Port = template.Port,
                Text = template.Text,
                DefaultServer = template.DefaultServer,
                Ssl = template.Ssl,
                Http2 = template.Http2,
                Quic = template.Quic,
                Backlog = template.Backlog,
                ReusePort = template.ReusePort,
                Bind = template.Bind,
                Ipv6Only = template.Ipv6Only,
                Deferred = template.Deferred,
                FastOpen = template.FastOpen,
                RcvBuf = template.RcvBuf,
                SndBuf = template.SndBuf,
                SoKeepalive = template.SoKeepalive,
            };
            foreach (var existing in server.Listens)
            {
                if (existing.UnixPath is null && existing.Address!.Equals(spec.Address) && existing.Port == spec.Port)
                {
                    throw c.Emerg($"a duplicate listen {spec.SocketName}");
                }
            }

            server.Listens.Add(spec);
        }
    }

    /// <summary>ngx_parse_url for listen: "addr:port", "port", "*:port", "[v6]:port", "host".</summary>
    private static void ParseHostPort(DirectiveCall c, string url, ListenSpec spec, List<IPAddress> addresses)
    {
        string host;
        string? port = null;
        if (url.StartsWith('['))
        {
            var close = url.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw c.Emerg($"invalid IPv6 address in \"{url}\" of the \"listen\" directive");
            }

            host = url[1..close];
            if (close + 1 < url.Length)
            {
                if (url[close + 1] != ':')
                {
                    throw c.Emerg($"invalid host in \"{url}\" of the \"listen\" directive");
                }

                port = url[(close + 2)..];
            }

            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                throw c.Emerg($"invalid IPv6 address in \"{url}\" of the \"listen\" directive");
            }

            addresses.Add(v6);
        }
        else
        {
            var colon = url.LastIndexOf(':');
            if (colon >= 0)
            {
                host = url[..colon];
                port = url[(colon + 1)..];
            }
            else if (url.All(char.IsAsciiDigit))
            {
                host = "*";
                port = url;
            }
            else
            {
                host = url;
            }

            if (host is "*" or "")
            {
                addresses.Add(IPAddress.Any);
            }
            else if (IPAddress.TryParse(host, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork && host.Count(ch => ch == '.') == 3)
            {
                addresses.Add(ip);
            }
            else
            {
                try
                {
                    foreach (var a in Dns.GetHostAddresses(host))
                    {
                        addresses.Add(a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a);
                    }
                }
                catch (SocketException)
                {
                    throw c.Emerg($"host not found in \"{url}\" of the \"listen\" directive");
                }

                if (addresses.Count == 0)
                {
                    throw c.Emerg($"host not found in \"{url}\" of the \"listen\" directive");
                }
            }
        }

        if (port is not null)
        {
            if (!ConfigValues.TryParseNumber(port, out var p) || p < 1 || p > 65535)
            {
                throw c.Emerg($"invalid port in \"{url}\" of the \"listen\" directive");
            }

            spec.Port = (int)p;
        }

        spec.Text = url;
    }
}
