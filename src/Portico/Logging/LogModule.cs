using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portico.Compilation;
using Portico.Config;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Logging;

/// <summary>
/// ngx_http_log_module: log_format, access_log, open_log_file_cache (and log_subrequest from the core
/// module), the variables only logs need, and the log phase handler of every location.
/// </summary>
public sealed class LogModule : PorticoModule
{
    public override string Name => "http_log";

    /// <summary>Where access_log may stand: http, server, location, "if" in a location, limit_except.</summary>
    public const Ctx AccessLogContexts = Ctx.HttpServerLocation | Ctx.LocationIf | Ctx.LimitExcept;

    public const string DefaultPath = "logs/access.log";

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<LogMainSettings>(SettingsScope.HttpMain);
        r.AddSettings<AccessLogSettings>(SettingsScope.Location);
        r.Add(new DirectiveSpec("log_format", Ctx.Http, Arity.TwoOrMore, LogFormat) { Repeatable = true, Module = Name });
        r.Add(new DirectiveSpec("access_log", AccessLogContexts, Arity.OneOrMore, AccessLog) { Repeatable = true, Module = Name });
        r.Add(new DirectiveSpec("open_log_file_cache", Ctx.HttpServerLocation, Arity.Range(1, 4), OpenLogFileCache) { Module = Name });
        r.Add(new DirectiveSpec("log_subrequest", Ctx.HttpServerLocation, Arity.Flag, c => c.Loc<AccessLogSettings>().LogSubrequest = c.Flag(0)) { Module = Name });
    }

    // ---- binding ----

    private static void LogFormat(DirectiveCall c)
    {
        var main = c.HttpMain<LogMainSettings>();
        var name = c[0];
        foreach (var f in main.Formats)
        {
            if (f.Name == name)
            {
                throw c.Emerg($"duplicate \"log_format\" name \"{name}\"");
            }
        }

        var args = new string[c.Count - 1];
        for (var i = 1; i < c.Count; i++)
        {
            args[i - 1] = c[i];
        }

        main.Formats.Add(LogFormatSpec.Parse(name, args, c.Directive.File, c.Directive.Line));
    }

    private static void AccessLog(DirectiveCall c)
    {
        var settings = c.Loc<AccessLogSettings>();
        if (c[0] == "off")
        {
            settings.Off = true;
            if (c.Count > 1)
            {
                throw c.Emerg($"invalid parameter \"{c[1]}\"");
            }

            return;
        }

        if (c[0].StartsWith("syslog:", StringComparison.Ordinal))
        {
            throw c.Emerg("\"syslog:\" access logs are not supported by Portico; log to a file");
        }

        var main = c.HttpMain<LogMainSettings>();
        string? path = null;
        ValueTemplate? template = null;
        if (c[0].Contains('$', StringComparison.Ordinal))
        {
            template = ValueTemplate.Parse(c.Model.Paths.FromPrefix(c[0]), c.Directive);
        }
        else
        {
            path = c.Model.Paths.FromPrefix(c[0]);
        }

        var formatName = c.Count >= 2 ? c[1] : LogFormatSpec.CombinedName;
        var format = main.FindFormat(formatName) ?? throw c.Emerg($"unknown log format \"{formatName}\"");

        long size = 0;
        long flush = 0;
        var gzip = 0;
        ValueTemplate? condition = null;
        for (var i = 2; i < c.Count; i++)
        {
            var v = c[i];
            if (v.StartsWith("buffer=", StringComparison.Ordinal))
            {
                if (!ConfigValues.TryParseSize(v[7..], out size) || size == 0 || size > int.MaxValue)
                {
                    throw c.Emerg($"invalid buffer size \"{v[7..]}\"");
                }

                continue;
            }

            if (v.StartsWith("flush=", StringComparison.Ordinal))
            {
                if (!ConfigValues.TryParseMilliseconds(v[6..], out flush) || flush == 0)
                {
                    throw c.Emerg($"invalid flush time \"{v[6..]}\"");
                }

                continue;
            }

            if (v.StartsWith("gzip", StringComparison.Ordinal) && (v.Length == 4 || v[4] == '='))
            {
                if (size == 0)
                {
                    size = 64 * 1024;
                }

                if (v.Length == 4)
                {
                    gzip = 1;
                    continue;
                }

                if (!ConfigValues.TryParseNumber(v[5..], out var level) || level < 1 || level > 9)
                {
                    throw c.Emerg($"invalid compression level \"{v[5..]}\"");
                }

                gzip = (int)level;
                continue;
            }

            if (v.StartsWith("if=", StringComparison.Ordinal))
            {
                condition = ValueTemplate.Parse(v[3..], c.Directive);
                continue;
            }

            throw c.Emerg($"invalid parameter \"{v}\"");
        }

        if (flush > 0 && size == 0)
        {
            throw c.Emerg($"no buffer is defined for access_log \"{c[0]}\"");
        }

        if (size > 0)
        {
            if (template is not null)
            {
                throw c.Emerg("buffered logs cannot have variables in name");
            }

            var buffer = new LogBufferSpec((int)size, flush > 0 ? TimeSpan.FromMilliseconds(flush) : null, gzip);
            if (main.Buffers.TryGetValue(path!, out var existing))
            {
                if (existing != buffer)
                {
                    throw c.Emerg($"access_log \"{c[0]}\" already defined with conflicting parameters");
                }
            }
            else
            {
                main.Buffers.Add(path!, buffer);
            }
        }

        (settings.Logs ??= []).Add(new AccessLogSpec
        {
            PathSource = c[0],
            Path = path,
            PathTemplate = template,
            Format = format,
            Condition = condition,
            File = c.Directive.File,
            Line = c.Directive.Line,
        });
    }

    private static void OpenLogFileCache(DirectiveCall c)
    {
        long max = 0, inactive = 10, valid = 60, minUses = 1;
        var off = false;
        for (var i = 0; i < c.Count; i++)
        {
            var v = c[i];
            var ok = v switch
            {
                _ when v.StartsWith("max=", StringComparison.Ordinal) => ConfigValues.TryParseNumber(v[4..], out max),
                _ when v.StartsWith("inactive=", StringComparison.Ordinal) => ConfigValues.TryParseSeconds(v[9..], out inactive),
                _ when v.StartsWith("min_uses=", StringComparison.Ordinal) => ConfigValues.TryParseNumber(v[9..], out minUses),
                _ when v.StartsWith("valid=", StringComparison.Ordinal) => ConfigValues.TryParseSeconds(v[6..], out valid),
                "off" => off = true,
                _ => false,
            };
            if (!ok)
            {
                throw c.Emerg($"invalid \"open_log_file_cache\" parameter \"{v}\"");
            }
        }

        var settings = c.Loc<AccessLogSettings>();
        if (off)
        {
            settings.OpenFileCache = OpenLogFileCacheSpec.Off;
            return;
        }

        if (max == 0)
        {
            throw c.Emerg("\"open_log_file_cache\" must have \"max\" parameter");
        }

        settings.OpenFileCache = new OpenLogFileCacheSpec((int)Math.Min(max, int.MaxValue), TimeSpan.FromSeconds(inactive),
            (int)Math.Min(minUses, int.MaxValue), TimeSpan.FromSeconds(valid));
    }

    // ---- compilation ----

    /// <summary>What one snapshot's logs use: compiled formats, files with their buffering, shared handlers.</summary>
    private sealed class LogRuntime
    {
        public Dictionary<LogFormatSpec, CompiledLogFormat> Formats { get; } = new(ReferenceEqualityComparer.Instance);
        public Dictionary<string, (LogSink Sink, LogBufferSpec? Buffer)> Files { get; } = new(StringComparer.Ordinal);
        public HashSet<string> FailedFiles { get; } = new(StringComparer.Ordinal);
        public Dictionary<(List<AccessLogSpec>?, OpenLogFileCacheSpec?), AccessLogHandler?> Handlers { get; } = [];
        public LogMainSettings Main { get; init; } = null!;
    }

    public override void RegisterVariables(VariableRegistry variables, SnapshotBuilder snapshot) => LogVariables.Register(variables);

    public override void CompileHttp(SnapshotBuilder snapshot)
    {
        // Every socket tracks its connections for $pipe and $connection_time.
        snapshot.Snapshot.ListenerHooks.Add(ConnectionTrackerHook.Instance);
        var main = snapshot.HttpMain<LogMainSettings>();
        if (main is null)
        {
            return;
        }

        var runtime = new LogRuntime { Main = main };
        foreach (var spec in main.Formats)
        {
            try
            {
                runtime.Formats[spec] = CompiledLogFormat.Compile(spec, snapshot.Variables);
            }
            catch (ConfigException e)
            {
                snapshot.Error(e);
            }
        }

        snapshot.Snapshot.SetFeature(runtime);
    }

    public override void CompileLocation(LocationCompiler location)
    {
        var runtime = location.Snapshot.Snapshot.Feature<LogRuntime>();
        var settings = location.Settings<AccessLogSettings>();
        if (runtime is null || settings.Off)
        {
            return;
        }

        var key = (settings.Logs, settings.OpenFileCache);
        if (!runtime.Handlers.TryGetValue(key, out var handler))
        {
            handler = Build(location, runtime, settings);
            runtime.Handlers.Add(key, handler);
        }

        if (handler is not null)
        {
            location.AddLog(handler);
        }
    }

    private static AccessLogHandler? Build(LocationCompiler location, LogRuntime runtime, AccessLogSettings settings)
    {
        var snapshot = location.Snapshot;
        var writer = snapshot.Services.LogWriter;
        IReadOnlyList<AccessLogSpec> specs = settings.Logs ??
        [
            new AccessLogSpec
            {
                PathSource = DefaultPath,
                Path = snapshot.Model.Paths.FromPrefix(DefaultPath),
                Format = LogFormatSpec.Combined,
                File = string.Empty,
                Line = 0,
            },
        ];

        var targets = new List<AccessLogTarget>();
        foreach (var spec in specs)
        {
            if (!runtime.Formats.TryGetValue(spec.Format, out var format))
            {
                continue;
            }

            var condition = spec.Condition is null ? null : snapshot.Compile(spec.Condition);
            if (spec.Path is { } path)
            {
                var sink = OpenFile(snapshot, runtime, path);
                if (sink is not null)
                {
                    targets.Add(new AccessLogTarget(format, sink, null, null, condition));
                }
            }
            else
            {
                var cache = writer.GetFileCache(settings.OpenFileCache ?? OpenLogFileCacheSpec.Off);
                targets.Add(new AccessLogTarget(format, null, snapshot.Compile(spec.PathTemplate!), cache, condition));
            }
        }

        return targets.Count == 0 ? null : new AccessLogHandler([.. targets], writer);
    }

    /// <summary>Opens a log file while loading, as nginx does (a failure is an [emerg] that stops the load).</summary>
    private static LogSink? OpenFile(SnapshotBuilder snapshot, LogRuntime runtime, string path)
    {
        if (runtime.Files.TryGetValue(path, out var known))
        {
            return known.Sink;
        }

        if (runtime.FailedFiles.Contains(path))
        {
            return null;
        }

        var sink = snapshot.Services.LogWriter.GetSink(path);
        try
        {
            sink.EnsureOpen();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            runtime.FailedFiles.Add(path);
            snapshot.Errors.Add(new Diagnostic(LogLevel.Emerg, $"open() \"{path}\" failed ({ErrorLogFactory.Errno(e)})", null, 0));
            return null;
        }

        runtime.Files.Add(path, (sink, runtime.Main.Buffers.GetValueOrDefault(path)));
        return sink;
    }

    public override void Activate(RuntimeSnapshot snapshot, RuntimeSnapshot? previous)
    {
        var writer = snapshot.Services.LogWriter;
        writer.AlertLog = snapshot.ErrorLog;
        writer.Time = snapshot.Services.Time;
        if (snapshot.Feature<LogRuntime>() is { } runtime)
        {
            foreach (var (sink, buffer) in runtime.Files.Values)
            {
                writer.Configure(sink, buffer);
            }
        }

        if (previous is not null)
        {
            // nginx writes out the buffers of the old configuration's files on reload.
            writer.FlushAll();
        }
    }
}

/// <summary>The variables logs need that the core does not provide, and nginx's $status as logs see it.</summary>
public static class LogVariables
{
    public static void Register(VariableRegistry v)
    {
        v.Register("body_bytes_sent", r => Number(r.Counters is { } c ? (c.Finished ? c.BodyBytesSent : c.BodyBytesWritten) : 0), cacheable: false);
        v.Register("bytes_sent", r => Number(r.Counters is { Finished: true } c ? c.BytesSent : 0), cacheable: false);
        v.Register("request_length", r => Number(r.Counters is { } c
            ? (c.Finished ? c.RequestLength : RequestCounters.RequestHeaderSize(r.Http) + c.RequestBodyBytesRead)
            : 0), cacheable: false);
        v.Register("request_completion", r => r.Counters is { Completed: true } ? "OK" : string.Empty, cacheable: false);
        v.Register("pipe", r => r.Counters is { Pipelined: true } ? "p" : ".");
        v.Register("connection_time", r => Milliseconds(r.Counters?.Connection?.Age ?? TimeSpan.FromSeconds(r.ElapsedSeconds)), cacheable: false);
        if (v.Find("remote_user") is null)
        {
            v.Register("remote_user", r => BasicUser(r.Http.Request));
        }

        v.RegisterPrefix("sent_http_", (r, name) => SentHeader(r, name), cacheable: false);
        v.RegisterPrefix("sent_trailer_", (r, name) => SentTrailer(r.Http, name), cacheable: false);
    }

    /// <summary>The status a log line shows (nginx's err_status, else headers_out.status).</summary>
    public static int StatusOf(RequestContext r) =>
        r.Status == 0 ? r.Http.Response.StatusCode : SpecialResponse.WireStatus(r.Status);

    private static string Number(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Milliseconds(TimeSpan t)
    {
        var ms = Math.Max(0, (long)t.TotalMilliseconds);
        return (ms / 1000).ToString(CultureInfo.InvariantCulture) + "." + (ms % 1000).ToString("000", CultureInfo.InvariantCulture);
    }

    /// <summary>$remote_user: the user name of "Authorization: Basic" (ngx_http_auth_basic_user).</summary>
    public static string? BasicUser(HttpRequest request)
    {
        var auth = request.Headers.Authorization;
        if (auth.Count == 0 || auth[0] is not { } value || value.Length < 6
            || !value.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var encoded = value.AsSpan(6).Trim(' ');
        var bytes = new byte[(encoded.Length * 3 / 4) + 3];
        if (!Convert.TryFromBase64Chars(encoded, bytes, out var n))
        {
            return null;
        }

        var colon = Array.IndexOf(bytes, (byte)':', 0, n);
        if (colon <= 0)
        {
            return null;
        }

        return Encoding.UTF8.GetString(bytes, 0, colon);
    }

    /// <summary>$sent_http_NAME: a response header ("_" matches "-"); several are joined with ", ".</summary>
    public static string? SentHeader(RequestContext r, string name)
    {
        var headerName = name.Replace('_', '-');
        var headers = r.Http.Response.Headers;
        if (headers.TryGetValue(headerName, out var values) && values.Count > 0)
        {
            return values.Count == 1 ? values[0] : string.Join(headerName.Equals("set-cookie", StringComparison.OrdinalIgnoreCase) ? "; " : ", ", values.ToArray());
        }

        if (headerName.Equals("connection", StringComparison.OrdinalIgnoreCase) && r.Http.Response.HasStarted)
        {
            // nginx computes it: upgrade, keep-alive or close.
            return r.Http.Response.StatusCode == 101 ? "upgrade"
                : r.CloseConnection || HttpProtocol.IsHttp10(r.Protocol) ? "close" : "keep-alive";
        }

        return null;
    }

    public static string? SentTrailer(HttpContext http, string name)
    {
        var trailers = http.Features.Get<IHttpResponseTrailersFeature>()?.Trailers;
        if (trailers is null || !trailers.TryGetValue(name.Replace('_', '-'), out var values) || values.Count == 0)
        {
            return null;
        }

        return values.Count == 1 ? values[0] : string.Join(", ", values.ToArray());
    }
}
