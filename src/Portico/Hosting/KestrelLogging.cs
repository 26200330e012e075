using Microsoft.Extensions.Logging;
using Portico.Logging;
using NginxLevel = Portico.Config.Syntax.LogLevel;

namespace Portico.Hosting;

/// <summary>Routes Kestrel's (and YARP's) own diagnostics into the current main error log.</summary>
internal sealed class ErrorLogLoggerProvider : ILoggerProvider, ILoggerFactory
{
    private readonly Func<ErrorLog> _log;

    public ErrorLogLoggerProvider(Func<ErrorLog> log)
    {
        _log = log;
    }

    /// <summary>
    /// YARP's forwarder logs the failures Portico already reports in nginx's words (with the request's
    /// context), so its categories get no logger.
    /// </summary>
    public ILogger CreateLogger(string categoryName) =>
        categoryName.StartsWith("Yarp.", StringComparison.Ordinal) ? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance : new Logger(_log, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private sealed class Logger(Func<ErrorLog> log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && log().IsEnabled(Map(logLevel));

        // Kestrel's informational messages (a request body left unread, a connection reset) are debug
        // detail to an nginx user; nginx's "info" level is for client errors Portico logs itself.
        private LogLevel Adjust(LogLevel level) => level == LogLevel.Information ? LogLevel.Debug : level;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            logLevel = Adjust(logLevel);
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var message = formatter(state, exception);
            if (exception is not null && logLevel >= LogLevel.Error)
            {
                message += " (" + exception.GetType().Name + ": " + exception.Message + ")";
            }

            var shortCategory = category[(category.LastIndexOf('.') + 1)..];
            log().Write(Map(logLevel), shortCategory + ": " + message);
        }

        private static NginxLevel Map(LogLevel level) => level switch
        {
            LogLevel.Critical => NginxLevel.Crit,
            LogLevel.Error => NginxLevel.Error,
            LogLevel.Warning => NginxLevel.Warn,
            LogLevel.Information => NginxLevel.Info,
            _ => NginxLevel.Debug,
        };
    }
}
