using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Routing;

namespace Portico.Rewrite;

/// <summary>
/// if (condition) { ... }: its rewrite directives are part of the enclosing script (nginx compiles them
/// into the parent's code array); in a location, a true condition also makes the "if" block the
/// request's configuration for the phases that follow.
/// </summary>
public sealed class IfSpec : StepSpec
{
    private readonly ConditionSpec _condition;
    private readonly LocationBlock _block;
    private readonly StepSpec[] _body;
    private readonly bool _inLocation;

    private IfSpec(Directive source, ConditionSpec condition, LocationBlock block, StepSpec[] body, bool inLocation) : base(source)
    {
        _condition = condition;
        _block = block;
        _body = body;
        _inLocation = inLocation;
    }

    /// <summary>ngx_http_rewrite_if: a pseudo-location inheriting from its parent, the condition, the body.</summary>
    public static IfSpec Bind(DirectiveCall c)
    {
        var args = new string[c.Count];
        for (var i = 0; i < args.Length; i++)
        {
            args[i] = c[i];
        }

        var scope = c.Scope;
        var server = scope.Server!;
        var parent = scope.Location;
        var inLocation = scope.Kind == Ctx.Location;
        var level = c.Binder.NewLocationLevel(scope.Level!);
        var block = new LocationBlock(c.Directive, LocationKind.If, parent?.Pattern ?? string.Empty, level, server, parent);

        // nginx adds the pseudo-location before it parses the condition.
        var condition = ConditionSpec.Parse(args, c.Directive, c.Model);
        if (condition.Regex is not null)
        {
            c.HttpMain<Variables.CaptureDeclarations>().Regexes.Add((condition.Regex, c.Directive));
        }

        if (inLocation)
        {
            parent!.IfBlocks.Add(block);
        }
        else
        {
            server.IfBlocks.Add(block);
        }

        c.BindBlock(new BindScope(inLocation ? Ctx.LocationIf : Ctx.ServerIf, scope, level)
        {
            Http = scope.Http,
            Server = server,
            Location = inLocation ? block : null,
        });

        // The inner directives belong to the parent's script.
        var own = level.Get<RewriteSettings>().Steps;
        var body = own.ToArray();
        own.Clear();
        return new IfSpec(c.Directive, condition, block, body, inLocation);
    }

    public override ScriptStep Compile(LocationCompiler location)
    {
        var snapshot = location.Snapshot;
        Condition condition;
        try
        {
            var variable = _condition.VariableName is null ? null : snapshot.Variables.Require(_condition.VariableName, Source.File, Source.Line);
            var value = _condition.Value is null ? null : snapshot.Variables.Compile(_condition.Value);
            condition = new Condition(_condition, variable, value);
        }
        catch (ConfigException e)
        {
            snapshot.Error(e);
            condition = new Condition(_condition, null, null);
        }

        var body = new ScriptStep[_body.Length];
        for (var i = 0; i < body.Length; i++)
        {
            body[i] = _body[i].Compile(location);
        }

        var target = _inLocation ? snapshot.RuntimeOf(_block) : null;
        return new IfStep(condition, target, body);
    }
}

/// <summary>Evaluates the condition; when true, switches to the "if" configuration and runs the body.</summary>
public sealed class IfStep : ScriptStep
{
    private readonly Condition _condition;
    private readonly LocationRuntime? _target;
    private readonly ScriptStep[] _body;

    public IfStep(Condition condition, LocationRuntime? target, ScriptStep[] body)
    {
        _condition = condition;
        _target = target;
        _body = body;
    }

    public override ValueTask<StepResult> ExecuteAsync(RequestContext r, ScriptState state)
    {
        if (_condition.Kind == ConditionKind.File)
        {
            return FileTestAsync(r, state);
        }

        return _condition.Evaluate(r, state) ? EnterAsync(r, state) : ValueTask.FromResult(StepResult.Next);
    }

    private async ValueTask<StepResult> FileTestAsync(RequestContext r, ScriptState state)
    {
        var path = _condition.EvaluatePath(r, state);

        // stat() blocks: keep it off the connection's I/O thread.
        var facts = await Task.Run(() => FileFacts.Of(path), r.Http.RequestAborted).ConfigureAwait(false);
        if (!ConditionSpec.Evaluate(_condition.FileTest, facts))
        {
            return StepResult.Next;
        }

        return await EnterAsync(r, state).ConfigureAwait(false);
    }

    private ValueTask<StepResult> EnterAsync(RequestContext r, ScriptState state)
    {
        if (_target is not null)
        {
            r.Location = _target;
        }

        return ScriptHandler.RunAsync(_body, r, state);
    }
}
