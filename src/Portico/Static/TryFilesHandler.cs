using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Static;

/// <summary>
/// ngx_http_try_files_handler (pre-content phase): the first existing file (or directory, for "name/")
/// becomes the URI and processing goes on in this location; otherwise the last parameter decides:
/// "=code", a named location, or an internal redirect to a URI (with the arguments it names, if any).
/// </summary>
public sealed class TryFilesHandler : PhaseHandler
{
    private readonly (CompiledTemplate Template, bool TestDir)[] _files;
    private readonly CompiledTemplate _fallback;
    private readonly int? _code;
    private readonly DocumentRoot _root;
    private readonly FileAccess _access;

    public TryFilesHandler((CompiledTemplate Template, bool TestDir)[] files, CompiledTemplate fallback, int? code, DocumentRoot root, FileAccess access)
    {
        _files = files;
        _fallback = fallback;
        _code = code;
        _root = root;
        _access = access;
    }

    public override async ValueTask<Flow> InvokeAsync(RequestContext r)
    {
        var root = _root.Value(r);
        var uri = r.Uri;
        foreach (var (template, testDir) in _files)
        {
            var name = Strip(template.Evaluate(r), uri);
            var path = root + name;
            if (_root.Escapes(path))
            {
                continue;
            }

            int err;
            string failed;
            FileStat stat;
            using (var file = await _access.TestAsync(r, path).ConfigureAwait(false))
            {
                err = file.Probe.Error;
                failed = file.Probe.Failed;
                stat = file.Probe.Stat;
            }

            if (err != 0)
            {
                if (err is not (Errno.ENOENT or Errno.ENOTDIR or Errno.ENAMETOOLONG))
                {
                    r.LogError(LogLevel.Crit, $"{failed} \"{path}\" failed ({Errno.Describe(err)})");
                }

                continue;
            }

            if (stat.IsDirectory != testDir)
            {
                continue;
            }

            switch (_root.Kind)
            {
                case RootKind.Root:
                    r.Uri = name;
                    break;
                case RootKind.AliasRegex:
                    if (!testDir)
                    {
                        r.Uri = name;
                        r.SetItem(DocumentRoot.AddUriToAliasKey, DocumentRoot.AddUriToAliasKey);
                    }

                    break;
                default:
                    r.Uri = string.Concat(uri.AsSpan(0, Math.Min(_root.AliasLength, uri.Length)), name);
                    break;
            }

            return Flow.Continue;
        }

        if (_code is { } code)
        {
            return r.Finish(code);
        }

        var target = Strip(_fallback.Evaluate(r), uri);
        if (target.Length > 0 && target[0] == '@')
        {
            if (r.Server.Named.TryGetValue(target, out var named))
            {
                return r.NamedRedirect(named);
            }

            r.LogError(LogLevel.Error, $"could not find named location \"{target}\"");
            return r.Finish(500);
        }

        var q = target.IndexOf('?', StringComparison.Ordinal);
        return q < 0 ? r.InternalRedirect(target, string.Empty) : r.InternalRedirect(target[..q], target[(q + 1)..]);
    }

    /// <summary>With a prefix alias, a name that starts with the location's part of the URI loses it.</summary>
    private string Strip(string name, string uri)
    {
        if (_root.Kind != RootKind.Alias)
        {
            return name;
        }

        var n = _root.AliasLength;
        return n > 0 && name.Length >= n && uri.Length >= n && string.CompareOrdinal(name, 0, uri, 0, n) == 0 ? name[n..] : name;
    }
}
