using Portico.Config;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Logging;
using Portico.Pipeline;
using Portico.Routing;
using Portico.Variables;

namespace Portico.Compilation;

/// <summary>The state of one snapshot compilation, shared by the modules; collects every error.</summary>
public sealed class SnapshotBuilder
{
    private readonly Dictionary<List<ErrorLogSpec>, ErrorLog> _errorLogs = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<LocationBlock, LocationRuntime> _runtimes = new(ReferenceEqualityComparer.Instance);

    internal SnapshotBuilder(RuntimeSnapshot snapshot, IReadOnlyList<PorticoModule> modules)
    {
        Snapshot = snapshot;
        Modules = modules;
    }

    public RuntimeSnapshot Snapshot { get; }
    public IReadOnlyList<PorticoModule> Modules { get; }
    public ConfigModel Model => Snapshot.Model;
    public VariableRegistry Variables => Snapshot.Variables;
    public HostServices Services => Snapshot.Services;
    public List<Diagnostic> Errors { get; } = [];

    /// <summary>Listen parameters a module serves ("ssl", "http2", "quic"); sockets asking for others are an error.</summary>
    public HashSet<string> SupportedListenParameters { get; } = new(StringComparer.Ordinal);

    /// <summary>Settings at the http level (null when there is no http block).</summary>
    public T? HttpMain<T>() where T : class, new() => Model.Http?.Settings.Get<T>();

    public void Error(ConfigException e) => Errors.Add(e.ToDiagnostic());

    public void Error(string message, Directive at) => Errors.Add(new Diagnostic(LogLevel.Emerg, message, at.File, at.Line));

    /// <summary>Compiles a template, recording nginx's error (unknown variable) instead of throwing.</summary>
    public CompiledTemplate Compile(ValueTemplate template)
    {
        try
        {
            return Variables.Compile(template);
        }
        catch (ConfigException e)
        {
            Error(e);
            return CompiledTemplate.Empty;
        }
    }

    public LocationRuntime? RuntimeOf(LocationBlock block) => _runtimes.GetValueOrDefault(block);

    internal void Remember(LocationBlock block, LocationRuntime runtime) => _runtimes[block] = runtime;

    internal ErrorLog ErrorLogFor(SettingsLevel level)
    {
        var logs = level.Get<ErrorLogSettings>().Logs;
        if (logs is null)
        {
            return Snapshot.ErrorLog;
        }

        if (!_errorLogs.TryGetValue(logs, out var log))
        {
            log = ErrorLogFactory.Create(logs, Services.LogWriter, Errors);
            _errorLogs.Add(logs, log);
        }

        return log;
    }
}

/// <summary>Builds ErrorLog objects from error_log specs, opening the files as nginx does at load time.</summary>
public static class ErrorLogFactory
{
    public static ErrorLog Create(IEnumerable<ErrorLogSpec> specs, LogWriter writer, List<Diagnostic>? errors)
    {
        var targets = new List<(LogSink, LogLevel)>();
        foreach (var spec in specs)
        {
            var sink = writer.GetSink(spec.Path);
            try
            {
                sink.EnsureOpen();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors?.Add(new Diagnostic(LogLevel.Emerg, $"open() \"{spec.Path}\" failed ({Errno(e)})", null, 0));
                continue;
            }

            targets.Add((sink, spec.Level));
        }

        return new ErrorLog(writer, targets);
    }

    public static string Errno(Exception e) => e switch
    {
        UnauthorizedAccessException => "13: Permission denied",
        DirectoryNotFoundException or FileNotFoundException => "2: No such file or directory",
        _ => "5: " + e.Message,
    };
}

/// <summary>What a module sees while compiling a server.</summary>
public sealed class ServerCompiler
{
    private readonly List<PhaseHandler> _serverRewrite = [];
    private readonly List<PhaseHandler> _postRead = [];

    internal ServerCompiler(SnapshotBuilder snapshot, ServerRuntime server)
    {
        Snapshot = snapshot;
        Server = server;
    }

    public SnapshotBuilder Snapshot { get; }
    public ServerRuntime Server { get; }
    public ServerBlock Block => Server.Block;

    public T Settings<T>() where T : class, new() => Block.Settings.Get<T>();

    public void AddServerRewrite(PhaseHandler handler) => _serverRewrite.Add(handler);

    /// <summary>Adds a post-read handler: runs once per request after server selection, before server rewrite.</summary>
    public void AddPostRead(PhaseHandler handler) => _postRead.Add(handler);

    internal PhaseHandler[] ServerRewrite => [.. _serverRewrite];

    internal PhaseHandler[] PostRead => [.. _postRead];
}

/// <summary>What a module sees while compiling a location (or the server level, or an "if" block).</summary>
public sealed class LocationCompiler
{
    private readonly List<PhaseHandler> _rewrite = [];
    private readonly List<PhaseHandler> _preAccess = [];
    private readonly List<PhaseHandler> _access = [];
    private readonly List<PhaseHandler> _preContent = [];
    private readonly List<LogHandler> _log = [];
    private readonly List<HeaderFilter> _headerFilters = [];
    private string? _contentOwner;

    internal LocationCompiler(SnapshotBuilder snapshot, LocationRuntime runtime, ServerCompiler server)
    {
        Snapshot = snapshot;
        Runtime = runtime;
        ServerCompiler = server;
    }

    public SnapshotBuilder Snapshot { get; }
    public LocationRuntime Runtime { get; }
    public ServerCompiler ServerCompiler { get; }
    public ServerRuntime Server => Runtime.Server;

    /// <summary>The configuration block; null at the server level.</summary>
    public LocationBlock? Block => Runtime.Block;

    public bool IsServerLevel => Runtime.Block is null;

    public SettingsLevel Level => Runtime.Settings;

    public T Settings<T>() where T : class, new() => Runtime.Settings.Get<T>();

    /// <summary>
    /// A content handler's setting as nginx sees it in this block: "if" and limit_except blocks (noname
    /// locations) take it from the enclosing location when they do not set it themselves.
    /// </summary>
    public TValue? HandlerSetting<TSettings, TValue>(Func<TSettings, TValue?> get)
        where TSettings : class, new()
        where TValue : class
    {
        var value = get(Settings<TSettings>());
        if (value is null && Block is { Kind: LocationKind.If or LocationKind.LimitExcept } pseudo)
        {
            for (var p = pseudo.Parent; p is not null && value is null; p = p.Parent)
            {
                value = get(p.Settings.Get<TSettings>());
                if (p.Kind is not (LocationKind.If or LocationKind.LimitExcept))
                {
                    break;
                }
            }
        }

        return value;
    }

    public CompiledTemplate Compile(ValueTemplate template) => Snapshot.Compile(template);

    public void Add(Phase phase, PhaseHandler handler)
    {
        switch (phase)
        {
            case Phase.Rewrite:
                _rewrite.Add(handler);
                break;
            case Phase.PreAccess:
                _preAccess.Add(handler);
                break;
            case Phase.Access:
                _access.Add(handler);
                break;
            case Phase.PreContent:
                _preContent.Add(handler);
                break;
            case Phase.ServerRewrite:
                ServerCompiler.AddServerRewrite(handler);
                break;
            case Phase.PostRead:
                ServerCompiler.AddPostRead(handler);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(phase), phase, "use SetContent or AddLog");
        }
    }

    /// <summary>Sets the content handler; a second module claiming the location is a configuration error.</summary>
    public void SetContent(ContentHandler handler, string owner, Directive at)
    {
        if (_contentOwner is not null && _contentOwner != owner)
        {
            Snapshot.Error($"\"{owner}\" directive is duplicate, \"{_contentOwner}\" directive was specified earlier", at);
            return;
        }

        _contentOwner = owner;
        Runtime.Content = handler;
    }

    public bool HasContent => Runtime.Content is not null;

    public void AddLog(LogHandler handler) => _log.Add(handler);

    public void AddHeaderFilter(HeaderFilter filter) => _headerFilters.Add(filter);

    public void SetErrorPages(IErrorPages pages) => Runtime.ErrorPages = pages;

    internal void Finish()
    {
        Runtime.Rewrite = [.. _rewrite];
        Runtime.PreAccess = [.. _preAccess];
        Runtime.Access = [.. _access];
        Runtime.PreContent = [.. _preContent];
        Runtime.LogHandlers = [.. _log];
        Runtime.HeaderFilters = [.. _headerFilters];
    }
}
