using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Config.Directives;

/// <summary>
/// Walks the directive tree, checks each directive against its spec (name, context, block, arity,
/// duplicates — in nginx's order and words) and runs its handler. Errors are collected, not thrown,
/// so one load reports every problem it can.
/// </summary>
public sealed class ConfigBinder
{
    private readonly DirectiveRegistry _registry;
    private readonly List<(SettingsLevel Level, bool IsServer)> _levels = [];

    public ConfigBinder(DirectiveRegistry registry, ConfigModel model)
    {
        _registry = registry;
        Model = model;
    }

    public ConfigModel Model { get; }
    public DirectiveRegistry Registry => _registry;
    public List<Diagnostic> Errors { get; } = [];

    /// <summary>Creates the settings level of a server block (merged from http later).</summary>
    public SettingsLevel NewServerLevel(SettingsLevel http)
    {
        var level = new SettingsLevel(http);
        _levels.Add((level, true));
        return level;
    }

    /// <summary>Creates the settings level of a location, "if" or limit_except block.</summary>
    public SettingsLevel NewLocationLevel(SettingsLevel parent)
    {
        var level = new SettingsLevel(parent);
        _levels.Add((level, false));
        return level;
    }

    public void BindBlock(IReadOnlyList<Directive> directives, BindScope scope)
    {
        foreach (var d in directives)
        {
            try
            {
                BindOne(d, scope);
            }
            catch (ConfigException e)
            {
                Errors.Add(e.ToDiagnostic());
            }
        }
    }

    private void BindOne(Directive d, BindScope scope)
    {
        var specs = _registry.Find(d.Name) ?? throw d.Error($"unknown directive \"{d.Name}\"");
        DirectiveSpec? spec = null;
        foreach (var s in specs)
        {
            if ((s.Contexts & scope.Kind) != 0)
            {
                spec = s;
                break;
            }
        }

        if (spec is null)
        {
            throw d.Error($"\"{d.Name}\" directive is not allowed here");
        }

        if (!spec.IsBlock && d.HasBlock)
        {
            throw d.Error($"directive \"{d.Name}\" is not terminated by \";\"");
        }

        if (spec.IsBlock && !d.HasBlock)
        {
            throw d.Error($"directive \"{d.Name}\" has no opening \"{{\"");
        }

        if (!spec.Arity.Accepts(d.Args.Count))
        {
            throw d.Error($"invalid number of arguments in \"{d.Name}\" directive");
        }

        if (!spec.Repeatable && !scope.MarkSeen(d.Name))
        {
            throw d.Error($"\"{d.Name}\" directive is duplicate");
        }

        spec.Handler(new DirectiveCall(d, scope, this));
    }

    /// <summary>nginx's merge pass: http → server → location → nested, for every registered settings type.</summary>
    public void Merge()
    {
        if (Model.Http is null)
        {
            return;
        }

        var http = Model.Http.Settings;
        foreach (var desc in _registry.SettingsTypes)
        {
            desc.Touch(http);
        }

        foreach (var (level, isServer) in _levels)
        {
            var parent = level.Parent!;
            foreach (var desc in _registry.SettingsTypes)
            {
                if (desc.Scope == SettingsScope.Location || (isServer && desc.Scope == SettingsScope.Server))
                {
                    desc.Merge(level, parent);
                }
            }
        }
    }
}
