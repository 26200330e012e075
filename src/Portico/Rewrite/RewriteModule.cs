using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Pipeline;

namespace Portico.Rewrite;

/// <summary>ngx_http_rewrite_module: the per-level script of return (and, later, rewrite/set/if/break).</summary>
public sealed class RewriteModule : PorticoModule
{
    public override string Name => "rewrite";

    /// <summary>Where the rewrite directives may stand (server, location and both kinds of "if").</summary>
    public const Ctx ScriptContexts = Ctx.Server | Ctx.Location | Ctx.ServerIf | Ctx.LocationIf;

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<RewriteSettings>(SettingsScope.Location);
        r.Add(new DirectiveSpec("return", ScriptContexts, Arity.Range(1, 2), c => c.Loc<RewriteSettings>().Steps.Add(ReturnSpec.Bind(c)))
        {
            Repeatable = true,
            Module = Name,
        });
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

        var handler = new ScriptHandler(steps);
        if (location.IsServerLevel)
        {
            location.Add(Phase.ServerRewrite, handler);
        }
        else if (location.Block!.Kind is not (LocationKind.If or LocationKind.LimitExcept))
        {
            location.Add(Phase.Rewrite, handler);
        }
    }
}
