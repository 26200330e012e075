using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Static;

/// <summary>
/// A location's root or alias, compiled: nginx's ngx_http_map_uri_to_path and the $document_root value.
/// </summary>
public sealed class DocumentRoot
{
    private readonly string _constant;
    private readonly CompiledTemplate? _template;
    private readonly string _prefix;

    public DocumentRoot(RootKind kind, string constant, CompiledTemplate? template, int aliasLength, string prefix, int literalLength)
    {
        Kind = kind;
        LiteralLength = literalLength;
        _constant = constant;
        _template = template;
        AliasLength = aliasLength;
        _prefix = prefix;
    }

    public RootKind Kind { get; }
    public int AliasLength { get; }
    public bool IsAlias => Kind != RootKind.Root;

    /// <summary>How many leading characters of a mapped path are the configured root's literal text.</summary>
    public int LiteralLength { get; }

    /// <summary>
    /// True when the part of a mapped path after the root's literal text holds a ".." segment. The URI normalizer
    /// resolves every ".." of the URI, so only an alias of a location without a trailing slash ("/i" with
    /// "/i../x") or a variable can bring one; nginx would serve the file outside the root, Portico refuses it.
    /// </summary>
    public bool Escapes(string path) => HasDotDotSegment(path, Math.Min(LiteralLength, path.Length));

    internal static bool HasDotDotSegment(string path, int from)
    {
        var i = path.IndexOf("..", from, StringComparison.Ordinal);
        while (i >= 0)
        {
            if ((i == 0 || path[i - 1] == '/') && (i + 2 == path.Length || path[i + 2] == '/'))
            {
                return true;
            }

            i = path.IndexOf("..", i + 1, StringComparison.Ordinal);
        }

        return false;
    }

    /// <summary>The request item set by try_files when it changed the URI under a regex alias (r->add_uri_to_alias).</summary>
    internal static readonly Pipeline.RequestKey AddUriToAliasKey = new();

    /// <summary>$document_root: the root (or alias) value, evaluated and made absolute against the prefix.</summary>
    public string Value(RequestContext r)
    {
        if (_template is null)
        {
            return _constant;
        }

        var v = _template.Evaluate(r);
        return v.Length > 0 && v[0] == '/' ? v : _prefix + v;
    }

    /// <summary>ngx_http_map_uri_to_path: the file name for the current URI.</summary>
    public string Map(RequestContext r)
    {
        var root = Value(r);
        var uri = r.Uri;
        switch (Kind)
        {
            case RootKind.Root:
                return string.Concat(root, uri);
            case RootKind.Alias:
                return AliasLength <= uri.Length ? string.Concat(root, uri.AsSpan(AliasLength)) : root;
            default:
                return r.GetItem<object>(AddUriToAliasKey) is not null ? string.Concat(root, uri) : root;
        }
    }
}
