using System.Text;
using Portico.Config.Syntax;

namespace Portico.Config.Model;

public enum TemplatePartKind
{
    Literal,
    Variable,
    Capture,
}

/// <summary>One piece of an argument: literal text, a $variable, or a regex capture $1..$9.</summary>
public readonly record struct TemplatePart(TemplatePartKind Kind, string Text, int Capture)
{
    public static TemplatePart Literal(string text) => new(TemplatePartKind.Literal, text, 0);
    public static TemplatePart Variable(string name) => new(TemplatePartKind.Variable, name, 0);
    public static TemplatePart CaptureRef(int n) => new(TemplatePartKind.Capture, string.Empty, n);
}

/// <summary>
/// An argument that may hold variables, split once at configuration time into literal and variable parts
/// (nginx's complex value). The runtime compiles the variable names against its registry.
/// </summary>
public sealed class ValueTemplate
{
    private ValueTemplate(string source, TemplatePart[] parts, string file, int line)
    {
        Source = source;
        Parts = parts;
        File = file;
        Line = line;
    }

    public string Source { get; }
    public IReadOnlyList<TemplatePart> Parts { get; }
    public string File { get; }
    public int Line { get; }

    public bool IsConstant => Parts.Count == 0 || (Parts.Count == 1 && Parts[0].Kind == TemplatePartKind.Literal);

    public bool HasCaptures
    {
        get
        {
            foreach (var p in Parts)
            {
                if (p.Kind == TemplatePartKind.Capture)
                {
                    return true;
                }
            }

            return false;
        }
    }

    public string ConstantValue => Parts.Count == 0 ? string.Empty : Parts[0].Text;

    public static ValueTemplate Constant(string value, string file = "", int line = 0) =>
        new(value, value.Length == 0 ? [] : [TemplatePart.Literal(value)], file, line);

    /// <summary>Splits text the way ngx_http_script_compile does; throws nginx's errors.</summary>
    public static ValueTemplate Parse(string text, Directive at) => Parse(text, at.File, at.Line);

    public static ValueTemplate Parse(string text, string file, int line)
    {
        var parts = new List<TemplatePart>();
        var literal = new StringBuilder();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (c != '$')
            {
                literal.Append(c);
                i++;
                continue;
            }

            i++;
            if (i >= text.Length)
            {
                throw new ConfigException("invalid variable name", file, line);
            }

            if (text[i] is >= '1' and <= '9')
            {
                Flush(literal, parts);
                parts.Add(TemplatePart.CaptureRef(text[i] - '0'));
                i++;
                continue;
            }

            var bracket = false;
            if (text[i] == '{')
            {
                bracket = true;
                i++;
            }

            var start = i;
            while (i < text.Length && IsNameChar(text[i]))
            {
                i++;
            }

            var name = text[start..i];
            if (bracket)
            {
                if (i >= text.Length || text[i] != '}')
                {
                    throw new ConfigException($"the closing bracket in \"{name}\" variable is missing", file, line);
                }

                i++;
            }

            if (name.Length == 0)
            {
                throw new ConfigException("invalid variable name", file, line);
            }

            Flush(literal, parts);
            parts.Add(TemplatePart.Variable(name.ToLowerInvariant()));
        }

        Flush(literal, parts);
        return new ValueTemplate(text, [.. parts], file, line);
    }

    public static bool IsNameChar(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_';

    private static void Flush(StringBuilder literal, List<TemplatePart> parts)
    {
        if (literal.Length > 0)
        {
            parts.Add(TemplatePart.Literal(literal.ToString()));
            literal.Clear();
        }
    }

    public override string ToString() => Source;
}
