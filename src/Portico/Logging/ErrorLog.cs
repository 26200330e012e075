using System.Globalization;
using System.Text;
using Portico.Config.Syntax;

namespace Portico.Logging;

/// <summary>
/// An error log as nginx writes it: "YYYY/MM/DD HH:MM:SS [level] PID#TID: message", to every destination
/// whose level admits the message.
/// </summary>
public sealed class ErrorLog
{
    private readonly (LogSink Sink, LogLevel Level)[] _targets;
    private readonly LogWriter? _writer;
    private readonly LogLevel _max;

    public ErrorLog(LogWriter? writer, IEnumerable<(LogSink Sink, LogLevel Level)> targets)
    {
        _writer = writer;
        _targets = [.. targets];
        _max = _targets.Length == 0 ? (LogLevel)(-1) : _targets.Max(t => t.Level);
    }

    /// <summary>A log that writes to standard error synchronously (before any configuration is loaded).</summary>
    public static ErrorLog Stderr(LogLevel level = LogLevel.Notice) =>
        new(null, [(new LogSink("stderr"), level)]);

    public static readonly int Pid = Environment.ProcessId;

    public IReadOnlyList<(LogSink Sink, LogLevel Level)> Targets => _targets;

    public bool IsEnabled(LogLevel level) => level <= _max;

    public void Write(LogLevel level, string message)
    {
        if (level > _max)
        {
            return;
        }

        var line = Format(level, message);
        foreach (var (sink, lvl) in _targets)
        {
            if (level <= lvl)
            {
                if (_writer is null)
                {
                    LogWriter.WriteNow(sink, line);
                }
                else
                {
                    _writer.Enqueue(sink, line);
                }
            }
        }
    }

    public void Emerg(string message) => Write(LogLevel.Emerg, message);
    public void Alert(string message) => Write(LogLevel.Alert, message);
    public void Error(string message) => Write(LogLevel.Error, message);
    public void Warn(string message) => Write(LogLevel.Warn, message);
    public void Notice(string message) => Write(LogLevel.Notice, message);
    public void Info(string message) => Write(LogLevel.Info, message);
    public void Debug(string message) => Write(LogLevel.Debug, message);

    public static string Format(LogLevel level, string message)
    {
        var now = DateTime.Now;
        var sb = new StringBuilder(64 + message.Length);
        sb.Append(now.ToString("yyyy/MM/dd HH:mm:ss", CultureInfo.InvariantCulture));
        sb.Append(" [").Append(Diagnostic.LevelName(level)).Append("] ");
        sb.Append(Pid.ToString(CultureInfo.InvariantCulture)).Append('#');
        sb.Append(Environment.CurrentManagedThreadId.ToString(CultureInfo.InvariantCulture)).Append(": ");
        sb.Append(message).Append('\n');
        return sb.ToString();
    }
}

/// <summary>nginx's request context for error log lines: "*N msg, client: …, server: …, request: "…", host: "…"".</summary>
public static class RequestLogFormat
{
    public static string Format(Pipeline.RequestContext r, string message) => Context(r).Format(message);

    /// <summary>The context of a request, kept apart from the message (for messages written after the request is over).</summary>
    public static RequestErrorContext Context(Pipeline.RequestContext r)
    {
        var sb = new StringBuilder(128);
        sb.Append(", client: ").Append(r.Connection.RemoteAddressText);
        sb.Append(", server: ").Append(r.Server?.Name ?? string.Empty);
        sb.Append(", request: \"").Append(r.RequestLine).Append('"');
        if (r.GetItem<object>(UpstreamLogKey)?.ToString() is { } upstream)
        {
            sb.Append(", upstream: \"").Append(upstream).Append('"');
        }

        if (r.Http.Request.Headers.Host is { Count: > 0 } host)
        {
            sb.Append(", host: \"").Append(host.ToString()).Append('"');
        }

        if (r.Http.Request.Headers.Referer is { Count: > 0 } referer)
        {
            sb.Append(", referrer: \"").Append(referer.ToString()).Append('"');
        }

        return new RequestErrorContext(r.Connection.Serial, sb.ToString());
    }

    /// <summary>
    /// The request item the proxy sets to "http://peer/uri" (or to an object whose ToString makes it, so the
    /// text is built only when an error line needs it) so error lines carry nginx's upstream part.
    /// </summary>
    public static readonly Pipeline.RequestKey UpstreamLogKey = new();
}

/// <summary>A request's error context: the connection number and the ", client: …" tail.</summary>
public sealed record RequestErrorContext(long Connection, string Tail)
{
    public string Format(string message) =>
        string.Concat("*", Connection.ToString(CultureInfo.InvariantCulture), " ", message, Tail);
}
