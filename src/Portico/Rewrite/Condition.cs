using System.Text.RegularExpressions;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Rewrite;

public enum ConditionKind
{
    /// <summary>if ($var): false when empty or "0".</summary>
    Variable,

    /// <summary>if ($var = value)</summary>
    Equal,

    /// <summary>if ($var != value)</summary>
    NotEqual,

    /// <summary>if ($var ~ regex), ~* caseless</summary>
    Match,

    /// <summary>if ($var !~ regex), !~* caseless</summary>
    NotMatch,

    /// <summary>if (-f path) and the other file tests</summary>
    File,
}

/// <summary>The file tests of "if" (nginx's ngx_http_script_file_op_e).</summary>
public enum FileTest
{
    Plain,
    NotPlain,
    Dir,
    NotDir,
    Exists,
    NotExists,
    Exec,
    NotExec,
}

/// <summary>
/// An "if" condition as nginx's ngx_http_rewrite_if_condition parses it: the parentheses may stand alone
/// or stick to the first and last arguments; a variable, a comparison, a regex match or a file test.
/// </summary>
public sealed class ConditionSpec
{
    private ConditionSpec(ConditionKind kind)
    {
        Kind = kind;
    }

    public ConditionKind Kind { get; }

    /// <summary>The variable tested or compared (without "$", lower case).</summary>
    public string? VariableName { get; private init; }

    /// <summary>The value compared with (=, !=) or the path tested (-f ...).</summary>
    public ValueTemplate? Value { get; private init; }

    public PcreRegex? Regex { get; private init; }

    /// <summary>The regex as written (for rewrite_log).</summary>
    public string? Pattern { get; private init; }

    public bool Caseless { get; private init; }

    public FileTest FileTest { get; private init; }

    /// <summary>Parses the arguments of "if" (without the directive name); throws nginx's errors.</summary>
    public static ConditionSpec Parse(IReadOnlyList<string> args, Directive at, ConfigModel? model)
    {
        var value = new List<string>(args.Count + 1) { "if" };
        value.AddRange(args);
        var last = value.Count - 1;

        if (value[1].Length < 1 || value[1][0] != '(')
        {
            throw at.Error($"invalid condition \"{value[1]}\"");
        }

        int cur;
        if (value[1].Length == 1)
        {
            cur = 2;
        }
        else
        {
            cur = 1;
            value[1] = value[1][1..];
        }

        if (value[last].Length < 1 || value[last][^1] != ')')
        {
            throw at.Error($"invalid condition \"{value[last]}\"");
        }

        if (value[last].Length == 1)
        {
            last--;
        }
        else
        {
            value[last] = value[last][..^1];
        }

        if (cur > last)
        {
            // "if ()": nginx reads past the arguments here; report the condition as invalid.
            throw at.Error("invalid condition \"" + (cur < value.Count ? value[cur] : string.Empty) + "\"");
        }

        var p = value[cur];
        if (p.Length > 1 && p[0] == '$')
        {
            if (cur != last && cur + 2 != last)
            {
                throw at.Error($"invalid condition \"{p}\"");
            }

            var name = p[1..].ToLowerInvariant();
            if (cur == last)
            {
                return new ConditionSpec(ConditionKind.Variable) { VariableName = name };
            }

            var op = value[cur + 1];
            var operand = value[last];
            switch (op)
            {
                case "=":
                    return new ConditionSpec(ConditionKind.Equal) { VariableName = name, Value = ValueTemplate.Parse(operand, at) };
                case "!=":
                    return new ConditionSpec(ConditionKind.NotEqual) { VariableName = name, Value = ValueTemplate.Parse(operand, at) };
                case "~":
                case "~*":
                case "!~":
                case "!~*":
                    var caseless = op[^1] == '*';
                    return new ConditionSpec(op[0] == '!' ? ConditionKind.NotMatch : ConditionKind.Match)
                    {
                        VariableName = name,
                        Regex = NginxRegex.Compile(operand, caseless, at, model),
                        Pattern = operand,
                        Caseless = caseless,
                    };
                default:
                    throw at.Error($"unexpected \"{op}\" in condition");
            }
        }

        if ((p.Length == 2 && p[0] == '-') || (p.Length == 3 && p[0] == '!' && p[1] == '-'))
        {
            if (cur + 1 != last)
            {
                throw at.Error($"invalid condition \"{p}\"");
            }

            var path = ValueTemplate.Parse(value[last], at);
            var test = p switch
            {
                "-f" => FileTest.Plain,
                "-d" => FileTest.Dir,
                "-e" => FileTest.Exists,
                "-x" => FileTest.Exec,
                "!-f" => FileTest.NotPlain,
                "!-d" => FileTest.NotDir,
                "!-e" => FileTest.NotExists,
                "!-x" => FileTest.NotExec,
                _ => throw at.Error($"invalid condition \"{p}\""),
            };
            return new ConditionSpec(ConditionKind.File) { Value = path, FileTest = test };
        }

        throw at.Error($"invalid condition \"{p}\"");
    }

    /// <summary>nginx's truth of a value: not empty and not "0".</summary>
    public static bool IsTrue(string? value) => !string.IsNullOrEmpty(value) && value != "0";

    /// <summary>The result of a file test on what the file system said about a path.</summary>
    public static bool Evaluate(FileTest test, FileFacts facts) => test switch
    {
        FileTest.Plain => facts.IsFile,
        FileTest.NotPlain => !facts.IsFile,
        FileTest.Dir => facts.IsDirectory,
        FileTest.NotDir => !facts.IsDirectory,
        FileTest.Exists => facts.IsFile || facts.IsDirectory,
        FileTest.NotExists => !(facts.IsFile || facts.IsDirectory),
        FileTest.Exec => facts.IsExecutable,
        _ => !facts.IsExecutable,
    };
}

/// <summary>What stat() says about a path (following symbolic links, as nginx's test does).</summary>
public readonly record struct FileFacts(bool IsFile, bool IsDirectory, bool IsExecutable)
{
    public static readonly FileFacts Missing = new(false, false, false);

    /// <summary>Looks a path up; blocking, so the "if" step runs it off the I/O thread.</summary>
    public static FileFacts Of(string path)
    {
        if (path.Length == 0)
        {
            return Missing;
        }

        try
        {
            var file = new FileInfo(path);
            if (file.LinkTarget is not null)
            {
                // stat() follows links: a dangling one does not exist.
                if (file.ResolveLinkTarget(returnFinalTarget: true) is not { } final || !Path.Exists(final.FullName))
                {
                    return Missing;
                }

                file = new FileInfo(final.FullName);
                path = final.FullName;
            }

            if (file.Exists)
            {
                return new FileFacts(true, false, OperatingSystem.IsWindows() || (file.UnixFileMode & UnixFileMode.UserExecute) != 0);
            }

            var dir = new DirectoryInfo(path);
            if (dir.Exists)
            {
                return new FileFacts(false, true, OperatingSystem.IsWindows() || (dir.UnixFileMode & UnixFileMode.UserExecute) != 0);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
        }

        return Missing;
    }
}

/// <summary>A compiled condition.</summary>
public sealed class Condition
{
    private readonly ConditionSpec _spec;
    private readonly Variable? _variable;
    private readonly CompiledTemplate? _value;

    public Condition(ConditionSpec spec, Variable? variable, CompiledTemplate? value)
    {
        _spec = spec;
        _variable = variable;
        _value = value;
    }

    public ConditionKind Kind => _spec.Kind;

    /// <summary>Evaluates every condition that needs no file system access.</summary>
    public bool Evaluate(RequestContext r, ScriptState state)
    {
        var subject = r.GetVariable(_variable!) ?? string.Empty;
        switch (_spec.Kind)
        {
            case ConditionKind.Variable:
                return ConditionSpec.IsTrue(subject);
            case ConditionKind.Equal:
                return string.Equals(subject, EvaluateValue(r, state), StringComparison.Ordinal);
            case ConditionKind.NotEqual:
                return !string.Equals(subject, EvaluateValue(r, state), StringComparison.Ordinal);
            default:
                var m = _spec.Regex!.Match(subject);
                if (!m.Success)
                {
                    if (state.Log)
                    {
                        r.LogError(LogLevel.Notice, $"\"{_spec.Pattern}\" does not match \"{subject}\"");
                    }

                    r.ClearCaptures();
                    return _spec.Kind == ConditionKind.NotMatch;
                }

                if (state.Log)
                {
                    r.LogError(LogLevel.Notice, $"\"{_spec.Pattern}\" matches \"{subject}\"");
                }

                r.SetCaptures(_spec.Regex, m, subject);
                return _spec.Kind == ConditionKind.Match;
        }
    }

    /// <summary>The path of a file test, evaluated now (the test itself runs off the I/O thread).</summary>
    public string EvaluatePath(RequestContext r, ScriptState state) => EvaluateValue(r, state);

    public FileTest FileTest => _spec.FileTest;

    private string EvaluateValue(RequestContext r, ScriptState state) =>
        _value!.Evaluate(r, state.Quote && r.QuotedOrPlusUri);
}
