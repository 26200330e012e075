using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Static;

/// <summary>How "alias" maps a URI (nginx's clcf->alias: 0, the location name length, or NGX_MAX_SIZE_T_VALUE).</summary>
public enum RootKind
{
    /// <summary>root: the path is the root followed by the whole URI.</summary>
    Root,

    /// <summary>alias in a prefix or exact location: the location's name is replaced by the alias.</summary>
    Alias,

    /// <summary>alias in a regex location: the (evaluated) alias is the whole path.</summary>
    AliasRegex,
}

/// <summary>A bound "root" or "alias" directive.</summary>
public sealed class RootSpec
{
    public RootSpec(RootKind kind, string value, ValueTemplate? template, int aliasLength, Directive source)
    {
        Kind = kind;
        Value = value;
        Template = template;
        AliasLength = aliasLength;
        Source = source;
    }

    public RootKind Kind { get; }

    /// <summary>The value, made absolute against the prefix when it is constant and does not start with "$".</summary>
    public string Value { get; }

    /// <summary>The value as a template when it holds variables or captures (or is an alias in a regex location).</summary>
    public ValueTemplate? Template { get; }

    /// <summary>For <see cref="RootKind.Alias"/>: the length of the location name the alias replaces.</summary>
    public int AliasLength { get; }

    public Directive Source { get; }

    public bool IsAlias => Kind != RootKind.Root;
}

public enum IfModifiedSince
{
    Off,
    Exact,
    Before,
}

public enum SymlinkPolicy
{
    Off,
    On,
    IfNotOwner,
}

/// <summary>disable_symlinks off | on | if_not_owner [from=part].</summary>
public sealed record DisableSymlinksSpec(SymlinkPolicy Policy, ValueTemplate? From);

/// <summary>open_file_cache max=N [inactive=time]; one cache per directive, shared by the levels that inherit it.</summary>
public sealed class OpenFileCacheSpec
{
    public OpenFileCacheSpec(int max, long inactiveSeconds, Directive source)
    {
        Max = max;
        InactiveSeconds = inactiveSeconds;
        Source = source;
    }

    public int Max { get; }
    public long InactiveSeconds { get; }
    public Directive Source { get; }
}

/// <summary>
/// The core module's file directives (root/alias, types, etag, if_modified_since, max_ranges, the I/O tuning
/// flags, disable_symlinks, open_file_cache*, log_not_found), with nginx's merge rules.
/// </summary>
public sealed class StaticSettings : Settings<StaticSettings>
{
    public RootSpec? Root { get; set; }

    /// <summary>The "types" entries of this level in order (extension, type); null when no "types" here.</summary>
    public List<KeyValuePair<string, string>>? Types { get; set; }

    public bool? Etag { get; set; }
    public IfModifiedSince? IfModifiedSince { get; set; }
    public long? MaxRanges { get; set; }
    public bool? Sendfile { get; set; }
    public long? SendfileMaxChunk { get; set; }
    public bool? TcpNopush { get; set; }
    public bool? TcpNodelay { get; set; }
    public long? TypesHashMaxSize { get; set; }
    public long? TypesHashBucketSize { get; set; }
    public DisableSymlinksSpec? DisableSymlinks { get; set; }

    /// <summary>Set once "open_file_cache" appeared here; <see cref="OpenFileCache"/> is then null for "off".</summary>
    public bool OpenFileCacheSet { get; set; }
    public OpenFileCacheSpec? OpenFileCache { get; set; }
    public long? OpenFileCacheValid { get; set; }
    public long? OpenFileCacheMinUses { get; set; }
    public bool? OpenFileCacheErrors { get; set; }
    public bool? LogNotFound { get; set; }

    public override void MergeFrom(StaticSettings parent)
    {
        // root and alias are one value in nginx (clcf->root with clcf->alias): inherited together.
        Root ??= parent.Root;
        Types ??= parent.Types;
        Etag ??= parent.Etag ?? true;
        IfModifiedSince ??= parent.IfModifiedSince ?? Static.IfModifiedSince.Exact;
        MaxRanges ??= parent.MaxRanges ?? int.MaxValue;
        Sendfile ??= parent.Sendfile ?? false;
        SendfileMaxChunk ??= parent.SendfileMaxChunk ?? 2 * 1024 * 1024;
        TcpNopush ??= parent.TcpNopush ?? false;
        TcpNodelay ??= parent.TcpNodelay ?? true;
        TypesHashMaxSize ??= parent.TypesHashMaxSize ?? 1024;
        TypesHashBucketSize ??= parent.TypesHashBucketSize ?? 64;
        DisableSymlinks ??= parent.DisableSymlinks ?? new DisableSymlinksSpec(SymlinkPolicy.Off, null);
        if (!OpenFileCacheSet)
        {
            OpenFileCacheSet = parent.OpenFileCacheSet;
            OpenFileCache = parent.OpenFileCache;
        }

        OpenFileCacheValid ??= parent.OpenFileCacheValid ?? 60;
        OpenFileCacheMinUses ??= parent.OpenFileCacheMinUses ?? 1;
        OpenFileCacheErrors ??= parent.OpenFileCacheErrors ?? false;
        LogNotFound ??= parent.LogNotFound ?? true;
    }
}

/// <summary>One "index" file name: a constant or a template.</summary>
public sealed record IndexSpec(string Name, ValueTemplate? Template);

/// <summary>ngx_http_index_module: the index files; a level that sets any replaces the inherited list.</summary>
public sealed class IndexSettings : Settings<IndexSettings>
{
    public static readonly IReadOnlyList<IndexSpec> DefaultIndex = [new IndexSpec("index.html", null)];

    public List<IndexSpec>? Indices { get; set; }

    /// <summary>The merged list (the default "index.html" when no level set any).</summary>
    public IReadOnlyList<IndexSpec> Effective => Indices ?? DefaultIndex;

    public override void MergeFrom(IndexSettings parent) => Indices ??= parent.Indices;
}

public enum AutoindexFormat
{
    Html,
    Json,
    Jsonp,
    Xml,
}

/// <summary>ngx_http_autoindex_module settings.</summary>
public sealed class AutoindexSettings : Settings<AutoindexSettings>
{
    public bool? Enable { get; set; }
    public AutoindexFormat? Format { get; set; }
    public bool? Localtime { get; set; }
    public bool? ExactSize { get; set; }

    public override void MergeFrom(AutoindexSettings parent)
    {
        Enable ??= parent.Enable ?? false;
        Format ??= parent.Format ?? AutoindexFormat.Html;
        Localtime ??= parent.Localtime ?? false;
        ExactSize ??= parent.ExactSize ?? true;
    }
}

/// <summary>One element of try_files: a file or directory (name ending in "/") to test, as a template.</summary>
public sealed record TryFileSpec(string Name, ValueTemplate Template, bool TestDir);

/// <summary>try_files file ... uri | =code.</summary>
public sealed class TryFilesSpec
{
    public TryFilesSpec(IReadOnlyList<TryFileSpec> files, ValueTemplate fallback, int? code, Directive source)
    {
        Files = files;
        Fallback = fallback;
        Code = code;
        Source = source;
    }

    public IReadOnlyList<TryFileSpec> Files { get; }

    /// <summary>The last parameter: a URI or @name (unused when <see cref="Code"/> is set).</summary>
    public ValueTemplate Fallback { get; }

    public int? Code { get; }
    public Directive Source { get; }
}

/// <summary>ngx_http_try_files_module: not inherited (nginx has no merge for it): each level uses its own.</summary>
public sealed class TryFilesSettings : Settings<TryFilesSettings>
{
    public TryFilesSpec? TryFiles { get; set; }

    public override void MergeFrom(TryFilesSettings parent)
    {
    }
}
