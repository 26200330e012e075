using System.Globalization;
using Portico.Config.Directives;
using Portico.Config.Syntax;

namespace Portico.ClientSide;

/// <summary>
/// nginx's temporary files (ngx_create_temp_file): a 10-digit name from a process-wide counter, placed in
/// hashed level directories ("levels 1 2" puts 0000000457 in 7/45/). Opened for asynchronous I/O.
/// </summary>
public static class TempFiles
{
    private static long s_counter = Environment.ProcessId * 1000L % 1_000_000_000L;

    // Directories made (or found) already: a temp file costs no mkdir() then (one is made again if the
    // directory was removed meanwhile).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> s_made = new(StringComparer.Ordinal);

    /// <summary>Parses "path [level1 [level2 [level3]]]" as ngx_conf_set_path_slot does.</summary>
    public static TempPath Parse(DirectiveCall c)
    {
        var path = c.Model.Paths.FromPrefix(c[0]).TrimEnd('/');
        var levels = new int[c.Count - 1];
        for (var i = 1; i < c.Count; i++)
        {
            // ngx_conf_set_path_slot: any positive level; the ten digits of a name bound their sum.
            if (!ConfigValues.TryParseNumber(c[i], out var n) || n < 1 || n > 9)
            {
                throw c.Error("invalid value");
            }

            levels[i - 1] = (int)n;
        }

        return new TempPath(path, levels);
    }

    /// <summary>Creates the directory of a temp path (nginx creates them at start-up); returns nginx's error text or null.</summary>
    public static string? Ensure(TempPath path)
    {
        try
        {
            Directory.CreateDirectory(path.Path);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var errno = e is UnauthorizedAccessException ? "13: Permission denied" : "2: No such file or directory";
            return $"mkdir() \"{path.Path}\" failed ({errno})";
        }
    }

    /// <summary>The next name nginx's counter gives in this path (directory levels included).</summary>
    private static string NextName(TempPath path, out string dir)
    {
        var n = Interlocked.Increment(ref s_counter) % 10_000_000_000L;
        var file = n.ToString("0000000000", CultureInfo.InvariantCulture);
        dir = path.Path;
        var end = file.Length;
        foreach (var level in path.Levels)
        {
            dir = dir + "/" + file.Substring(end - level, level);
            end -= level;
        }

        return dir + "/" + file;
    }

    // Anonymous temporary files (unlinked right after creation, as nginx unlinks a temp file it does not
    // keep) waiting for their next request, per temp path: a request that spills costs no inode then.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, System.Collections.Concurrent.ConcurrentStack<FileStream>> s_idle = new(StringComparer.Ordinal);

    /// <summary>Anonymous files kept per temp path for reuse.</summary>
    internal const int IdleLimit = 32;

    /// <summary>A file that held more than this is truncated before it is kept: idle files hold no disk.</summary>
    internal const long IdleSizeLimit = 1024 * 1024;

    /// <summary>
    /// A temporary file for a body removed when the request ends: an anonymous one (already unlinked, as nginx
    /// does right after creating it) from this path's idle files, or a new one. <paramref name="name"/> is the
    /// name nginx's counter gives, for the log.
    /// </summary>
    public static TempFile RentAnonymous(TempPath path, out string name)
    {
        if (s_idle.TryGetValue(path.Path, out var idle) && idle.TryPop(out var reused))
        {
            name = NextName(path, out _);
            return new TempFile(reused, path.Path);
        }

        var created = Create(path, out name);
        Delete(name);
        return new TempFile(created, path.Path);
    }

    /// <summary>Closes a temporary file, or keeps an anonymous one for the next request.</summary>
    public static void Release(TempFile file)
    {
        if (file.IdleKey is { } key)
        {
            try
            {
                if (file.Written > IdleSizeLimit)
                {
                    RandomAccess.SetLength(file.Handle, 0);
                }

                var idle = s_idle.GetOrAdd(key, static _ => new());
                if (idle.Count < IdleLimit)
                {
                    idle.Push(file.Stream);
                    return;
                }
            }
            catch (IOException)
            {
            }
        }

        file.Stream.Dispose();
    }

    /// <summary>Creates a new temporary file for writing and reading back.</summary>
    public static FileStream Create(TempPath path, out string name)
    {
        for (var attempt = 0; ; attempt++)
        {
            name = NextName(path, out var dir);
            try
            {
                // nginx creates its temp directories at start-up; the default ones are made on first use.
                if (!s_made.ContainsKey(dir))
                {
                    Directory.CreateDirectory(dir);
                    s_made[dir] = true;
                }

                var options = new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.ReadWrite,
                    Share = FileShare.Read | FileShare.Delete,
                    Options = FileOptions.Asynchronous,
                    BufferSize = 0,
                };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                return new FileStream(name, options);
            }
            catch (DirectoryNotFoundException) when (attempt < 100)
            {
                s_made.TryRemove(dir, out _);
            }
            catch (IOException) when (File.Exists(name) && attempt < 100)
            {
            }
        }
    }

    /// <summary>Removes a temporary file, ignoring a file already gone.</summary>
    public static void Delete(string name)
    {
        try
        {
            File.Delete(name);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>nginx's warning when a body spills to disk: "a client request body is buffered to a temporary file ...".</summary>
    public static void Warn(Pipeline.RequestContext r, string what, string name, LogLevel level = LogLevel.Warn) =>
        r.LogError(level, what + " " + name);
}

/// <summary>An open temporary file written at increasing offsets and read back by offset.</summary>
public sealed class TempFile
{
    internal TempFile(FileStream stream, string? idleKey)
    {
        Stream = stream;
        Handle = stream.SafeFileHandle;
        IdleKey = idleKey;
    }

    internal FileStream Stream { get; }

    public Microsoft.Win32.SafeHandles.SafeFileHandle Handle { get; }

    /// <summary>The temp path whose idle files this one joins when released; null for a named file.</summary>
    internal string? IdleKey { get; }

    /// <summary>Bytes written: the next write's offset.</summary>
    public long Written { get; private set; }

    /// <summary>Appends (one write at a time).</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        var at = Written;
        Written += data.Length;
        return RandomAccess.WriteAsync(Handle, data, at, cancellationToken);
    }
}
