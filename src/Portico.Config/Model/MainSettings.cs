using Portico.Config.Syntax;

namespace Portico.Config.Model;

/// <summary>An error_log destination: a file path (absolute after binding), "stderr", and a level.</summary>
public sealed record ErrorLogSpec(string Path, LogLevel Level)
{
    public bool IsStderr => Path == "stderr";
}

/// <summary>Main-context settings (ngx_core_module).</summary>
public sealed class MainSettings
{
    public string? Pid { get; set; }
    public bool? Daemon { get; set; }
    public bool? MasterProcess { get; set; }
    public string? WorkerProcesses { get; set; }
    public long? WorkerRlimitNofile { get; set; }
    public TimeSpan? WorkerShutdownTimeout { get; set; }
    public string? User { get; set; }
    public List<ErrorLogSpec> ErrorLogs { get; } = [];
    public List<string> Env { get; } = [];

    /// <summary>True once an events block was seen (nginx requires one).</summary>
    public bool HasEvents { get; set; }

    public long? WorkerConnections { get; set; }
    public bool? MultiAccept { get; set; }
}

/// <summary>error_log at http, server and location level (the first level that sets any replaces all).</summary>
public sealed class ErrorLogSettings : Settings<ErrorLogSettings>
{
    public List<ErrorLogSpec>? Logs { get; set; }

    public override void MergeFrom(ErrorLogSettings parent) => Logs ??= parent.Logs;
}
