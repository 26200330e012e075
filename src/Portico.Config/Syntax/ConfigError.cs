namespace Portico.Config.Syntax;

/// <summary>Severity levels of nginx's error log, lowest number most severe.</summary>
public enum LogLevel
{
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Error = 3,
    Warn = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

/// <summary>One message about a configuration, in nginx's words, with the place it refers to.</summary>
public sealed record Diagnostic(LogLevel Level, string Message, string? File, int Line)
{
    /// <summary>"[emerg] message in file:line", the shape nginx prints.</summary>
    public override string ToString() => File switch
    {
        null => $"[{LevelName(Level)}] {Message}",
        _ when Line == 0 => $"[{LevelName(Level)}] {Message} in {File}",
        _ => $"[{LevelName(Level)}] {Message} in {File}:{Line}",
    };

    public static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Emerg => "emerg",
        LogLevel.Alert => "alert",
        LogLevel.Crit => "crit",
        LogLevel.Error => "error",
        LogLevel.Warn => "warn",
        LogLevel.Notice => "notice",
        LogLevel.Info => "info",
        _ => "debug",
    };

    public static bool TryParseLevel(string text, out LogLevel level)
    {
        switch (text)
        {
            case "debug": level = LogLevel.Debug; return true;
            case "info": level = LogLevel.Info; return true;
            case "notice": level = LogLevel.Notice; return true;
            case "warn": level = LogLevel.Warn; return true;
            case "error": level = LogLevel.Error; return true;
            case "crit": level = LogLevel.Crit; return true;
            case "alert": level = LogLevel.Alert; return true;
            case "emerg": level = LogLevel.Emerg; return true;
            default: level = LogLevel.Error; return false;
        }
    }
}

/// <summary>
/// Thrown for an error that stops the directive (or the file) being processed. The message is the whole
/// nginx message without the " in file:line" tail, which the position supplies.
/// </summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string message, string? file, int line) : base(message)
    {
        File = file;
        Line = line;
    }

    public ConfigException() : base() { }
    public ConfigException(string message) : base(message) { }
    public ConfigException(string message, Exception inner) : base(message, inner) { }

    public string? File { get; }
    public int Line { get; }

    public Diagnostic ToDiagnostic() => new(LogLevel.Emerg, Message, File, Line);
}
