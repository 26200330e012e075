using Portico.Config.Model;

namespace Portico.Logging;

/// <summary>http-level state of ngx_http_log_module: the formats in the order they were defined.</summary>
public sealed class LogMainSettings : Settings<LogMainSettings>
{
    /// <summary>"combined" first (predefined), then every log_format.</summary>
    public List<LogFormatSpec> Formats { get; } = [LogFormatSpec.Combined];

    /// <summary>Buffer parameters per log file path, shared by every access_log naming that file (nginx keeps them on the open file).</summary>
    public Dictionary<string, LogBufferSpec> Buffers { get; } = new(StringComparer.Ordinal);

    /// <summary>Finds a format the way access_log does (case-insensitive; the first match wins).</summary>
    public LogFormatSpec? FindFormat(string name)
    {
        foreach (var f in Formats)
        {
            if (f.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return f;
            }
        }

        return null;
    }

    public override void MergeFrom(LogMainSettings parent)
    {
    }
}

/// <summary>buffer=, flush= and gzip= of a log file.</summary>
public sealed record LogBufferSpec(int Size, TimeSpan? Flush, int GzipLevel);

/// <summary>One access_log directive (not "off").</summary>
public sealed class AccessLogSpec
{
    public required string PathSource { get; init; }

    /// <summary>The path relative to the prefix made absolute; null when it has variables.</summary>
    public string? Path { get; init; }

    /// <summary>The path template when it has variables (opened for each write, as nginx does).</summary>
    public ValueTemplate? PathTemplate { get; init; }

    public required LogFormatSpec Format { get; init; }

    /// <summary>if=condition: the line is skipped when it evaluates to "" or "0".</summary>
    public ValueTemplate? Condition { get; init; }

    public required string File { get; init; }
    public required int Line { get; init; }
}

/// <summary>open_log_file_cache max=N [inactive=time] [min_uses=N] [valid=time] | off.</summary>
public sealed record OpenLogFileCacheSpec(int Max, TimeSpan Inactive, int MinUses, TimeSpan Valid)
{
    /// <summary>"open_log_file_cache off" (and the default).</summary>
    public static OpenLogFileCacheSpec Off { get; } = new(0, TimeSpan.Zero, 0, TimeSpan.Zero);

    public bool Enabled => Max > 0;
}

/// <summary>access_log, open_log_file_cache and log_subrequest at one level (ngx_http_log_loc_conf_t).</summary>
public sealed class AccessLogSettings : Settings<AccessLogSettings>
{
    /// <summary>The access_log directives of this level; null when the level has none.</summary>
    public List<AccessLogSpec>? Logs { get; set; }

    /// <summary>"access_log off" at this level (wins over other access_log directives of the same level, as in nginx).</summary>
    public bool Off { get; set; }

    public OpenLogFileCacheSpec? OpenFileCache { get; set; }

    public bool? LogSubrequest { get; set; }

    /// <summary>
    /// nginx's merge: a level with access_log (or off) keeps its own list; otherwise it takes the parent's.
    /// A level where nothing is set anywhere above gets the default (Logs stays null, Off false: the
    /// compiler uses "logs/access.log combined").
    /// </summary>
    public override void MergeFrom(AccessLogSettings parent)
    {
        OpenFileCache ??= parent.OpenFileCache;
        LogSubrequest ??= parent.LogSubrequest;
        if (Logs is not null || Off)
        {
            return;
        }

        Logs = parent.Logs;
        Off = parent.Off;
    }
}
