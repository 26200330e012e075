using Portico.Config.Model;

namespace Portico.Config.Directives;

/// <summary>A capability's contribution to the configuration language.</summary>
public interface IConfigModule
{
    /// <summary>Adds the module's directive specs and settings types.</summary>
    void Register(DirectiveRegistry registry);
}

/// <summary>All directive specs and settings types, assembled from the modules' tables.</summary>
public sealed class DirectiveRegistry
{
    private readonly Dictionary<string, List<DirectiveSpec>> _specs = new(StringComparer.Ordinal);
    private readonly List<ISettingsDescriptor> _settings = [];
    private readonly HashSet<Type> _settingsTypes = [];

    public IEnumerable<DirectiveSpec> All => _specs.Values.SelectMany(l => l);

    public IReadOnlyList<ISettingsDescriptor> SettingsTypes => _settings;

    /// <summary>Checks that need the whole bound model (run after merging); they add errors or warnings.</summary>
    public List<Action<ConfigModel, List<Syntax.Diagnostic>>> Validators { get; } = [];

    public DirectiveRegistry AddValidator(Action<ConfigModel, List<Syntax.Diagnostic>> validator)
    {
        Validators.Add(validator);
        return this;
    }

    public DirectiveRegistry Add(DirectiveSpec spec)
    {
        if (!_specs.TryGetValue(spec.Name, out var list))
        {
            list = [];
            _specs.Add(spec.Name, list);
        }

        list.Add(spec);
        return this;
    }

    public DirectiveRegistry Add(IEnumerable<DirectiveSpec> specs)
    {
        foreach (var s in specs)
        {
            Add(s);
        }

        return this;
    }

    /// <summary>Registers a settings type so every level gets one and merging visits it.</summary>
    public DirectiveRegistry AddSettings<T>(SettingsScope scope) where T : Settings<T>, new()
    {
        if (_settingsTypes.Add(typeof(T)))
        {
            _settings.Add(new SettingsDescriptor<T>(scope));
        }

        return this;
    }

    public IReadOnlyList<DirectiveSpec>? Find(string name) => _specs.TryGetValue(name, out var l) ? l : null;

    public static DirectiveRegistry Create(IEnumerable<IConfigModule> modules)
    {
        var registry = new DirectiveRegistry();
        foreach (var m in modules)
        {
            m.Register(registry);
        }

        return registry;
    }
}
