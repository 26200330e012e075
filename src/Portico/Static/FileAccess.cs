using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Static;

/// <summary>
/// How a location opens files: disable_symlinks (with its from= template) and the open_file_cache settings.
/// Cache hits answer synchronously; everything else runs the system calls on the thread pool, so the
/// request's thread never blocks on the disk.
/// </summary>
public sealed class FileAccess
{
    private readonly SymlinkPolicy _policy;
    private readonly CompiledTemplate? _from;
    private readonly OpenFileCache? _cache;
    private readonly long _valid;
    private readonly long _minUses;
    private readonly bool _cacheErrors;

    public FileAccess(SymlinkPolicy policy, CompiledTemplate? from, OpenFileCache? cache, long valid, long minUses, bool cacheErrors)
    {
        _policy = policy;
        _from = from;
        _cache = cache;
        _valid = valid;
        _minUses = minUses;
        _cacheErrors = cacheErrors;
    }

    public OpenFileCache? Cache => _cache;

    /// <summary>Opens a file for reading (nginx's ngx_open_cached_file without test_only).</summary>
    public ValueTask<OpenedFile> OpenAsync(RequestContext r, string path) => LookupAsync(r, path, open: true);

    /// <summary>Tests a file or directory (test_only: stat, no handle kept).</summary>
    public ValueTask<OpenedFile> TestAsync(RequestContext r, string path) => LookupAsync(r, path, open: false);

    private ValueTask<OpenedFile> LookupAsync(RequestContext r, string path, bool open)
    {
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            return new ValueTask<OpenedFile>(new OpenedFile(new FileProbe(Errno.ENOENT, open ? "open()" : "stat()", default, null), false));
        }

        var (policy, from) = SymlinksFor(r, path);
        if (_cache is not null && _cache.TryGet(path, policy, from, _valid, open, out var hit))
        {
            return new ValueTask<OpenedFile>(hit);
        }

        return new ValueTask<OpenedFile>(Task.Run(() => Probe(path, policy, from, open)));
    }

    private OpenedFile Probe(string path, SymlinkPolicy policy, int from, bool open)
    {
        FileProbe probe;
        if (open || _cache is not null)
        {
            // With a cache, tests open the file too, so a later request for it finds the handle.
            var err = NativeFiles.OpenAndStat(path, policy, from, out var handle, out var stat, out var failed);
            probe = new FileProbe(err, failed, stat, handle);
        }
        else
        {
            var err = NativeFiles.Info(path, policy, from, out var stat, out var failed);
            probe = new FileProbe(err, failed, stat, null);
        }

        if (_cache is null)
        {
            return new OpenedFile(probe, false);
        }

        var stored = _cache.Store(path, policy, from, probe, _minUses, _cacheErrors);
        if (!open && stored.Probe.Handle is not null)
        {
            // The caller of a test wants no handle: give back only the metadata.
            stored.Dispose();
            return new OpenedFile(new FileProbe(probe.Error, probe.Failed, probe.Stat, null), false);
        }

        return stored;
    }

    /// <summary>ngx_http_set_disable_symlinks: the policy for this path and where the checks start.</summary>
    private (SymlinkPolicy Policy, int From) SymlinksFor(RequestContext r, string path)
    {
        if (_policy == SymlinkPolicy.Off || _from is null)
        {
            return (_policy, 0);
        }

        var from = _from.Evaluate(r);
        if (from.Length == 0 || from.Length > path.Length || !path.StartsWith(from, StringComparison.Ordinal))
        {
            return (_policy, 0);
        }

        if (from.Length == path.Length)
        {
            return (SymlinkPolicy.Off, 0);
        }

        if (path[from.Length] == '/')
        {
            return (_policy, from.Length);
        }

        return from[^1] == '/' ? (_policy, from.Length - 1) : (_policy, 0);
    }
}
