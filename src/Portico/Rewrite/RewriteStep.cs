using System.Text.RegularExpressions;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Rewrite;

/// <summary>The flag of a rewrite directive.</summary>
public enum RewriteFlag
{
    /// <summary>No flag: the script goes on, the location is searched again after it.</summary>
    None,
    Last,
    Break,
    Redirect,
    Permanent,
}

/// <summary>
/// A rewrite replacement split the way ngx_http_script_compile splits it: the part before the first
/// literal "?" becomes the URI, the rest the arguments (not for redirects); a final "?" means "drop the
/// request's arguments".
/// </summary>
public sealed record RewriteReplacement(string UriText, string? ArgsText, bool AddArgs, bool HasQuestionMark, bool IsRedirect)
{
    /// <summary>Splits a replacement as nginx does (the caller has checked it is not empty).</summary>
    public static RewriteReplacement Parse(string replacement, bool forcedRedirect)
    {
        var addArgs = true;
        if (replacement.EndsWith('?'))
        {
            // The last "?" drops the original arguments.
            replacement = replacement[..^1];
            addArgs = false;
        }

        var redirect = forcedRedirect || StartsAbsolute(replacement);
        var question = FirstLiteralQuestionMark(replacement);
        if (redirect || question < 0)
        {
            return new RewriteReplacement(replacement, null, addArgs, question >= 0, redirect);
        }

        return new RewriteReplacement(replacement[..question], replacement[(question + 1)..], addArgs, true, false);
    }

    /// <summary>"http://", "https://" or "$scheme" at the start: a redirect whatever the flag.</summary>
    public static bool StartsAbsolute(string replacement) =>
        replacement.StartsWith("http://", StringComparison.Ordinal)
        || replacement.StartsWith("https://", StringComparison.Ordinal)
        || replacement.StartsWith("$scheme", StringComparison.Ordinal);

    /// <summary>The index of the first "?" outside a variable reference, or -1.</summary>
    public static int FirstLiteralQuestionMark(string text)
    {
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (c == '?')
            {
                return i;
            }

            if (c != '$')
            {
                i++;
                continue;
            }

            i++;
            if (i < text.Length && text[i] is >= '1' and <= '9')
            {
                i++;
                continue;
            }

            if (i < text.Length && text[i] == '{')
            {
                var close = text.IndexOf('}', i);
                i = close < 0 ? text.Length : close + 1;
                continue;
            }

            while (i < text.Length && ValueTemplate.IsNameChar(text[i]))
            {
                i++;
            }
        }

        return -1;
    }
}

/// <summary>rewrite regex replacement [last | break | redirect | permanent];</summary>
public sealed class RewriteSpec : StepSpec
{
    private readonly Regex _regex;
    private readonly string _pattern;
    private readonly RewriteReplacement _replacement;
    private readonly ValueTemplate _uri;
    private readonly ValueTemplate? _args;
    private readonly RewriteFlag _flag;

    private RewriteSpec(Directive source, Regex regex, string pattern, RewriteReplacement replacement, ValueTemplate uri, ValueTemplate? args, RewriteFlag flag)
        : base(source)
    {
        _regex = regex;
        _pattern = pattern;
        _replacement = replacement;
        _uri = uri;
        _args = args;
        _flag = flag;
    }

    /// <summary>ngx_http_rewrite's checks, in nginx's words and order.</summary>
    public static RewriteSpec Bind(DirectiveCall c)
    {
        if (c[1].Length == 0)
        {
            throw c.Emerg("empty replacement");
        }

        var regex = NginxRegex.Compile(c[0], false, c.Directive, c.Model);
        c.HttpMain<CaptureDeclarations>().Regexes.Add((regex, c.Directive));
        var flag = RewriteFlag.None;
        if (c.Count == 3)
        {
            flag = c[2] switch
            {
                "last" => RewriteFlag.Last,
                "break" => RewriteFlag.Break,
                "redirect" => RewriteFlag.Redirect,
                "permanent" => RewriteFlag.Permanent,
                _ => throw c.Emerg($"invalid parameter \"{c[2]}\""),
            };
        }

        var replacement = RewriteReplacement.Parse(c[1], flag is RewriteFlag.Redirect or RewriteFlag.Permanent);
        var uri = ValueTemplate.Parse(replacement.UriText, c.Directive);
        var args = replacement.ArgsText is null ? null : ValueTemplate.Parse(replacement.ArgsText, c.Directive);
        return new RewriteSpec(c.Directive, regex, c[0], replacement, uri, args, flag);
    }

    public override ScriptStep Compile(LocationCompiler location) =>
        new RewriteStep(_regex, _pattern, _replacement, location.Compile(_uri), _args is null ? null : location.Compile(_args), _flag);
}

/// <summary>The runtime of one rewrite directive (ngx_http_script_regex_start_code / regex_end_code).</summary>
public sealed class RewriteStep : ScriptStep
{
    private readonly Regex _regex;
    private readonly string _pattern;
    private readonly RewriteReplacement _replacement;
    private readonly CompiledTemplate _uri;
    private readonly CompiledTemplate? _args;
    private readonly RewriteFlag _flag;
    private readonly int _redirectStatus;

    public RewriteStep(Regex regex, string pattern, RewriteReplacement replacement, CompiledTemplate uri, CompiledTemplate? args, RewriteFlag flag)
    {
        _regex = regex;
        _pattern = pattern;
        _replacement = replacement;
        _uri = uri;
        _args = args;
        _flag = flag;
        _redirectStatus = flag == RewriteFlag.Permanent ? 301 : 302;
    }

    public override ValueTask<StepResult> ExecuteAsync(RequestContext r, ScriptState state)
    {
        var subject = r.Uri;
        var match = _regex.Match(subject);
        if (!match.Success)
        {
            if (state.Log)
            {
                r.LogError(LogLevel.Notice, $"\"{_pattern}\" does not match \"{subject}\"");
            }

            r.ClearCaptures();
            return ValueTask.FromResult(StepResult.Next);
        }

        if (state.Log)
        {
            r.LogError(LogLevel.Notice, $"\"{_pattern}\" matches \"{subject}\"");
        }

        r.SetCaptures(_regex, match, subject);
        var escape = r.QuotedOrPlusUri;

        if (_replacement.IsRedirect)
        {
            // Captures are escaped (e->quote = 1), then the whole URL is unescaped for printable ASCII.
            var url = UriEscape.UnescapeRedirect(_uri.Evaluate(r, escape));
            if (_replacement.AddArgs && r.Args.Length > 0)
            {
                url = url + (_replacement.HasQuestionMark ? "&" : "?") + r.Args;
            }

            if (state.Log)
            {
                r.LogError(LogLevel.Notice, $"rewritten redirect: \"{url}\"");
            }

            state.Quote = false;
            r.Http.Response.Headers.Location = UriEscape.ForHeader(url);
            return ValueTask.FromResult(StepResult.With(r.Finish(_redirectStatus)));
        }

        var uri = _uri.Evaluate(r, false);
        if (_args is not null)
        {
            var args = _args.Evaluate(r, escape);
            if (_replacement.AddArgs && r.Args.Length > 0)
            {
                args = args + "&" + r.Args;
            }

            r.Args = args;
        }
        else if (!_replacement.AddArgs)
        {
            r.Args = string.Empty;
        }

        state.Quote = false;
        if (state.Log)
        {
            r.LogError(LogLevel.Notice, $"rewritten data: \"{uri}\", args: \"{r.Args}\"");
        }

        if (uri.Length == 0)
        {
            r.LogError(LogLevel.Error, "the rewritten URI has a zero length");
            return ValueTask.FromResult(StepResult.With(r.Finish(500)));
        }

        r.Uri = uri;
        r.Internal = true;
        switch (_flag)
        {
            case RewriteFlag.Break:
                state.UriChanged = false;
                return ValueTask.FromResult(StepResult.Break);
            case RewriteFlag.Last:
                state.UriChanged = true;
                return ValueTask.FromResult(StepResult.Break);
            default:
                state.UriChanged = true;
                return ValueTask.FromResult(StepResult.Next);
        }
    }
}
