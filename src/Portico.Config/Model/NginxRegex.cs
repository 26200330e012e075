using System.Text;
using System.Text.RegularExpressions;
using Portico.Config.Syntax;

namespace Portico.Config.Model;

/// <summary>
/// A regex numbered as PCRE numbers it: every capturing group, named or not, gets its number from the
/// position of its opening parenthesis ($1..$9 as nginx sees them). .NET numbers named groups after the
/// unnamed ones, so named groups are compiled as numbered groups and their names kept here.
/// </summary>
public sealed class PcreRegex : Regex
{
    public PcreRegex(string translated, RegexOptions options, string source, int captureCount, IReadOnlyList<(string Name, int Number)> names)
        : base(translated, options)
    {
        Source = source;
        CaptureCount = captureCount;
        Names = names;
    }

    /// <summary>The pattern as written in the configuration.</summary>
    public string Source { get; }

    /// <summary>The number of capturing groups (PCRE's capture count).</summary>
    public int CaptureCount { get; }

    /// <summary>Named groups (lower-cased) and their PCRE numbers.</summary>
    public IReadOnlyList<(string Name, int Number)> Names { get; }

    public override string ToString() => Source;
}

/// <summary>PCRE-style regexes as nginx writes them, compiled with .NET's engine.</summary>
public static class NginxRegex
{
    /// <summary>
    /// Compiles a regex from the configuration with PCRE's group numbering. PCRE's (?P&lt;name&gt;),
    /// (?&lt;name&gt;) and (?'name') become numbered groups whose names are declared as variables in the
    /// model, as nginx does.
    /// </summary>
    public static PcreRegex Compile(string pattern, bool caseless, Directive at, ConfigModel? model)
    {
        var options = RegexOptions.CultureInvariant;
        if (caseless)
        {
            options |= RegexOptions.IgnoreCase;
        }

        PcreRegex regex;
        try
        {
            var (net, count, names) = Translate(pattern);
            regex = new PcreRegex(net, options, pattern, count, names);
        }
        catch (ArgumentException e)
        {
            // .NET says "Invalid pattern '<translated>' at offset N. <reason>": keep the reason only,
            // the pattern the user wrote is quoted below.
            var reason = e.Message;
            var at_ = reason.IndexOf(" at offset ", StringComparison.Ordinal);
            var dot = at_ >= 0 ? reason.IndexOf(". ", at_, StringComparison.Ordinal) : -1;
            if (dot >= 0)
            {
                reason = reason[(dot + 2)..];
            }

            throw at.Error($"pcre2_compile() failed: {reason.TrimEnd('.')} in \"{pattern}\"");
        }

        if (model is not null)
        {
            foreach (var (name, _) in regex.Names)
            {
                model.DeclaredVariables.Add(name);
            }
        }

        return regex;
    }

    /// <summary>
    /// Rewrites PCRE syntax into .NET syntax with explicit group numbers: "(" → "(?&lt;N&gt;",
    /// "(?&lt;name&gt;" / "(?P&lt;name&gt;" / "(?'name'" → "(?&lt;N&gt;", "(?P=name)" and "\k&lt;name&gt;" → "\N".
    /// </summary>
    public static (string Pattern, int CaptureCount, List<(string Name, int Number)> Names) Translate(string pattern)
    {
        var sb = new StringBuilder(pattern.Length + 16);
        var names = new List<(string, int)>();
        var number = 0;
        var inClass = false;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                // \k<name> backreference
                if (!inClass && pattern[i + 1] == 'k' && i + 2 < pattern.Length && pattern[i + 2] is '<' or '{' or '\'')
                {
                    var close = pattern.IndexOfAny(['>', '}', '\''], i + 3);
                    if (close > 0)
                    {
                        sb.Append('\\').Append(NumberOf(names, pattern[(i + 3)..close]));
                        i = close;
                        continue;
                    }
                }

                sb.Append(c).Append(pattern[i + 1]);
                i++;
                continue;
            }

            if (inClass)
            {
                if (c == ']')
                {
                    inClass = false;
                }

                sb.Append(c);
                continue;
            }

            if (c == '[')
            {
                inClass = true;
                sb.Append(c);
                if (i + 1 < pattern.Length && pattern[i + 1] == '^')
                {
                    sb.Append('^');
                    i++;
                }

                if (i + 1 < pattern.Length && pattern[i + 1] == ']')
                {
                    sb.Append(']');
                    i++;
                }

                continue;
            }

            if (c != '(')
            {
                sb.Append(c);
                continue;
            }

            if (i + 1 >= pattern.Length || pattern[i + 1] != '?')
            {
                sb.Append("(?<").Append(++number).Append('>');
                continue;
            }

            // "(?" forms
            var rest = pattern.AsSpan(i);
            string? name = null;
            var skip = 0;
            if (rest.StartsWith("(?P<") || (rest.StartsWith("(?<") && rest.Length > 3 && rest[3] != '=' && rest[3] != '!'))
            {
                var start = rest.StartsWith("(?P<") ? 4 : 3;
                var end = rest.IndexOf('>');
                if (end > start)
                {
                    name = rest[start..end].ToString();
                    skip = end;
                }
            }
            else if (rest.StartsWith("(?'"))
            {
                var end = rest[3..].IndexOf('\'');
                if (end > 0)
                {
                    name = rest.Slice(3, end).ToString();
                    skip = end + 3;
                }
            }
            else if (rest.StartsWith("(?P="))
            {
                var end = rest.IndexOf(')');
                if (end > 4)
                {
                    sb.Append("(?:\\").Append(NumberOf(names, rest[4..end].ToString())).Append(')');
                    i += end;
                    continue;
                }
            }

            if (name is not null)
            {
                number++;
                names.Add((name.ToLowerInvariant(), number));
                sb.Append("(?<").Append(number).Append('>');
                i += skip;
                continue;
            }

            sb.Append(c);
        }

        return (sb.ToString(), number, names);
    }

    private static int NumberOf(List<(string Name, int Number)> names, string name)
    {
        foreach (var (n, num) in names)
        {
            if (n == name.ToLowerInvariant())
            {
                return num;
            }
        }

        throw new ArgumentException($"reference to non-existent subpattern \"{name}\"");
    }
}
