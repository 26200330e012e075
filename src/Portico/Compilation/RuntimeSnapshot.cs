using Portico.Config;
using Portico.Config.Model;
using Portico.Logging;
using Portico.Routing;
using Portico.Variables;

namespace Portico.Compilation;

/// <summary>
/// Everything a request reads, compiled from one configuration and never changed afterwards. A reload
/// builds the next snapshot beside it and swaps one reference; requests keep the one they started with.
/// </summary>
public sealed class RuntimeSnapshot
{
    private readonly Dictionary<Type, object> _features = [];
    private long _active;

    internal RuntimeSnapshot(int generation, ConfigLoadResult load, VariableRegistry variables, ErrorLog errorLog, HostServices services)
    {
        Generation = generation;
        Load = load;
        Variables = variables;
        ErrorLog = errorLog;
        Services = services;
    }

    public int Generation { get; }
    public ConfigLoadResult Load { get; }
    public ConfigModel Model => Load.Model!;
    public MainSettings Main => Model.Main.Get<MainSettings>();
    public VariableRegistry Variables { get; }

    /// <summary>The main error log of this configuration.</summary>
    public ErrorLog ErrorLog { get; }

    public HostServices Services { get; }

    public Dictionary<string, ListenerRuntime> Listeners { get; } = new(StringComparer.Ordinal);
    public List<ServerRuntime> Servers { get; } = [];

    /// <summary>The content handler of locations that have none (nginx's static module), if any.</summary>
    public Pipeline.ContentHandler? DefaultContent { get; set; }

    /// <summary>Modules' contributions to how sockets are served (TLS, HTTP/2, client timeouts).</summary>
    public List<Hosting.IListenerHook> ListenerHooks { get; } = [];

    /// <summary>Requests currently running on this snapshot.</summary>
    public long ActiveRequests => Interlocked.Read(ref _active);

    /// <summary>Set when a newer snapshot replaced this one.</summary>
    public bool Retired { get; internal set; }

    internal Action<RuntimeSnapshot>? OnDrained { get; set; }

    public void Enter() => Interlocked.Increment(ref _active);

    public void Leave()
    {
        if (Interlocked.Decrement(ref _active) == 0 && Retired)
        {
            OnDrained?.Invoke(this);
        }
    }

    /// <summary>Module runtime state attached to this snapshot (upstream groups, maps ...).</summary>
    public T? Feature<T>() where T : class => _features.TryGetValue(typeof(T), out var v) ? (T)v : null;

    public void SetFeature<T>(T value) where T : class => _features[typeof(T)] = value;
}
