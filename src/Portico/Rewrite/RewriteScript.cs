using Portico.Compilation;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;

namespace Portico.Rewrite;

/// <summary>What a rewrite step tells the script: run the next step, or stop with a flow.</summary>
public readonly record struct StepResult(bool Stop, Flow Flow)
{
    public static readonly StepResult Next = new(false, Flow.Continue);

    /// <summary>Stop the script and go on with the next phases ("break", "rewrite ... break|last").</summary>
    public static readonly StepResult Break = new(true, Flow.Continue);

    public static StepResult With(Flow flow) => new(true, flow);
}

/// <summary>
/// The state of one run of a script (nginx's ngx_http_script_engine_t): rewrite_log as it was when the
/// script started, whether captures are still escaped (e->quote, until a rewrite ran), and whether the
/// URI changed (r->uri_changed: the location is searched again after the rewrite phase).
/// </summary>
public sealed class ScriptState
{
    public ScriptState(bool log)
    {
        Log = log;
    }

    /// <summary>rewrite_log of the level whose script runs.</summary>
    public bool Log { get; }

    /// <summary>nginx's e->quote: captures copied into values are escaped (when the URI had "%" or "+").</summary>
    public bool Quote { get; set; } = true;

    /// <summary>A rewrite changed the URI and did not say "break".</summary>
    public bool UriChanged { get; set; }
}

/// <summary>One compiled directive of the rewrite module (return, rewrite, set, if, break).</summary>
public abstract class ScriptStep
{
    public abstract ValueTask<StepResult> ExecuteAsync(RequestContext r, ScriptState state);
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
    private readonly bool _serverLevel;
    private readonly bool _log;

    /// <param name="steps">The level's compiled directives.</param>
    /// <param name="serverLevel">The server-level script (server-rewrite phase).</param>
    /// <param name="log">rewrite_log of the level (the script always runs with its own level's configuration).</param>
    public ScriptHandler(ScriptStep[] steps, bool serverLevel = false, bool log = false)
    {
        _steps = steps;
        _serverLevel = serverLevel;
        _log = log;
    }

    public override async ValueTask<Flow> InvokeAsync(RequestContext r)
    {
        var state = new ScriptState(_log);
        var result = StepResult.Next;
        foreach (var step in _steps)
        {
            var task = step.ExecuteAsync(r, state);
            result = task.IsCompletedSuccessfully ? task.Result : await task.ConfigureAwait(false);
            if (result.Stop)
            {
                break;
            }
        }

        // nginx's post-rewrite phase: a changed URI is looked up again (the server level is followed by
        // the location lookup anyway).
        if (result.Flow == Flow.Continue && state.UriChanged && !_serverLevel)
        {
            return Flow.Restart;
        }

        return result.Flow;
    }

    /// <summary>Runs steps as part of another script (the body of a matching "if").</summary>
    public static async ValueTask<StepResult> RunAsync(ScriptStep[] steps, RequestContext r, ScriptState state)
    {
        foreach (var step in steps)
        {
            var task = step.ExecuteAsync(r, state);
            var result = task.IsCompletedSuccessfully ? task.Result : await task.ConfigureAwait(false);
            if (result.Stop)
            {
                return result;
            }
        }

        return StepResult.Next;
    }
}
