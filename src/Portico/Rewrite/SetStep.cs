using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Rewrite;

/// <summary>A variable "set" declares, where it was declared (for "the duplicate variable").</summary>
public sealed record SetVariableDeclaration(string Name, Directive Source);

/// <summary>Variables declared by "set" anywhere in an http block (nginx adds them when parsing).</summary>
public sealed class SetVariables : Settings<SetVariables>
{
    public List<SetVariableDeclaration> Declared { get; } = [];

    public override void MergeFrom(SetVariables parent)
    {
    }
}

/// <summary>set $variable value;</summary>
public sealed class SetSpec : StepSpec
{
    private readonly string _name;
    private readonly ValueTemplate _value;

    private SetSpec(Directive source, string name, ValueTemplate value) : base(source)
    {
        _name = name;
        _value = value;
    }

    public string Name => _name;

    public static SetSpec Bind(DirectiveCall c)
    {
        var target = c[0];
        if (target.Length == 0 || target[0] != '$')
        {
            throw c.Emerg($"invalid variable name \"{target}\"");
        }

        if (target.Length == 1)
        {
            throw c.Emerg("invalid variable name \"$\"");
        }

        var name = target[1..].ToLowerInvariant();
        var value = c.Template(1);
        c.HttpMain<SetVariables>().Declared.Add(new SetVariableDeclaration(name, c.Directive));
        return new SetSpec(c.Directive, name, value);
    }

    public override ScriptStep Compile(LocationCompiler location)
    {
        var variable = location.Snapshot.Variables.Find(_name)
            ?? location.Snapshot.Variables.Declare(_name);
        return new SetStep(variable, location.Compile(_value));
    }
}

/// <summary>Stores a value into a variable: its own slot, or its setter ($args).</summary>
public sealed class SetStep : ScriptStep
{
    private readonly Variable _variable;
    private readonly CompiledTemplate _value;

    public SetStep(Variable variable, CompiledTemplate value)
    {
        _variable = variable;
        _value = value;
    }

    public override ValueTask<StepResult> ExecuteAsync(RequestContext r, ScriptState state)
    {
        var value = _value.Evaluate(r, state.Quote && r.QuotedOrPlusUri);
        r.SetVariable(_variable, value);
        return ValueTask.FromResult(StepResult.Next);
    }
}

/// <summary>break;</summary>
public sealed class BreakSpec : StepSpec
{
    public BreakSpec(Directive source) : base(source)
    {
    }

    public override ScriptStep Compile(LocationCompiler location) => BreakStep.Instance;
}

/// <summary>Stops the script; a URI changed by an earlier rewrite stays in this location.</summary>
public sealed class BreakStep : ScriptStep
{
    public static readonly BreakStep Instance = new();

    public override ValueTask<StepResult> ExecuteAsync(RequestContext r, ScriptState state)
    {
        state.UriChanged = false;
        return ValueTask.FromResult(StepResult.Break);
    }
}
