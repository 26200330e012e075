using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Config.Directives;

/// <summary>The state of one level while binding: its context kind, settings and enclosing blocks.</summary>
public sealed class BindScope
{
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    public BindScope(Ctx kind, BindScope? parent, SettingsLevel? level)
    {
        Kind = kind;
        Parent = parent;
        Level = level;
        Http = parent?.Http;
        Server = parent?.Server;
        Location = parent?.Location;
        Custom = null;
    }

    public Ctx Kind { get; }
    public BindScope? Parent { get; }

    /// <summary>Settings of this level (null in main/events/upstream scopes, which keep their own state).</summary>
    public SettingsLevel? Level { get; }

    public HttpBlock? Http { get; init; }
    public ServerBlock? Server { get; init; }
    public LocationBlock? Location { get; init; }

    /// <summary>Module-owned object of a custom block (an upstream, a map, ...).</summary>
    public object? Custom { get; init; }

    internal bool MarkSeen(string name) => _seen.Add(name);
}

/// <summary>A directive being bound: its arguments with nginx's typed parsers, and the scope it is in.</summary>
public sealed class DirectiveCall
{
    internal DirectiveCall(Directive directive, BindScope scope, ConfigBinder binder)
    {
        Directive = directive;
        Scope = scope;
        Binder = binder;
    }

    public Directive Directive { get; }
    public BindScope Scope { get; }
    public ConfigBinder Binder { get; }
    public ConfigModel Model => Binder.Model;

    public string Name => Directive.Name;
    public int Count => Directive.Args.Count;
    public string this[int index] => Directive.Args[index].Value;
    public IReadOnlyList<ConfigArg> Args => Directive.Args;

    /// <summary>nginx's "\"name\" directive {tail}" message.</summary>
    public ConfigException Error(string tail) => Directive.Error($"\"{Name}\" directive {tail}");

    /// <summary>A message in full, nginx's ngx_conf_log_error(NGX_LOG_EMERG, ...).</summary>
    public ConfigException Emerg(string message) => Directive.Error(message);

    public ConfigException InvalidValue(int index) =>
        Directive.Error($"invalid value \"{this[index]}\" in \"{Name}\" directive");

    public void Warn(string message) =>
        Model.Warnings.Add(new Diagnostic(LogLevel.Warn, message, Directive.File, Directive.Line));

    public T Loc<T>() where T : class, new() =>
        (Scope.Level ?? throw Emerg($"\"{Name}\" directive has no settings level here")).Get<T>();

    public T Main<T>() where T : class, new() => Model.Main.Get<T>();

    public T HttpMain<T>() where T : class, new() =>
        (Scope.Http ?? throw Emerg($"\"{Name}\" directive is not allowed here")).Settings.Get<T>();

    public bool Flag(int index)
    {
        var v = this[index];
        if (v.Equals("on", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        if (v.Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        throw Emerg($"invalid value \"{v}\" in \"{Name}\" directive, it must be \"on\" or \"off\"");
    }

    public long Size(int index) =>
        ConfigValues.TryParseSize(this[index], out var n) ? n : throw Error("invalid value");

    public long Offset(int index) =>
        ConfigValues.TryParseOffset(this[index], out var n) ? n : throw Error("invalid value");

    public TimeSpan Time(int index) =>
        ConfigValues.TryParseMilliseconds(this[index], out var ms) ? TimeSpan.FromMilliseconds(ms) : throw Error("invalid value");

    public long Seconds(int index) =>
        ConfigValues.TryParseSeconds(this[index], out var s) ? s : throw Error("invalid value");

    public long Number(int index) =>
        ConfigValues.TryParseNumber(this[index], out var n) ? n : throw Error("invalid number");

    public ValueTemplate Template(int index) => ValueTemplate.Parse(this[index], Directive);

    /// <summary>Binds the block of this directive in a new scope.</summary>
    public void BindBlock(BindScope scope) => Binder.BindBlock(Directive.Block ?? [], scope);
}
