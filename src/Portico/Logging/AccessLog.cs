using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Logging;

/// <summary>One compiled access_log: where (a file, or a file name template), what (a format) and if= .</summary>
public sealed class AccessLogTarget
{
    public AccessLogTarget(CompiledLogFormat format, LogSink? sink, CompiledTemplate? path, LogFileCache? cache, CompiledTemplate? condition)
    {
        Format = format;
        Sink = sink;
        Path = path;
        Cache = cache;
        Condition = condition;
    }

    public CompiledLogFormat Format { get; }

    /// <summary>The file of a log whose name has no variables.</summary>
    public LogSink? Sink { get; }

    /// <summary>The file name of a log with variables, evaluated for each line.</summary>
    public CompiledTemplate? Path { get; }

    public LogFileCache? Cache { get; }
    public CompiledTemplate? Condition { get; }
}

/// <summary>
/// The log phase handler of a location (ngx_http_log_handler): for each access_log whose if= holds, renders
/// the line into a pooled buffer and hands it to the log writer. It never waits and never fails the request.
/// </summary>
public sealed class AccessLogHandler : LogHandler
{
    private const int InitialLineSize = 512;

    private readonly AccessLogTarget[] _targets;
    private readonly LogWriter _writer;

    public AccessLogHandler(AccessLogTarget[] targets, LogWriter writer)
    {
        _targets = targets;
        _writer = writer;
    }

    public IReadOnlyList<AccessLogTarget> Targets => _targets;

    public override void Log(RequestContext r)
    {
        foreach (var t in _targets)
        {
            if (t.Condition is { } condition)
            {
                var value = condition.Evaluate(r);
                if (value.Length == 0 || value == "0")
                {
                    continue;
                }
            }

            var line = new LogLineBuilder(InitialLineSize);
            try
            {
                t.Format.Render(r, ref line);
                if (t.Sink is { } sink)
                {
                    var (buffer, length) = line.Detach();
                    _writer.EnqueueAccess(sink, buffer, length);
                }
                else
                {
                    var path = t.Path!.Evaluate(r);
                    var (buffer, length) = line.Detach();
                    _writer.EnqueueDynamic(path, t.Cache!, buffer, length, r.ErrorLog, RequestLogFormat.Context(r));
                }
            }
            finally
            {
                line.Dispose();
            }
        }
    }
}
