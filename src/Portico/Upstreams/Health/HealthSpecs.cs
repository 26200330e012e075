using System.Text.RegularExpressions;
using Portico.Config.Directives;
using Portico.Config.Syntax;

namespace Portico.Upstreams.Health;

/// <summary>One health_check line (nginx Plus syntax) of a location that proxies to an upstream.</summary>
public sealed class HealthCheckSpec
{
    public HealthCheckSpec(Directive source)
    {
        Source = source;
    }

    public Directive Source { get; }
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(5);
    public TimeSpan Jitter { get; set; }
    public int Fails { get; set; } = 1;
    public int Passes { get; set; } = 1;
    public string Uri { get; set; } = "/";
    public int? Port { get; set; }
    public string? MatchName { get; set; }
    public bool Mandatory { get; set; }
    public bool Persistent { get; set; }

    /// <summary>The location's proxy_pass target group name (set while compiling).</summary>
    public string? Upstream { get; set; }

    /// <summary>The Host header sent with checks (the location's $proxy_host).</summary>
    public string? HostHeader { get; set; }

    /// <summary>The location's upstream connect/read timeouts bound each check.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(60);

    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromSeconds(60);

    public bool Https { get; set; }

    /// <summary>health_check [interval=T] [jitter=T] [fails=N] [passes=N] [uri=U] [port=N] [match=name] [mandatory [persistent]].</summary>
    public static HealthCheckSpec Parse(DirectiveCall c)
    {
        var spec = new HealthCheckSpec(c.Directive);
        for (var i = 0; i < c.Count; i++)
        {
            var a = c[i];
            if (a.StartsWith("interval=", StringComparison.Ordinal))
            {
                spec.Interval = Time(c, a, 9, allowZero: false);
            }
            else if (a.StartsWith("jitter=", StringComparison.Ordinal))
            {
                spec.Jitter = Time(c, a, 7, allowZero: true);
            }
            else if (a.StartsWith("fails=", StringComparison.Ordinal))
            {
                spec.Fails = Count(c, a, 6);
            }
            else if (a.StartsWith("passes=", StringComparison.Ordinal))
            {
                spec.Passes = Count(c, a, 7);
            }
            else if (a.StartsWith("uri=", StringComparison.Ordinal))
            {
                spec.Uri = a[4..];
                if (spec.Uri.Length == 0 || spec.Uri[0] != '/')
                {
                    throw c.Emerg($"invalid parameter \"{a}\"");
                }
            }
            else if (a.StartsWith("port=", StringComparison.Ordinal))
            {
                if (!ConfigValues.TryParseNumber(a[5..], out var port) || port is < 1 or > 65535)
                {
                    throw c.Emerg($"invalid parameter \"{a}\"");
                }

                spec.Port = (int)port;
            }
            else if (a.StartsWith("match=", StringComparison.Ordinal))
            {
                spec.MatchName = a[6..];
            }
            else if (a == "mandatory")
            {
                spec.Mandatory = true;
            }
            else if (a == "persistent")
            {
                if (!spec.Mandatory)
                {
                    throw c.Emerg("\"persistent\" requires \"mandatory\"");
                }

                spec.Persistent = true;
            }
            else
            {
                throw c.Emerg($"invalid parameter \"{a}\"");
            }
        }

        return spec;
    }

    private static TimeSpan Time(DirectiveCall c, string a, int skip, bool allowZero)
    {
        if (!ConfigValues.TryParseMilliseconds(a[skip..], out var ms) || (!allowZero && ms == 0))
        {
            throw c.Emerg($"invalid parameter \"{a}\"");
        }

        return TimeSpan.FromMilliseconds(ms);
    }

    private static int Count(DirectiveCall c, string a, int skip)
    {
        if (!ConfigValues.TryParseNumber(a[skip..], out var n) || n == 0 || n > int.MaxValue)
        {
            throw c.Emerg($"invalid parameter \"{a}\"");
        }

        return (int)n;
    }
}

/// <summary>A "match name { ... }" block: the conditions a check response must meet (all of them).</summary>
public sealed class MatchSpec
{
    public MatchSpec(Directive source, string name)
    {
        Source = source;
        Name = name;
    }

    public Directive Source { get; }
    public string Name { get; }

    /// <summary>status lines: each a set of codes and ranges, possibly negated.</summary>
    public List<(bool Negate, List<(int From, int To)> Ranges)> Statuses { get; } = [];

    public List<HeaderTest> Headers { get; } = [];
    public List<(bool Negate, Regex Regex)> Bodies { get; } = [];

    /// <summary>Whether a response passes: without any status test, 2xx and 3xx do (as nginx Plus).</summary>
    public bool Matches(int status, IReadOnlyList<KeyValuePair<string, string>> headers, string body)
    {
        foreach (var (negate, ranges) in Statuses)
        {
            var inside = false;
            foreach (var (from, to) in ranges)
            {
                if (status >= from && status <= to)
                {
                    inside = true;
                    break;
                }
            }

            if (inside == negate)
            {
                return false;
            }
        }

        foreach (var h in Headers)
        {
            if (!h.Matches(headers))
            {
                return false;
            }
        }

        foreach (var (negate, regex) in Bodies)
        {
            if (regex.IsMatch(body) == negate)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The default test of a check without match=: a 2xx or 3xx status.</summary>
    public static bool DefaultMatches(int status) => status is >= 200 and < 400;

    /// <summary>Binds the block's lines (ngx_http_upstream_hc_match): status, header, body.</summary>
    public static MatchSpec Bind(DirectiveCall c)
    {
        var spec = new MatchSpec(c.Directive, c[0]);
        foreach (var d in c.Directive.Block ?? [])
        {
            if (d.HasBlock)
            {
                throw d.Error("unexpected \"{\"");
            }

            var args = new List<string>();
            foreach (var a in d.Args)
            {
                args.Add(a.Value);
            }

            switch (d.Name)
            {
                case "status":
                    spec.Statuses.Add(ParseStatus(d, args));
                    break;
                case "header":
                    spec.Headers.Add(HeaderTest.Parse(d, args));
                    break;
                case "body":
                    if (args.Count != 2 || (args[0] != "~" && args[0] != "!~"))
                    {
                        throw d.Error("invalid number of arguments in \"body\" directive");
                    }

                    spec.Bodies.Add((args[0] == "!~", Compile(d, args[1], false)));
                    break;
                default:
                    throw d.Error($"unknown directive \"{d.Name}\"");
            }
        }

        return spec;
    }

    private static (bool, List<(int, int)>) ParseStatus(Directive d, List<string> args)
    {
        var negate = args.Count > 0 && args[0] == "!";
        var start = negate ? 1 : 0;
        if (args.Count <= start)
        {
            throw d.Error("invalid number of arguments in \"status\" directive");
        }

        var ranges = new List<(int, int)>();
        for (var i = start; i < args.Count; i++)
        {
            var a = args[i];
            var dash = a.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0 && int.TryParse(a, System.Globalization.CultureInfo.InvariantCulture, out var code) && code is >= 100 and <= 999)
            {
                ranges.Add((code, code));
            }
            else if (dash > 0 && int.TryParse(a[..dash], System.Globalization.CultureInfo.InvariantCulture, out var from)
                && int.TryParse(a[(dash + 1)..], System.Globalization.CultureInfo.InvariantCulture, out var to) && from >= 100 && to <= 999 && from <= to)
            {
                ranges.Add((from, to));
            }
            else
            {
                throw d.Error($"invalid parameter \"{a}\"");
            }
        }

        return (negate, ranges);
    }

    internal static Regex Compile(Directive d, string pattern, bool caseless)
    {
        try
        {
            return new Regex(pattern, RegexOptions.CultureInvariant | (caseless ? RegexOptions.IgnoreCase : RegexOptions.None), TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException e)
        {
            throw d.Error($"pcre2_compile() failed: {e.Message} in \"{pattern}\"");
        }
    }
}

/// <summary>One "header" test of a match block.</summary>
public sealed class HeaderTest
{
    private HeaderTest(string name, string op, string? value, Regex? regex)
    {
        Name = name;
        Op = op;
        Value = value;
        Regex = regex;
    }

    public string Name { get; }

    /// <summary>"=", "!=", "~", "!~", "exists" or "absent".</summary>
    public string Op { get; }

    public string? Value { get; }
    public Regex? Regex { get; }

    public static HeaderTest Parse(Directive d, List<string> args)
    {
        if (args.Count == 1)
        {
            return new HeaderTest(args[0], "exists", null, null);
        }

        if (args.Count == 2 && args[0] == "!")
        {
            return new HeaderTest(args[1], "absent", null, null);
        }

        if (args.Count == 3 && args[1] is "=" or "!=")
        {
            return new HeaderTest(args[0], args[1], args[2], null);
        }

        if (args.Count == 3 && args[1] is "~" or "!~" or "~*" or "!~*")
        {
            var caseless = args[1].EndsWith('*');
            return new HeaderTest(args[0], args[1].StartsWith('!') ? "!~" : "~", null, MatchSpec.Compile(d, args[2], caseless));
        }

        throw d.Error("invalid number of arguments in \"header\" directive");
    }

    public bool Matches(IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        string? value = null;
        foreach (var (n, v) in headers)
        {
            if (n.Equals(Name, StringComparison.OrdinalIgnoreCase))
            {
                value = v;
                break;
            }
        }

        return Op switch
        {
            "exists" => value is not null,
            "absent" => value is null,
            "=" => value == Value,
            "!=" => value != Value,
            "~" => value is not null && Regex!.IsMatch(value),
            _ => value is null || !Regex!.IsMatch(value),
        };
    }
}
