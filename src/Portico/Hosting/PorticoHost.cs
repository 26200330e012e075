using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Portico.Compilation;
using Portico.Config;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Logging;
using NginxLevel = Portico.Config.Syntax.LogLevel;

namespace Portico.Hosting;

/// <summary>How Portico was started: nginx's -p, -c, -g and -e.</summary>
public sealed class HostOptions
{
    public required string Prefix { get; init; }
    public required string ConfFile { get; init; }
    public string? GlobalDirectives { get; init; }

    /// <summary>-e: where start-up errors go besides stderr ("stderr" for stderr only).</summary>
    public string? StartupErrorLog { get; init; }

    /// <summary>Configuration text used when <see cref="ConfFile"/> does not exist (the embedded default).</summary>
    public string? FallbackConfig { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Writes the "portico: ..." lines of the command line (stderr by default).</summary>
    public TextWriter Console { get; init; } = System.Console.Error;
}

/// <summary>
/// The running process: loads and compiles configurations, owns the listening sockets, swaps snapshots on
/// reload, and stops gracefully or fast. State that outlives a configuration lives in <see cref="Services"/>.
/// </summary>
public sealed class PorticoHost : IAsyncDisposable
{
    private readonly HostOptions _options;
    private readonly Dictionary<string, KestrelListener> _listeners = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ServiceProvider _serviceProvider;
    private volatile RuntimeSnapshot? _current;
    private int _generation;
    private string? _pidFile;
    private bool _stopping;

    public PorticoHost(HostOptions options)
    {
        _options = options;
        Modules = ModuleCatalog.CreateModules();
        Registry = ModuleCatalog.CreateRegistry(Modules);
        Writer = new LogWriter();
        var loggerProvider = new ErrorLogLoggerProvider(() => _current?.ErrorLog ?? StartupLog!);
        LoggerFactory = loggerProvider;
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(loggerProvider);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddSingleton(options.Time);
        foreach (var m in Modules)
        {
            if (m is IServiceModule sm)
            {
                sm.ConfigureServices(services);
            }
        }

        _serviceProvider = services.BuildServiceProvider();
        Services = new HostServices(Writer, options.Time, _serviceProvider);
        Compiler = new SnapshotCompiler(Modules, Services);
        StartupLog = CreateStartupLog();
    }

    public IReadOnlyList<PorticoModule> Modules { get; }
    public DirectiveRegistry Registry { get; }
    public LogWriter Writer { get; }
    public HostServices Services { get; }
    public SnapshotCompiler Compiler { get; }
    public IServiceProvider ServiceProvider => _serviceProvider;
    public ILoggerFactory LoggerFactory { get; }

    /// <summary>Where messages go before a configuration is loaded: stderr, and the -e file.</summary>
    public ErrorLog StartupLog { get; }

    public RuntimeSnapshot? Current => _current;

    public ErrorLog Log => _current?.ErrorLog ?? StartupLog;

    /// <summary>Completes when the host has stopped.</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>The listening sockets (key → local endpoint), for tests and the status page.</summary>
    public IReadOnlyCollection<string> ListenerKeys
    {
        get
        {
            lock (_listeners)
            {
                return [.. _listeners.Keys];
            }
        }
    }

    private ErrorLog CreateStartupLog()
    {
        var targets = new List<(LogSink, NginxLevel)> { (new LogSink("stderr"), NginxLevel.Notice) };
        if (_options.StartupErrorLog is { } e && e != "stderr")
        {
            targets.Add((Writer.GetSink(e), NginxLevel.Notice));
        }

        return new ErrorLog(null, targets);
    }

    public ConfigLoadResult Load() => ConfigLoader.Load(Registry, new ConfigLoadRequest
    {
        Prefix = _options.Prefix,
        ConfFile = _options.ConfFile,
        GlobalDirectives = _options.GlobalDirectives,
        FallbackText = _options.FallbackConfig,
    });

    /// <summary>Parse, bind, validate and compile; null with the diagnostics when anything fails.</summary>
    public RuntimeSnapshot? LoadAndCompile(out ConfigLoadResult load, out IReadOnlyList<Diagnostic> errors)
    {
        load = Load();
        if (!load.Success)
        {
            errors = load.Errors;
            return null;
        }

        try
        {
            var snapshot = Compiler.Compile(load, Interlocked.Increment(ref _generation));
            errors = [];
            return snapshot;
        }
        catch (SnapshotCompileException e)
        {
            errors = e.Errors;
            return null;
        }
    }

    /// <summary>Loads the configuration, binds every socket, writes the pid file. False (with the reason logged) on failure.</summary>
    public async Task<bool> StartAsync()
    {
        // Signals may arrive while starting (the pid file is written here): a reload or stop waits for the
        // start to finish.
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            return await StartCoreAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<bool> StartCoreAsync()
    {
        if (_stopping)
        {
            return false;
        }

        var snapshot = LoadAndCompile(out var load, out var errors);
        foreach (var w in load.Warnings)
        {
            ReportStartup(w);
        }

        if (snapshot is null)
        {
            foreach (var e in errors)
            {
                ReportStartup(e);
            }

            return false;
        }

        if (snapshot.Main.WorkerRlimitNofile is { } nofile && !Signals.SetOpenFileLimit(nofile, out var errno))
        {
            snapshot.ErrorLog.Alert($"setrlimit(RLIMIT_NOFILE, {nofile}) failed ({errno}: {(errno == 1 ? "Operation not permitted" : "Invalid argument")})");
        }

        try
        {
            foreach (var (key, listenerRuntime) in snapshot.Listeners)
            {
                var listener = await KestrelListener.StartAsync(listenerRuntime.Socket, snapshot, this).ConfigureAwait(false);
                lock (_listeners)
                {
                    _listeners.Add(key, listener);
                }
            }
        }
        catch (ListenException e)
        {
            ReportStartup(new Diagnostic(NginxLevel.Emerg, e.Message, null, 0));
            await StopListenersAsync(new CancellationToken(true)).ConfigureAwait(false);
            return false;
        }

        _current = snapshot;
        foreach (var m in Modules)
        {
            m.Activate(snapshot, null);
        }

        _pidFile = snapshot.Main.Pid ?? load.Paths.FromPrefix("logs/portico.pid");
        try
        {
            File.WriteAllText(_pidFile, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ReportStartup(new Diagnostic(NginxLevel.Emerg, $"open() \"{_pidFile}\" failed ({ErrorLogFactory.Errno(e)})", null, 0));
            _pidFile = null;
            await StopListenersAsync(new CancellationToken(true)).ConfigureAwait(false);
            return false;
        }

        snapshot.ErrorLog.Notice($"{Pipeline.Product.NameAndVersion} (.NET {Environment.Version}) started, pid {Environment.ProcessId}");
        return true;
    }

    private void ReportStartup(Diagnostic d)
    {
        _options.Console.WriteLine($"{Pipeline.Product.Name}: {d}");
        _options.Console.Flush();
        // Also into the -e log (stderr is already written above).
        foreach (var (sink, _) in StartupLog.Targets)
        {
            if (!sink.IsConsole)
            {
                LogWriter.WriteNow(sink, ErrorLog.Format(d.Level, d.File is null ? d.Message : d.ToString()[(d.ToString().IndexOf(']', StringComparison.Ordinal) + 2)..]));
            }
        }
    }

    /// <summary>HUP: a new configuration, or the old one kept with the reason logged.</summary>
    public async Task<bool> ReloadAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_stopping || _current is null)
            {
                return false;
            }

            var old = _current;
            old.ErrorLog.Notice("reconfiguring");
            var snapshot = LoadAndCompile(out var load, out var errors);
            foreach (var w in load.Warnings)
            {
                old.ErrorLog.Write(w.Level, WithPosition(w));
            }

            if (snapshot is null)
            {
                foreach (var e in errors)
                {
                    old.ErrorLog.Write(e.Level, WithPosition(e));
                }

                old.ErrorLog.Error("reload failed, the running configuration stays in force");
                return false;
            }

            // Bind what is new first, so a failure leaves everything as it was.
            var started = new List<KestrelListener>();
            var rebind = new List<KestrelListener>();
            try
            {
                foreach (var (key, lr) in snapshot.Listeners)
                {
                    KestrelListener? existing;
                    lock (_listeners)
                    {
                        _listeners.TryGetValue(key, out existing);
                    }

                    if (existing is not null && existing.Signature == KestrelListener.SignatureOf(lr.Socket))
                    {
                        continue;
                    }

                    if (existing is not null)
                    {
                        // Changed socket options: the old socket must close before the new one binds.
                        rebind.Add(existing);
                        _ = existing.StopAsync(ShutdownToken(snapshot));
                        lock (_listeners)
                        {
                            _listeners.Remove(key);
                        }

                        started.Add(await StartWithRetryAsync(lr, snapshot).ConfigureAwait(false));
                    }
                    else
                    {
                        started.Add(await KestrelListener.StartAsync(lr.Socket, snapshot, this).ConfigureAwait(false));
                    }
                }
            }
            catch (ListenException e)
            {
                old.ErrorLog.Emerg(e.Message);
                foreach (var l in started)
                {
                    await l.StopAsync(new CancellationToken(true)).ConfigureAwait(false);
                }

                old.ErrorLog.Error("reload failed, the running configuration stays in force");
                return false;
            }

            _current = snapshot;
            List<KestrelListener> removed = [];
            lock (_listeners)
            {
                foreach (var l in started)
                {
                    _listeners[l.Key] = l;
                }

                foreach (var (key, l) in _listeners)
                {
                    if (snapshot.Listeners.TryGetValue(key, out var lr))
                    {
                        l.Update(lr.Socket, snapshot);
                    }
                    else
                    {
                        removed.Add(l);
                    }
                }

                foreach (var l in removed)
                {
                    _listeners.Remove(l.Key);
                }
            }

            foreach (var l in removed)
            {
                _ = l.StopAsync(ShutdownToken(snapshot));
            }

            foreach (var m in Modules)
            {
                m.Deactivate(old);
                m.Activate(snapshot, old);
            }

            Retire(old);
            snapshot.ErrorLog.Notice($"configuration reloaded: generation {snapshot.Generation} serving, generation {old.Generation} finishing {old.ActiveRequests} request(s)");
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<KestrelListener> StartWithRetryAsync(Routing.ListenerRuntime lr, RuntimeSnapshot snapshot)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (true)
        {
            try
            {
                return await KestrelListener.StartAsync(lr.Socket, snapshot, this).ConfigureAwait(false);
            }
            catch (ListenException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
        }
    }

    private static void Retire(RuntimeSnapshot old)
    {
        var notified = 0;
        old.OnDrained = s =>
        {
            if (Interlocked.Exchange(ref notified, 1) == 0)
            {
                s.ErrorLog.Notice($"generation {s.Generation} has no requests left");
            }
        };
        old.Retired = true;
        if (old.ActiveRequests == 0)
        {
            old.OnDrained(old);
        }
    }

    private static string WithPosition(Diagnostic d) =>
        d.File is null ? d.Message : d.Line == 0 ? $"{d.Message} in {d.File}" : $"{d.Message} in {d.File}:{d.Line}";

    private static CancellationToken ShutdownToken(RuntimeSnapshot snapshot) =>
        snapshot.Main.WorkerShutdownTimeout is { } t ? new CancellationTokenSource(t).Token : CancellationToken.None;

    /// <summary>USR1: reopen every log file (after logrotate moved them).</summary>
    public void ReopenLogs()
    {
        Log.Notice("reopening logs");
        Writer.ReopenAll();
    }

    /// <summary>QUIT (graceful: finish in-flight requests) or TERM/INT (fast: drop connections).</summary>
    public async Task StopAsync(bool graceful)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_stopping)
            {
                return;
            }

            _stopping = true;
        }
        finally
        {
            _gate.Release();
        }

        var snapshot = _current;
        Log.Notice(graceful ? "gracefully shutting down" : "exiting fast");
        var token = graceful
            ? (snapshot is not null ? ShutdownToken(snapshot) : CancellationToken.None)
            : new CancellationToken(true);
        await StopListenersAsync(token).ConfigureAwait(false);
        if (snapshot is not null)
        {
            foreach (var m in Modules)
            {
                m.Deactivate(snapshot);
            }
        }

        Log.Notice("exit");
        await Writer.DrainAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        if (_pidFile is not null)
        {
            try
            {
                File.Delete(_pidFile);
            }
            catch (IOException)
            {
            }
        }

        _stopped.TrySetResult();
    }

    private async Task StopListenersAsync(CancellationToken token)
    {
        List<KestrelListener> all;
        lock (_listeners)
        {
            all = [.. _listeners.Values];
            _listeners.Clear();
        }

        await Task.WhenAll(all.Select(l => l.StopAsync(token))).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopping && _current is not null)
        {
            await StopAsync(graceful: false).ConfigureAwait(false);
        }

        await Writer.DisposeAsync().ConfigureAwait(false);
        await _serviceProvider.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }
}

/// <summary>A module that needs services in the host's container (YARP's forwarder, for instance).</summary>
public interface IServiceModule
{
    void ConfigureServices(IServiceCollection services);
}
