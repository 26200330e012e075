using System.Text;
using System.Text.RegularExpressions;
using Portico.Config.Syntax;

namespace Portico.Config.Model;

/// <summary>PCRE-style regexes as nginx writes them, compiled with .NET's engine.</summary>
public static class NginxRegex
{
    /// <summary>
    /// Compiles a regex from the configuration. PCRE's (?P&lt;name&gt;) and (?P=name) become .NET's forms;
    /// named groups are declared as variables in the model, as nginx does.
    /// </summary>
    public static Regex Compile(string pattern, bool caseless, Directive at, ConfigModel? model)
    {
        var net = Translate(pattern);
        var options = RegexOptions.CultureInvariant;
        if (caseless)
        {
            options |= RegexOptions.IgnoreCase;
        }

        Regex regex;
        try
        {
            regex = new Regex(net, options);
        }
        catch (ArgumentException e)
        {
            var reason = e.Message;
            var cut = reason.IndexOf(" - ", StringComparison.Ordinal);
            if (cut >= 0)
            {
                reason = reason[(cut + 3)..];
            }

            throw at.Error($"pcre2_compile() failed: {reason.TrimEnd('.')} in \"{pattern}\"");
        }

        if (model is not null)
        {
            foreach (var name in regex.GetGroupNames())
            {
                if (!int.TryParse(name, out _))
                {
                    model.DeclaredVariables.Add(name.ToLowerInvariant());
                }
            }
        }

        return regex;
    }

    /// <summary>Rewrites the PCRE-only syntax nginx configs use into .NET syntax.</summary>
    public static string Translate(string pattern)
    {
        if (!pattern.Contains("(?P", StringComparison.Ordinal))
        {
            return pattern;
        }

        var sb = new StringBuilder(pattern.Length);
        for (var i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] == '\\' && i + 1 < pattern.Length)
            {
                sb.Append(pattern[i]).Append(pattern[i + 1]);
                i++;
                continue;
            }

            if (string.CompareOrdinal(pattern, i, "(?P<", 0, 4) == 0)
            {
                sb.Append("(?<");
                i += 3;
                continue;
            }

            if (string.CompareOrdinal(pattern, i, "(?P=", 0, 4) == 0)
            {
                var close = pattern.IndexOf(')', i);
                if (close > 0)
                {
                    sb.Append("\\k<").Append(pattern, i + 4, close - i - 4).Append('>');
                    i = close;
                    continue;
                }
            }

            sb.Append(pattern[i]);
        }

        return sb.ToString();
    }
}
