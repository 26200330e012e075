using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;

namespace Portico.Variables;

/// <summary>Computes a variable's value for a request; null means "not found" (nginx's not_found).</summary>
public delegate string? VariableGetter(RequestContext r);

/// <summary>Computes a prefix variable ($http_*, $arg_* ...) for the part of the name after the prefix.</summary>
public delegate string? PrefixVariableGetter(RequestContext r, string suffix);

/// <summary>Stores a value assigned by "set" into a variable that has its own storage ($args, $limit_rate).</summary>
public delegate void VariableSetter(RequestContext r, string value);

/// <summary>One variable of a snapshot, with its slot in the per-request value cache.</summary>
public sealed class Variable
{
    internal Variable(string name, int index, VariableGetter? getter, bool cacheable, VariableSetter? setter)
    {
        Name = name;
        Index = index;
        Getter = getter;
        Cacheable = cacheable;
        Setter = setter;
    }

    public string Name { get; }
    public int Index { get; }
    public VariableGetter? Getter { get; internal set; }

    /// <summary>Cached per request after the first evaluation (nginx caches unless NOCACHEABLE).</summary>
    public bool Cacheable { get; internal set; }

    public VariableSetter? Setter { get; internal set; }

    /// <summary>Declared by the configuration ("set", "map", regex names): a settable slot.</summary>
    public bool UserDeclared { get; internal set; }

    /// <summary>nginx's NGX_HTTP_VAR_CHANGEABLE: "set", "map" and named captures may (re)define it.</summary>
    public bool Changeable => UserDeclared || Setter is not null;

    public string? Get(RequestContext r) => r.GetVariable(this);

    /// <summary>
    /// The variable's place in the per-request value cache, or -1. Only variables the configuration uses
    /// (compiled into templates, declared, defined) get one, so a request's cache holds a handful of slots,
    /// not one per registered built-in.
    /// </summary>
    public int Slot { get; internal set; } = -1;
}

/// <summary>
/// The variables of one snapshot: built-ins registered by modules, prefix families, and names the
/// configuration declares. Templates are compiled against it once; requests look values up by index.
/// </summary>
public sealed class VariableRegistry
{
    private readonly Dictionary<string, Variable> _byName = new(StringComparer.Ordinal);
    private readonly List<(string Prefix, PrefixVariableGetter Getter, bool Cacheable)> _prefixes = [];
    private readonly List<Variable> _all = [];

    public int Count => _all.Count;

    private int _slots;

    /// <summary>How many variables have a slot in the per-request cache.</summary>
    public int SlotCount => _slots;

    /// <summary>Gives a variable a cache slot (configuration time only: compilation is single-threaded).</summary>
    public Variable WithSlot(Variable v)
    {
        if (v.Slot < 0)
        {
            v.Slot = _slots++;
        }

        return v;
    }

    public IReadOnlyList<Variable> All => _all;

    /// <summary>Adds (or replaces the getter of) a built-in variable.</summary>
    public Variable Register(string name, VariableGetter getter, bool cacheable = true, VariableSetter? setter = null)
    {
        if (_byName.TryGetValue(name, out var existing))
        {
            existing.Getter = getter;
            existing.Cacheable = cacheable;
            existing.Setter = setter ?? existing.Setter;
            return existing;
        }

        var v = new Variable(name, _all.Count, getter, cacheable, setter);
        _byName.Add(name, v);
        _all.Add(v);
        return v;
    }

    public void RegisterPrefix(string prefix, PrefixVariableGetter getter, bool cacheable = true) =>
        _prefixes.Add((prefix, getter, cacheable));

    /// <summary>A name the configuration declares: gets a slot, no getter unless a module adds one.</summary>
    public Variable Declare(string name)
    {
        if (_byName.TryGetValue(name, out var existing))
        {
            return WithSlot(existing);
        }

        var v = new Variable(name, _all.Count, null, true, null) { UserDeclared = true };
        _byName.Add(name, v);
        _all.Add(v);
        return WithSlot(v);
    }

    /// <summary>
    /// Defines a variable the configuration owns ("map", "set"): creates it or takes over a declared slot,
    /// with the given getter. The caller checks first that a built-in is not being replaced
    /// (<see cref="Variable.Changeable"/>), as nginx's "the duplicate variable" check does.
    /// </summary>
    public Variable DefineUser(string name, VariableGetter? getter, bool cacheable = true)
    {
        var v = Declare(name);
        v.Getter = getter;
        v.Cacheable = cacheable;
        v.UserDeclared = true;
        return v;
    }

    /// <summary>A variable registered under exactly this name (no prefix family is consulted); null when none.</summary>
    public Variable? FindRegistered(string name) => _byName.GetValueOrDefault(name);

    /// <summary>True when the name belongs to a prefix family ($http_*, $arg_* ...).</summary>
    public bool MatchesPrefix(string name)
    {
        foreach (var (prefix, _, _) in _prefixes)
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal) && name.Length > prefix.Length)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Finds a variable by name, creating prefix variables on demand; null when unknown.</summary>
    public Variable? Find(string name)
    {
        if (_byName.TryGetValue(name, out var v))
        {
            return v;
        }

        foreach (var (prefix, getter, cacheable) in _prefixes)
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal) && name.Length > prefix.Length)
            {
                var suffix = name[prefix.Length..];
                var created = new Variable(name, _all.Count, r => getter(r, suffix), cacheable, null);
                _byName.Add(name, created);
                _all.Add(created);
                return created;
            }
        }

        return null;
    }

    /// <summary>A variable the configuration uses (configuration time): unknown is nginx's [emerg].</summary>
    public Variable Require(string name, string file, int line) =>
        WithSlot(Find(name) ?? throw new ConfigException($"unknown \"{name}\" variable", file, line));

    /// <summary>Compiles a configuration template; unknown variables are nginx's [emerg].</summary>
    public CompiledTemplate Compile(ValueTemplate template)
    {
        if (template.IsConstant)
        {
            return CompiledTemplate.FromConstant(template.ConstantValue);
        }

        var parts = new CompiledPart[template.Parts.Count];
        for (var i = 0; i < parts.Length; i++)
        {
            var p = template.Parts[i];
            parts[i] = p.Kind switch
            {
                TemplatePartKind.Literal => new CompiledPart(p.Text, null, 0),
                TemplatePartKind.Capture => new CompiledPart(null, null, p.Capture),
                _ => new CompiledPart(null, Require(p.Text, template.File, template.Line), 0),
            };
        }

        return new CompiledTemplate(parts, template.Source);
    }

    public CompiledTemplate Compile(string text, string file, int line) => Compile(ValueTemplate.Parse(text, file, line));
}

/// <summary>A literal, a variable, or (Variable null and Literal null) a regex capture.</summary>
public readonly record struct CompiledPart(string? Literal, Variable? Variable, int Capture);

/// <summary>A template ready for evaluation: a constant, or parts resolved per request.</summary>
public sealed class CompiledTemplate
{
    private readonly CompiledPart[] _parts;
    private readonly string? _constant;

    internal CompiledTemplate(CompiledPart[] parts, string source)
    {
        _parts = parts;
        Source = source;
    }

    private CompiledTemplate(string constant)
    {
        _parts = [];
        _constant = constant;
        Source = constant;
    }

    public static CompiledTemplate FromConstant(string value) => new(value);

    public static readonly CompiledTemplate Empty = new(string.Empty);

    public string Source { get; }
    public bool IsConstant => _constant is not null;
    public string? Constant => _constant;

    public bool UsesCaptures
    {
        get
        {
            foreach (var p in _parts)
            {
                if (p.Literal is null && p.Variable is null)
                {
                    return true;
                }
            }

            return false;
        }
    }

    public string Evaluate(RequestContext r) => Evaluate(r, false);

    /// <summary>
    /// Evaluates the template; with <paramref name="escapeCaptures"/> the regex captures are escaped with
    /// NGX_ESCAPE_ARGS, as nginx's script engine does in the rewrite module when the request URI had
    /// "%" or "+" (ngx_http_script_copy_capture_code).
    /// </summary>
    public string Evaluate(RequestContext r, bool escapeCaptures)
    {
        if (_constant is not null)
        {
            return _constant;
        }

        var parts = _parts;
        if (parts.Length == 1)
        {
            return EvaluatePart(parts[0], r, escapeCaptures);
        }

        // The values are gathered first and joined once: the result is the only string made.
        if (parts.Length <= PartValues.Length)
        {
            var inline = default(PartValues);
            Span<string?> values = inline;
            values = values[..parts.Length];
            for (var i = 0; i < parts.Length; i++)
            {
                values[i] = EvaluatePart(parts[i], r, escapeCaptures);
            }

            return string.Concat(values);
        }

        var rented = ArrayPool<string?>.Shared.Rent(parts.Length);
        try
        {
            for (var i = 0; i < parts.Length; i++)
            {
                rented[i] = EvaluatePart(parts[i], r, escapeCaptures);
            }

            return string.Concat(rented.AsSpan(0, parts.Length));
        }
        finally
        {
            ArrayPool<string?>.Shared.Return(rented, clearArray: true);
        }
    }

    /// <summary>Room on the stack for the values of a template of up to eight parts.</summary>
    [InlineArray(Length)]
    private struct PartValues
    {
        public const int Length = 8;
        private string? _first;
    }

    private static string EvaluatePart(in CompiledPart p, RequestContext r, bool escapeCaptures)
    {
        if (p.Literal is not null)
        {
            return p.Literal;
        }

        if (p.Variable is not null)
        {
            return r.GetVariable(p.Variable) ?? string.Empty;
        }

        var capture = r.GetCapture(p.Capture) ?? string.Empty;
        return escapeCaptures ? UriEscape.Escape(capture, UriEscapeKind.Args) : capture;
    }

    public override string ToString() => Source;
}
