using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Static;

/// <summary>
/// Static files: nginx's static, index, autoindex and try_files modules and the core module's file
/// directives. Its content handler is the snapshot's default: every location without a content handler
/// of its own serves files from its root.
/// </summary>
public sealed partial class StaticModule : PorticoModule
{
    public override string Name => "static";

    public override void Register(DirectiveRegistry registry) => StaticDirectives.Register(registry, Name);

    private static StaticLocation? For(RequestContext r) => r.Snapshot.Feature<StaticContent>()?.For(r.Location);

    public override void RegisterVariables(VariableRegistry variables, SnapshotBuilder snapshot)
    {
        variables.Register("document_root", r => For(r)?.Root.Value(r), cacheable: false);
        variables.Register("realpath_root", RealpathRoot, cacheable: false);
        variables.Register("request_filename", r => For(r)?.Root.Map(r), cacheable: false);
    }

    /// <summary>Per-snapshot state: the content handler, the open file caches and the shared types tables.</summary>
    private sealed class State
    {
        public Dictionary<OpenFileCacheSpec, OpenFileCache> Caches { get; } = new(ReferenceEqualityComparer.Instance);
        public Dictionary<List<KeyValuePair<string, string>>, MimeTypes> Types { get; } = new(ReferenceEqualityComparer.Instance);
    }

    public override void CompileHttp(SnapshotBuilder snapshot)
    {
        var content = new StaticContent();
        snapshot.Snapshot.SetFeature(content);
        snapshot.Snapshot.SetFeature(new State());
        snapshot.Snapshot.DefaultContent = content;
    }

    public override void CompileLocation(LocationCompiler location)
    {
        var snapshot = location.Snapshot;
        var content = snapshot.Snapshot.Feature<StaticContent>()!;
        var state = snapshot.Snapshot.Feature<State>()!;
        var settings = location.Settings<StaticSettings>();
        var index = location.Settings<IndexSettings>();
        var autoindex = location.Settings<AutoindexSettings>();
        var core = location.Settings<HttpCoreSettings>();

        var root = CompileRoot(location, settings.Root);
        MimeTypes types;
        if (settings.Types is null)
        {
            types = MimeTypes.Default;
        }
        else if (!state.Types.TryGetValue(settings.Types, out types!))
        {
            types = new MimeTypes(settings.Types);
            state.Types.Add(settings.Types, types);
        }

        OpenFileCache? cache = null;
        if (settings.OpenFileCache is { } spec && !state.Caches.TryGetValue(spec, out cache))
        {
            cache = new OpenFileCache(spec.Max, spec.InactiveSeconds, snapshot.Services.Time);
            state.Caches.Add(spec, cache);
        }

        var symlinks = settings.DisableSymlinks!;
        var files = new FileAccess(symlinks.Policy, symlinks.From is null ? null : location.Compile(symlinks.From), cache,
            settings.OpenFileCacheValid ?? 60, settings.OpenFileCacheMinUses ?? 1, settings.OpenFileCacheErrors ?? false);

        var indices = new List<CompiledIndex>();
        foreach (var i in index.Effective)
        {
            indices.Add(new CompiledIndex(i.Name, i.Template is null ? null : location.Compile(i.Template)));
        }

        var maxChunk = settings.SendfileMaxChunk is > 0 and var m ? m : long.MaxValue;
        var compiled = new StaticLocation
        {
            Root = root,
            Types = types,
            DefaultType = core.DefaultType ?? "text/plain",
            Index = [.. indices],
            Autoindex = autoindex.Enable ?? false,
            AutoindexFormat = autoindex.Format ?? AutoindexFormat.Html,
            AutoindexLocaltime = autoindex.Localtime ?? false,
            AutoindexExactSize = autoindex.ExactSize ?? true,
            Etag = settings.Etag ?? true,
            IfModifiedSince = settings.IfModifiedSince ?? IfModifiedSince.Exact,
            MaxRanges = (int)Math.Min(settings.MaxRanges ?? int.MaxValue, int.MaxValue),
            LogNotFound = settings.LogNotFound ?? true,
            Files = files,
            ChunkSize = (int)Math.Clamp(maxChunk, 4096, 128 * 1024),
        };
        content.Add(location.Runtime, compiled);

        if (location.Settings<TryFilesSettings>().TryFiles is { } tryFiles)
        {
            var elements = new (CompiledTemplate, bool)[tryFiles.Files.Count];
            for (var i = 0; i < elements.Length; i++)
            {
                elements[i] = (location.Compile(tryFiles.Files[i].Template), tryFiles.Files[i].TestDir);
            }

            location.Add(Phase.PreContent, new TryFilesHandler(elements, location.Compile(tryFiles.Fallback), tryFiles.Code, root, files));
        }
    }

    private static DocumentRoot CompileRoot(LocationCompiler location, RootSpec? spec)
    {
        var prefix = location.Snapshot.Model.Paths.Prefix;
        if (spec is null)
        {
            var html = location.Snapshot.Model.Paths.FromPrefix("html");
            return new DocumentRoot(RootKind.Root, html, null, 0, prefix, html.Length);
        }

        var template = spec.Template is null ? null : location.Compile(spec.Template);
        var literal = spec.Template is null
            ? spec.Value.Length
            : spec.Template.Parts.Count > 0 && spec.Template.Parts[0].Kind == TemplatePartKind.Literal ? spec.Template.Parts[0].Text.Length : 0;
        return new DocumentRoot(spec.Kind, spec.Value, template, spec.AliasLength, prefix, literal);
    }

    public override void CompleteSnapshot(SnapshotBuilder snapshot) => snapshot.Snapshot.Feature<StaticContent>()?.Freeze();

    public override void Deactivate(RuntimeSnapshot snapshot)
    {
        if (snapshot.Feature<State>() is { } state)
        {
            foreach (var cache in state.Caches.Values)
            {
                cache.Dispose();
            }
        }
    }

    // ---- $realpath_root ----

    private static readonly ConcurrentDictionary<string, (string? Value, long At)> RealPaths = new(StringComparer.Ordinal);
    private static int s_refreshing;

    /// <summary>
    /// $realpath_root: the root with every symlink resolved. The answer for a root is kept one second and
    /// refreshed in the background, so a request blocks on the file system only the first time a root is seen.
    /// </summary>
    private static string? RealpathRoot(RequestContext r)
    {
        if (For(r) is not { } loc)
        {
            return null;
        }

        var root = loc.Root.Value(r);
        var now = Environment.TickCount64;
        if (RealPaths.TryGetValue(root, out var known))
        {
            if (now - known.At > 1000 && Interlocked.Exchange(ref s_refreshing, 1) == 0)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static p =>
                {
                    try
                    {
                        RealPaths[p] = (Resolve(p, out _), Environment.TickCount64);
                    }
                    finally
                    {
                        Volatile.Write(ref s_refreshing, 0);
                    }
                }, root, preferLocal: false);
            }

            if (known.Value is null)
            {
                r.LogError(LogLevel.Crit, $"realpath() \"{root}\" failed");
            }

            return known.Value;
        }

        var value = Resolve(root, out var err);
        if (RealPaths.Count >= 4096)
        {
            // Roots with variables can name many directories; keep the table bounded.
            RealPaths.Clear();
        }

        RealPaths[root] = (value, now);
        if (value is null)
        {
            r.LogError(LogLevel.Crit, $"realpath() \"{root}\" failed ({Errno.Describe(err)})");
        }

        return value;
    }

    private static string? Resolve(string path, out int err)
    {
        err = 0;
        if (!OperatingSystem.IsLinux())
        {
            try
            {
                var info = new DirectoryInfo(path);
                return (info.ResolveLinkTarget(true) ?? info).FullName;
            }
            catch (IOException)
            {
                err = Errno.ENOENT;
                return null;
            }
        }

        var p = RealPath(path, 0);
        if (p == 0)
        {
            err = Marshal.GetLastPInvokeError();
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(p);
        }
        finally
        {
            Free(p);
        }
    }

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint RealPath(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint p);
}
