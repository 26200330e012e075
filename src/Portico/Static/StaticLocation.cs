using Portico.Variables;

namespace Portico.Static;

/// <summary>An "index" file of a location, compiled.</summary>
public sealed record CompiledIndex(string Name, CompiledTemplate? Template);

/// <summary>Everything the static content handlers of one location read, compiled once.</summary>
public sealed class StaticLocation
{
    public required DocumentRoot Root { get; init; }
    public required MimeTypes Types { get; init; }
    public required string DefaultType { get; init; }
    public required CompiledIndex[] Index { get; init; }
    public required bool Autoindex { get; init; }
    public required AutoindexFormat AutoindexFormat { get; init; }
    public required bool AutoindexLocaltime { get; init; }
    public required bool AutoindexExactSize { get; init; }
    public required bool Etag { get; init; }
    public required IfModifiedSince IfModifiedSince { get; init; }
    public required int MaxRanges { get; init; }
    public required bool LogNotFound { get; init; }
    public required FileAccess Files { get; init; }

    /// <summary>Bytes read from a file per write (sendfile_max_chunk, within 16 KiB .. 1 MiB).</summary>
    public required int ChunkSize { get; init; }
}
