using Portico.Compilation;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;

namespace Portico.Rewrite;

/// <summary>What a rewrite step tells the script: run the next step, or stop with a flow.</summary>
public readonly record struct StepResult(bool Stop, Flow Flow)
{
    public static readonly StepResult Next = new(false, Flow.Continue);

    /// <summary>Stop the script and go on with the next phases ("break", "rewrite ... break").</summary>
    public static readonly StepResult Break = new(true, Flow.Continue);

    public static StepResult With(Flow flow) => new(true, flow);
}

/// <summary>One compiled directive of the rewrite module (return, rewrite, set, if, break).</summary>
public abstract class ScriptStep
{
    public abstract ValueTask<StepResult> ExecuteAsync(RequestContext r);
}

/// <summary>A directive as bound, compiled into a step once the snapshot's variables are known.</summary>
public abstract class StepSpec
{
    protected StepSpec(Directive source)
    {
        Source = source;
    }

    public Directive Source { get; }

    public abstract ScriptStep Compile(LocationCompiler location);
}

/// <summary>The rewrite module's directives of one level, in order. Not inherited: each level runs its own.</summary>
public sealed class RewriteSettings : Settings<RewriteSettings>
{
    public List<StepSpec> Steps { get; } = [];

    public bool? RewriteLog { get; set; }
    public bool? UninitializedVariableWarn { get; set; }

    public override void MergeFrom(RewriteSettings parent)
    {
        RewriteLog ??= parent.RewriteLog ?? false;
        UninitializedVariableWarn ??= parent.UninitializedVariableWarn ?? true;
    }
}

/// <summary>Runs a level's rewrite steps in order: nginx's rewrite-phase (or server-rewrite-phase) handler.</summary>
public sealed class ScriptHandler : PhaseHandler
{
    private readonly ScriptStep[] _steps;

    public ScriptHandler(ScriptStep[] steps)
    {
        _steps = steps;
    }

    public override async ValueTask<Flow> InvokeAsync(RequestContext r)
    {
        foreach (var step in _steps)
        {
            var task = step.ExecuteAsync(r);
            var result = task.IsCompletedSuccessfully ? task.Result : await task.ConfigureAwait(false);
            if (result.Stop)
            {
                return result.Flow;
            }
        }

        return Flow.Continue;
    }

    /// <summary>Runs steps as part of another script (the body of a matching "if").</summary>
    public static async ValueTask<StepResult> RunAsync(ScriptStep[] steps, RequestContext r)
    {
        foreach (var step in steps)
        {
            var result = await step.ExecuteAsync(r).ConfigureAwait(false);
            if (result.Stop)
            {
                return result;
            }
        }

        return StepResult.Next;
    }
}
