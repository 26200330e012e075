using Portico.Config.Syntax;

namespace Portico.Logging;

/// <summary>
/// Descriptors of access logs whose names have variables (open_log_file_cache). Without a cache every
/// line opens, appends and closes its file, as nginx does. With one, a file used at least min_uses times
/// within inactive stays open, at most max files, and is opened again after valid (so a rotated file is
/// picked up). Only the log writer's thread uses it.
/// </summary>
public sealed class LogFileCache
{
    private sealed class Handle
    {
        public FileStream? Stream;
        public int Uses;
        public DateTimeOffset LastUse;
        public DateTimeOffset Opened;
    }

    private readonly Dictionary<string, Handle> _files = new(StringComparer.Ordinal);

    public LogFileCache(OpenLogFileCacheSpec spec)
    {
        Spec = spec;
    }

    public OpenLogFileCacheSpec Spec { get; }

    /// <summary>Files currently held open.</summary>
    public int OpenCount
    {
        get
        {
            var n = 0;
            foreach (var h in _files.Values)
            {
                if (h.Stream is not null)
                {
                    n++;
                }
            }

            return n;
        }
    }

    internal void Write(string path, ReadOnlySpan<byte> line, DateTimeOffset now, ErrorLog errorLog, RequestErrorContext context)
    {
        if (!Spec.Enabled)
        {
            try
            {
                using var once = (FileStream)LogSink.Open(path);
                once.Write(line);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Failed(path, e, errorLog, context);
            }

            return;
        }

        if (!_files.TryGetValue(path, out var h))
        {
            h = new Handle();
            _files.Add(path, h);
        }

        if (now - h.LastUse > Spec.Inactive)
        {
            h.Uses = 0;
        }

        h.Uses++;
        h.LastUse = now;
        if (h.Stream is not null && now - h.Opened >= Spec.Valid)
        {
            h.Stream.Dispose();
            h.Stream = null;
        }

        try
        {
            if (h.Stream is null)
            {
                var stream = (FileStream)LogSink.Open(path);
                if (h.Uses < Spec.MinUses)
                {
                    using (stream)
                    {
                        stream.Write(line);
                    }

                    return;
                }

                MakeRoom();
                h.Stream = stream;
                h.Opened = now;
            }

            h.Stream.Write(line);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            h.Stream?.Dispose();
            h.Stream = null;
            Failed(path, e, errorLog, context);
        }
    }

    /// <summary>Closes the least recently used descriptor when max are open.</summary>
    private void MakeRoom()
    {
        while (OpenCount >= Spec.Max)
        {
            Handle? oldest = null;
            foreach (var h in _files.Values)
            {
                if (h.Stream is not null && (oldest is null || h.LastUse < oldest.LastUse))
                {
                    oldest = h;
                }
            }

            if (oldest is null)
            {
                return;
            }

            oldest.Stream!.Dispose();
            oldest.Stream = null;
        }
    }

    /// <summary>Closes what was not used within inactive; returns when the next one becomes due.</summary>
    internal DateTimeOffset Sweep(DateTimeOffset now)
    {
        var next = DateTimeOffset.MaxValue;
        List<string>? gone = null;
        foreach (var (path, h) in _files)
        {
            var due = h.LastUse + Spec.Inactive;
            if (due <= now)
            {
                h.Stream?.Dispose();
                (gone ??= []).Add(path);
            }
            else if (h.Stream is not null && due < next)
            {
                next = due;
            }
        }

        if (gone is not null)
        {
            foreach (var p in gone)
            {
                _files.Remove(p);
            }
        }

        return next;
    }

    internal void CloseAll()
    {
        foreach (var h in _files.Values)
        {
            h.Stream?.Dispose();
            h.Stream = null;
        }
    }

    /// <summary>nginx's "[crit] open() "file" failed (...) while logging request, client: ..." in the request's error log.</summary>
    private static void Failed(string path, Exception e, ErrorLog errorLog, RequestErrorContext context) =>
        errorLog.Write(LogLevel.Crit, context.Format($"open() \"{path}\" failed ({Compilation.ErrorLogFactory.Errno(e)}) while logging request"));
}
