namespace Portico.Config.Syntax;

/// <summary>One argument of a directive after nginx's escape processing.</summary>
public sealed record ConfigArg(string Value, bool Quoted)
{
    public override string ToString() => Value;
}

/// <summary>A directive as written: name, arguments, optional block, and where it stands.</summary>
public sealed class Directive
{
    public Directive(string name, IReadOnlyList<ConfigArg> args, IReadOnlyList<Directive>? block, string file, int line)
    {
        Name = name;
        Args = args;
        Block = block;
        File = file;
        Line = line;
    }

    public string Name { get; }

    /// <summary>Arguments after the name (nginx's cf->args without element 0).</summary>
    public IReadOnlyList<ConfigArg> Args { get; }

    /// <summary>The children when the directive was terminated by "{", otherwise null.</summary>
    public IReadOnlyList<Directive>? Block { get; }

    public string File { get; }
    public int Line { get; }

    public bool HasBlock => Block is not null;

    public ConfigException Error(string message) => new(message, File, Line);

    public override string ToString() =>
        Args.Count == 0 ? Name : Name + " " + string.Join(' ', Args.Select(a => a.Value));
}
