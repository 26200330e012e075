using Portico.Config.Directives;
using Portico.Variables;

namespace Portico.Compilation;

/// <summary>
/// A capability of Portico: the directives it owns (its table and settings types), the variables it
/// provides, and the handlers it compiles into servers and locations. Adding a feature is adding a module.
/// </summary>
public abstract class PorticoModule : IConfigModule
{
    public abstract string Name { get; }

    /// <summary>Adds the module's directive specs, settings types and validators.</summary>
    public abstract void Register(DirectiveRegistry registry);

    /// <summary>Adds the module's variables to a snapshot's registry.</summary>
    public virtual void RegisterVariables(VariableRegistry variables, SnapshotBuilder snapshot)
    {
    }

    /// <summary>Builds http-wide runtime state (upstream groups, zones, maps) before servers are compiled.</summary>
    public virtual void CompileHttp(SnapshotBuilder snapshot)
    {
    }

    /// <summary>Adds handlers to a server (server-rewrite phase).</summary>
    public virtual void CompileServer(ServerCompiler server)
    {
    }

    /// <summary>Adds handlers to a location (also called for the server level and for "if" blocks).</summary>
    public virtual void CompileLocation(LocationCompiler location)
    {
    }

    /// <summary>Runs after the snapshot is complete and before it serves (checks across locations).</summary>
    public virtual void CompleteSnapshot(SnapshotBuilder snapshot)
    {
    }

    /// <summary>The snapshot became current: start its background work (health checks, resolvers).</summary>
    public virtual void Activate(RuntimeSnapshot snapshot, RuntimeSnapshot? previous)
    {
    }

    /// <summary>The snapshot was replaced: stop its background work. Requests may still be running on it.</summary>
    public virtual void Deactivate(RuntimeSnapshot snapshot)
    {
    }
}
