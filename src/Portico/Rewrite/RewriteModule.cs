using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Rewrite;

/// <summary>
/// ngx_http_rewrite_module: the per-level script of return, rewrite, set, if and break, run in the
/// server-rewrite phase (server level) or the rewrite phase (locations); rewrite_log and
/// uninitialized_variable_warn.
/// </summary>
public sealed class RewriteModule : PorticoModule
{
    public override string Name => "rewrite";

    /// <summary>Where the rewrite directives may stand (server, location and both kinds of "if").</summary>
    public const Ctx ScriptContexts = Ctx.Server | Ctx.Location | Ctx.ServerIf | Ctx.LocationIf;

    /// <summary>Where rewrite_log and uninitialized_variable_warn may stand.</summary>
    public const Ctx FlagContexts = Ctx.Http | ScriptContexts;

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<RewriteSettings>(SettingsScope.Location);
        r.AddSettings<SetVariables>(SettingsScope.HttpMain);
        r.AddSettings<CaptureDeclarations>(SettingsScope.HttpMain);
        r.Add(Script("return", Arity.Range(1, 2), ReturnSpec.Bind));
        r.Add(Script("rewrite", Arity.Range(2, 3), RewriteSpec.Bind));
        r.Add(Script("set", Arity.Two, SetSpec.Bind));
        r.Add(Script("break", Arity.None, c => new BreakSpec(c.Directive)));
        r.Add(new DirectiveSpec("if", Ctx.Server | Ctx.Location, Arity.OneOrMore, c => c.Loc<RewriteSettings>().Steps.Add(IfSpec.Bind(c)))
        {
            IsBlock = true,
            Repeatable = true,
            Module = Name,
        });
        r.Add(new DirectiveSpec("rewrite_log", FlagContexts, Arity.Flag, c => c.Loc<RewriteSettings>().RewriteLog = c.Flag(0)) { Module = Name });
        r.Add(new DirectiveSpec("uninitialized_variable_warn", FlagContexts, Arity.Flag,
            c => c.Loc<RewriteSettings>().UninitializedVariableWarn = c.Flag(0)) { Module = Name });
    }

    private DirectiveSpec Script(string name, Arity arity, Func<DirectiveCall, StepSpec> bind) =>
        new(name, ScriptContexts, arity, c => c.Loc<RewriteSettings>().Steps.Add(bind(c)))
        {
            Repeatable = true,
            Module = Name,
        };

    /// <summary>
    /// "set" declares its variable for the whole configuration (nginx's NGX_HTTP_VAR_WEAK): a variable
    /// nothing else provides reads as empty, with nginx's warning, until a "set" runs; a built-in that
    /// cannot change is "the duplicate" variable. Runs after every module registered its variables and
    /// before the map module defines its own (a map's value wins over "set"'s warning, as in nginx).
    /// </summary>
    public override void CompileHttp(SnapshotBuilder snapshot)
    {
        var declared = snapshot.HttpMain<SetVariables>()?.Declared;
        if (declared is null)
        {
            return;
        }

        var variables = snapshot.Variables;
        foreach (var (name, source) in declared)
        {
            var existing = variables.FindRegistered(name);
            if (existing is null)
            {
                if (variables.MatchesPrefix(name))
                {
                    // A prefix family provides it ($http_x); "set" only stores a value over it.
                    continue;
                }

                variables.DefineUser(name, UninitializedGetter(name));
                continue;
            }

            // A regex name, another "set" or a settable built-in ($args) keeps its own value source.
            if (!existing.Changeable)
            {
                snapshot.Error($"the duplicate \"{name}\" variable", source);
            }
        }
    }

    /// <summary>nginx's ngx_http_rewrite_var: the value of a "set" variable read before any "set" ran.</summary>
    private static VariableGetter UninitializedGetter(string name)
    {
        var message = $"using uninitialized \"{name}\" variable";
        return r =>
        {
            if (r.Location?.Get<RewriteSettings>().UninitializedVariableWarn != false)
            {
                r.LogError(LogLevel.Warn, message);
            }

            return string.Empty;
        };
    }

    public override void CompileLocation(LocationCompiler location)
    {
        var settings = location.Settings<RewriteSettings>();
        if (settings.Steps.Count == 0)
        {
            return;
        }

        var steps = new ScriptStep[settings.Steps.Count];
        for (var i = 0; i < steps.Length; i++)
        {
            steps[i] = settings.Steps[i].Compile(location);
        }

        var log = settings.RewriteLog == true;
        if (location.IsServerLevel)
        {
            location.Add(Phase.ServerRewrite, new ScriptHandler(steps, serverLevel: true, log));
        }
        else if (location.Block!.Kind is not (LocationKind.If or LocationKind.LimitExcept))
        {
            location.Add(Phase.Rewrite, new ScriptHandler(steps, serverLevel: false, log));
        }
    }
}
