using Portico.Config;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Logging;
using Portico.Routing;
using Portico.Variables;

namespace Portico.Compilation;

/// <summary>A configuration that parsed and bound but could not be compiled (unknown variable, ...).</summary>
public sealed class SnapshotCompileException : Exception
{
    public SnapshotCompileException(IReadOnlyList<Diagnostic> errors)
        : base(errors.Count > 0 ? errors[0].ToString() : "configuration compile failed")
    {
        Errors = errors;
    }

    public SnapshotCompileException() : this([]) { }
    public SnapshotCompileException(string message) : base(message) { Errors = []; }
    public SnapshotCompileException(string message, Exception inner) : base(message, inner) { Errors = []; }

    public IReadOnlyList<Diagnostic> Errors { get; }
}

/// <summary>Compiles a loaded configuration into a <see cref="RuntimeSnapshot"/> by running every module.</summary>
public sealed class SnapshotCompiler
{
    private readonly IReadOnlyList<PorticoModule> _modules;
    private readonly HostServices _services;

    public SnapshotCompiler(IReadOnlyList<PorticoModule> modules, HostServices services)
    {
        _modules = modules;
        _services = services;
    }

    public RuntimeSnapshot Compile(ConfigLoadResult load, int generation)
    {
        if (!load.Success)
        {
            throw new SnapshotCompileException(load.Errors);
        }

        var model = load.Model!;
        var errors = new List<Diagnostic>();
        var main = model.Main.Get<MainSettings>();
        var mainLogs = main.ErrorLogs.Count > 0
            ? main.ErrorLogs
            : [new ErrorLogSpec(load.Paths.FromPrefix("logs/error.log"), LogLevel.Error)];
        var errorLog = ErrorLogFactory.Create(mainLogs, _services.LogWriter, errors);

        var variables = new VariableRegistry();
        var snapshot = new RuntimeSnapshot(generation, load, variables, errorLog, _services);
        var builder = new SnapshotBuilder(snapshot, _modules);
        builder.Errors.AddRange(errors);

        foreach (var m in _modules)
        {
            m.RegisterVariables(variables, builder);
        }

        foreach (var name in model.DeclaredVariables)
        {
            variables.Declare(name);
        }

        foreach (var m in _modules)
        {
            m.CompileHttp(builder);
        }

        var serverRuntimes = new Dictionary<ServerBlock, ServerRuntime>(ReferenceEqualityComparer.Instance);
        if (model.Http is { } http)
        {
            foreach (var block in http.Servers)
            {
                var server = CompileServer(builder, block);
                serverRuntimes.Add(block, server);
                snapshot.Servers.Add(server);
            }

            foreach (var socket in load.Sockets)
            {
                var addresses = socket.Addresses
                    .Select(a => new AddressRuntime(a, new ServerNameTable(a.Servers.Select(s => serverRuntimes[s]), serverRuntimes[a.Default])))
                    .ToArray();
                snapshot.Listeners.Add(socket.Key, new ListenerRuntime(socket, addresses));
            }
        }

        foreach (var m in _modules)
        {
            m.CompleteSnapshot(builder);
        }

        if (builder.Errors.Count > 0)
        {
            throw new SnapshotCompileException(builder.Errors);
        }

        return snapshot;
    }

    private ServerRuntime CompileServer(SnapshotBuilder builder, ServerBlock block)
    {
        var server = new ServerRuntime(block);
        var sc = new ServerCompiler(builder, server);

        server.ServerLevel = CompileLocation(builder, sc, null, block.Settings, null);
        foreach (var m in _modules)
        {
            m.CompileServer(sc);
        }

        var top = new List<LocationRuntime>();
        foreach (var loc in block.Locations)
        {
            top.Add(CompileLocation(builder, sc, loc, loc.Settings, server.ServerLevel));
        }

        foreach (var (name, loc) in block.NamedLocations)
        {
            server.Named[name] = CompileLocation(builder, sc, loc, loc.Settings, server.ServerLevel);
        }

        server.Locations = new LocationTree(top);
        server.ServerRewrite = sc.ServerRewrite;
        server.PostRead = sc.PostRead;
        return server;
    }

    private LocationRuntime CompileLocation(SnapshotBuilder builder, ServerCompiler sc, LocationBlock? block, SettingsLevel level, LocationRuntime? parent)
    {
        var server = sc.Server;
        var runtime = new LocationRuntime(block, server, level, builder.ErrorLogFor(level));
        if (block is not null)
        {
            builder.Remember(block, runtime);
        }

        // Pseudo-locations ("if", limit_except) first: the parent's rewrite script refers to them.
        var pseudo = new List<LocationRuntime>();
        var ifBlocks = block?.IfBlocks ?? (block is null ? server.Block.IfBlocks : []);
        foreach (var ifBlock in ifBlocks)
        {
            pseudo.Add(CompileLocation(builder, sc, ifBlock, ifBlock.Settings, runtime));
        }

        if (block?.LimitExcept is { } limitExcept)
        {
            pseudo.Add(CompileLocation(builder, sc, limitExcept, limitExcept.Settings, runtime));
        }

        var lc = new LocationCompiler(builder, runtime, sc);
        foreach (var m in _modules)
        {
            m.CompileLocation(lc);
        }

        lc.Finish();

        // An "if" or limit_except block without its own content handler uses its location's.
        foreach (var p in pseudo)
        {
            p.Content ??= runtime.Content;
            p.AutoRedirect = runtime.AutoRedirect;
        }

        if (block is not null && block.Children.Count > 0)
        {
            var children = new List<LocationRuntime>();
            foreach (var child in block.Children)
            {
                children.Add(CompileLocation(builder, sc, child, child.Settings, runtime));
            }

            runtime.Nested = new LocationTree(children);
        }

        return runtime;
    }
}
