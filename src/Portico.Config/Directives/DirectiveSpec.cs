using Portico.Config.Syntax;

namespace Portico.Config.Directives;

/// <summary>The configuration contexts a directive may appear in (nginx's NGX_*_CONF bits).</summary>
[Flags]
public enum Ctx
{
    None = 0,
    Main = 1,
    Events = 2,
    Http = 4,
    Server = 8,
    Location = 16,
    Upstream = 32,
    /// <summary>"if" inside a server block.</summary>
    ServerIf = 64,
    /// <summary>"if" inside a location block.</summary>
    LocationIf = 128,
    LimitExcept = 256,

    /// <summary>http, server and location: where most behaviour directives go.</summary>
    HttpServerLocation = Http | Server | Location,
    HttpServer = Http | Server,
    Any = Main | Events | Http | Server | Location | Upstream | ServerIf | LocationIf | LimitExcept,
}

/// <summary>How many arguments a directive takes (nginx's NGX_CONF_TAKE*, FLAG, 1MORE, 2MORE, ANY).</summary>
public readonly struct Arity
{
    private readonly uint _mask;
    private readonly int _moreFrom;

    private Arity(uint mask, int moreFrom, bool flag)
    {
        _mask = mask;
        _moreFrom = moreFrom;
        IsFlag = flag;
    }

    public bool IsFlag { get; }

    public static Arity None => new(1u, -1, false);
    public static Arity Flag => new(1u << 1, -1, true);
    public static Arity One => new(1u << 1, -1, false);
    public static Arity Two => new(1u << 2, -1, false);
    public static Arity OneOrMore => new(0, 1, false);
    public static Arity TwoOrMore => new(0, 2, false);
    public static Arity Any => new(0, 0, false);

    /// <summary>Between min and max arguments inclusive (TAKE12, TAKE123, ...).</summary>
    public static Arity Range(int min, int max)
    {
        uint mask = 0;
        for (var i = min; i <= max; i++)
        {
            mask |= 1u << i;
        }

        return new Arity(mask, -1, false);
    }

    /// <summary>Exactly one of the given counts (TAKE13 and the like).</summary>
    public static Arity Of(params int[] counts)
    {
        uint mask = 0;
        foreach (var c in counts)
        {
            mask |= 1u << c;
        }

        return new Arity(mask, -1, false);
    }

    public bool Accepts(int count)
    {
        if (_moreFrom >= 0)
        {
            return count >= _moreFrom;
        }

        return count < 32 && (_mask & (1u << count)) != 0;
    }
}

/// <summary>Runs when a directive is bound; throws <see cref="ConfigException"/> on error.</summary>
public delegate void DirectiveHandler(DirectiveCall call);

/// <summary>One directive a module accepts: where, how many arguments, and what binding it does.</summary>
public sealed class DirectiveSpec
{
    public DirectiveSpec(string name, Ctx contexts, Arity arity, DirectiveHandler handler)
    {
        Name = name;
        Contexts = contexts;
        Arity = arity;
        Handler = handler;
    }

    public string Name { get; }
    public Ctx Contexts { get; }
    public Arity Arity { get; }
    public DirectiveHandler Handler { get; }

    /// <summary>The directive opens a block ("{").</summary>
    public bool IsBlock { get; init; }

    /// <summary>May appear more than once at one level; otherwise a second one is "is duplicate".</summary>
    public bool Repeatable { get; init; }

    /// <summary>The module that owns it (for documentation and diagnostics).</summary>
    public string Module { get; init; } = "core";
}
