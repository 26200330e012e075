using System.Collections.Frozen;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Routing;

namespace Portico.Static;

/// <summary>
/// The content handler of every location without one of its own: nginx's content phase of the index,
/// autoindex and static modules, in that order. A URI ending in "/" is a directory (index file, listing,
/// or 403); anything else is a file (its bytes, a 301 to the directory form, or 404).
/// </summary>
public sealed class StaticContent : ContentHandler
{
    private readonly Dictionary<LocationRuntime, StaticLocation> _building = new(ReferenceEqualityComparer.Instance);
    private FrozenDictionary<LocationRuntime, StaticLocation> _locations = FrozenDictionary<LocationRuntime, StaticLocation>.Empty;

    internal void Add(LocationRuntime runtime, StaticLocation location) => _building[runtime] = location;

    internal void Freeze() => _locations = _building.ToFrozenDictionary(ReferenceEqualityComparer.Instance);

    public StaticLocation? For(LocationRuntime runtime) => _locations.GetValueOrDefault(runtime);

    public override ValueTask<Flow> HandleAsync(RequestContext r)
    {
        if (!_locations.TryGetValue(r.Location, out var loc))
        {
            return new ValueTask<Flow>(r.Finish(404));
        }

        var uri = r.Uri;
        return uri.Length > 0 && uri[^1] == '/' ? DirectoryAsync(r, loc) : FileAsync(r, loc);
    }

    private static bool IsGetHeadPost(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsPost(method);

    private static bool HeaderOnly(RequestContext r) => HttpMethods.IsHead(r.Http.Request.Method);

    // ---- directories: index, autoindex, 403 ----

    private static async ValueTask<Flow> DirectoryAsync(RequestContext r, StaticLocation loc)
    {
        var method = r.Method;
        if (IsGetHeadPost(method))
        {
            var (declined, flow) = await IndexAsync(r, loc).ConfigureAwait(false);
            if (!declined)
            {
                return flow;
            }
        }

        if (loc.Autoindex && (HttpMethods.IsGet(method) || HttpMethods.IsHead(method)))
        {
            return await AutoindexAsync(r, loc).ConfigureAwait(false);
        }

        if (!IsGetHeadPost(method))
        {
            return r.Finish(405);
        }

        r.LogError(LogLevel.Error, $"directory index of \"{loc.Root.Map(r)}\" is forbidden");
        return r.Finish(403);
    }

    /// <summary>ngx_http_index_handler: the first index file that exists becomes an internal redirect.</summary>
    private static async ValueTask<(bool Declined, Flow Flow)> IndexAsync(RequestContext r, StaticLocation loc)
    {
        string? basePath = null;
        var dirTested = false;
        foreach (var index in loc.Index)
        {
            string name;
            if (index.Template is null)
            {
                if (index.Name[0] == '/')
                {
                    return (false, r.InternalRedirect(index.Name, null));
                }

                name = index.Name;
            }
            else
            {
                name = index.Template.Evaluate(r);
                if (name.Length > 0 && name[0] == '/')
                {
                    return (false, r.InternalRedirect(name, null));
                }
            }

            basePath ??= loc.Root.Map(r);
            var path = basePath + name;
            if (loc.Root.Escapes(path))
            {
                return (false, Escaping(r, path));
            }

            int err;
            string failed;
            using (var file = await loc.Files.TestAsync(r, path).ConfigureAwait(false))
            {
                err = file.Probe.Error;
                failed = file.Probe.Failed;
            }

            if (err == 0)
            {
                return (false, r.InternalRedirect(r.Uri + name, null));
            }

            if (err is Errno.EMLINK or Errno.ELOOP)
            {
                return (false, r.Finish(403));
            }

            if (err is Errno.ENOTDIR or Errno.ENAMETOOLONG or Errno.EACCES)
            {
                return (false, IndexError(r, loc, path, err));
            }

            if (!dirTested)
            {
                var dirFlow = await TestDirectoryAsync(r, loc, basePath, path).ConfigureAwait(false);
                if (dirFlow is { } f)
                {
                    return (false, f);
                }

                dirTested = true;
            }

            if (err == Errno.ENOENT)
            {
                continue;
            }

            r.LogError(LogLevel.Crit, $"{failed} \"{path}\" failed ({Errno.Describe(err)})");
            return (false, r.Finish(500));
        }

        return (true, Flow.Continue);
    }

    /// <summary>ngx_http_index_test_dir: is the directory itself there (404 when not)?</summary>
    private static async ValueTask<Flow?> TestDirectoryAsync(RequestContext r, StaticLocation loc, string basePath, string indexPath)
    {
        var dir = basePath.Length > 1 && basePath[^1] == '/' ? basePath[..^1] : basePath;
        int err;
        string failed;
        FileStat stat;
        using (var file = await loc.Files.TestAsync(r, dir).ConfigureAwait(false))
        {
            err = file.Probe.Error;
            failed = file.Probe.Failed;
            stat = file.Probe.Stat;
        }

        switch (err)
        {
            case 0:
                break;
            case Errno.EMLINK or Errno.ELOOP:
                return r.Finish(403);
            case Errno.ENOENT:
                return IndexError(r, loc, indexPath, Errno.ENOENT);
            case Errno.EACCES:
                return null;
            default:
                r.LogError(LogLevel.Crit, $"{failed} \"{dir}\" failed ({Errno.Describe(err)})");
                return r.Finish(500);
        }

        if (stat.IsDirectory)
        {
            return null;
        }

        r.LogError(LogLevel.Alert, $"\"{dir}\" is not a directory");
        return r.Finish(500);
    }

    private static Flow IndexError(RequestContext r, StaticLocation loc, string path, int err)
    {
        if (err == Errno.EACCES)
        {
            r.LogError(LogLevel.Error, $"\"{path}\" is forbidden ({Errno.Describe(err)})");
            return r.Finish(403);
        }

        if (loc.LogNotFound)
        {
            r.LogError(LogLevel.Error, $"\"{path}\" is not found ({Errno.Describe(err)})");
        }

        return r.Finish(404);
    }

    /// <summary>ngx_http_autoindex_handler.</summary>
    private static async ValueTask<Flow> AutoindexAsync(RequestContext r, StaticLocation loc)
    {
        var path = loc.Root.Map(r);
        if (loc.Root.Escapes(path))
        {
            return Escaping(r, path);
        }

        if (path.Length > 1)
        {
            path = path[..^1];
        }

        var format = loc.AutoindexFormat;
        string? callback = null;
        if (format == AutoindexFormat.Jsonp)
        {
            callback = HttpCoreModule.Arg(r.Args, "callback");
            if (callback is not null && callback.Length > 128)
            {
                r.LogError(LogLevel.Info, $"client sent too long callback name: \"{callback}\"");
                return r.Finish(400);
            }

            if (callback is not null && !AutoindexRenderer.ValidCallback(callback))
            {
                r.LogError(LogLevel.Info, $"client sent invalid callback name: \"{callback}\"");
                return r.Finish(400);
            }

            if (string.IsNullOrEmpty(callback))
            {
                format = AutoindexFormat.Json;
                callback = null;
            }
        }

        var uri = r.Uri;
        var exact = loc.AutoindexExactSize;
        var gmtoff = loc.AutoindexLocaltime ? (long)TimeZoneInfo.Local.GetUtcOffset(DateTime.UtcNow).TotalSeconds : 0;
        var (err, failed, failedName, body) = await Task.Run(() =>
        {
            var entries = new List<NativeFiles.DirEntry>();
            var e = NativeFiles.ReadDirectory(path, entries, out var f, out var fn);
            if (e != 0)
            {
                return (e, f, fn, (byte[]?)null);
            }

            AutoindexRenderer.Sort(entries);
            var bytes = format switch
            {
                AutoindexFormat.Json or AutoindexFormat.Jsonp => AutoindexRenderer.Json(entries, callback),
                AutoindexFormat.Xml => AutoindexRenderer.Xml(entries),
                _ => AutoindexRenderer.Html(uri, entries, exact, gmtoff),
            };
            return (0, f, fn, bytes);
        }).ConfigureAwait(false);

        if (body is null)
        {
            if (failedName is not null)
            {
                r.LogError(LogLevel.Crit, $"{failed} \"{failedName}\" failed ({Errno.Describe(err)})");
                return r.Finish(500);
            }

            var (level, status) = err switch
            {
                Errno.ENOENT or Errno.ENOTDIR or Errno.ENAMETOOLONG => (LogLevel.Error, 404),
                Errno.EACCES => (LogLevel.Error, 403),
                _ => (LogLevel.Crit, 500),
            };
            r.LogError(level, $"{failed} \"{path}\" failed ({Errno.Describe(err)})");
            return r.Finish(status);
        }

        var response = r.Http.Response;
        var conditional = Conditional.Evaluate(r.Http.Request.Headers, -1, null, loc.IfModifiedSince);
        if (conditional == 412)
        {
            return r.Finish(412);
        }

        var contentType = format switch
        {
            AutoindexFormat.Json => "application/json",
            AutoindexFormat.Jsonp => "application/javascript",
            AutoindexFormat.Xml => "text/xml; charset=utf-8",
            _ => "text/html",
        };

        if (conditional == 304)
        {
            return NotModified(r);
        }

        r.Status = 200;
        response.StatusCode = 200;
        response.ContentType = contentType;
        ResponseStart.Apply(r);
        if (!HeaderOnly(r))
        {
            await response.Body.WriteAsync(body, r.Http.RequestAborted).ConfigureAwait(false);
        }

        return Flow.Done;
    }

    // ---- files ----

    /// <summary>ngx_http_static_handler with the not-modified and range filters applied to its response.</summary>
    private static async ValueTask<Flow> FileAsync(RequestContext r, StaticLocation loc)
    {
        var method = r.Method;
        if (!IsGetHeadPost(method))
        {
            return r.Finish(405);
        }

        var path = loc.Root.Map(r);
        if (loc.Root.Escapes(path))
        {
            return Escaping(r, path);
        }

        var file = await loc.Files.OpenAsync(r, path).ConfigureAwait(false);
        try
        {
            var probe = file.Probe;
            if (!probe.Ok)
            {
                return OpenError(r, loc, path, probe);
            }

            if (probe.Stat.IsDirectory)
            {
                var response = r.Http.Response;
                var uri = r.Uri;
                var location = NginxEscape.NeedsUriEscape(uri) ? NginxEscape.Uri(uri) : uri;
                response.Headers.Location = r.Args.Length > 0 ? location + "/?" + r.Args : location + "/";
                return r.Finish(301);
            }

            if (!probe.Stat.IsFile)
            {
                r.LogError(LogLevel.Crit, $"\"{path}\" is not a regular file");
                return r.Finish(404);
            }

            if (HttpMethods.IsPost(method))
            {
                return r.Finish(405);
            }

            return await StaticFileSender.SendAsync(r, loc, path, probe).ConfigureAwait(false);
        }
        finally
        {
            file.Dispose();
        }
    }

    private static Flow OpenError(RequestContext r, StaticLocation loc, string path, FileProbe probe)
    {
        LogLevel level;
        int status;
        switch (probe.Error)
        {
            case Errno.ENOENT or Errno.ENOTDIR or Errno.ENAMETOOLONG:
                level = LogLevel.Error;
                status = 404;
                break;
            case Errno.EACCES or Errno.EMLINK or Errno.ELOOP:
                level = LogLevel.Error;
                status = 403;
                break;
            default:
                level = LogLevel.Crit;
                status = 500;
                break;
        }

        if (status != 404 || loc.LogNotFound)
        {
            r.LogError(level, $"{probe.Failed} \"{path}\" failed ({Errno.Describe(probe.Error)})");
        }

        return r.Finish(status);
    }

    /// <summary>A mapped path that would leave the document root: refused as not found.</summary>
    internal static Flow Escaping(RequestContext r, string path)
    {
        r.LogError(LogLevel.Error, $"\"{path}\" is outside the document root, refused");
        return r.Finish(404);
    }

    /// <summary>The not-modified filter's 304: no type, length or Accept-Ranges; ETag and Last-Modified stay.</summary>
    internal static Flow NotModified(RequestContext r)
    {
        var response = r.Http.Response;
        r.Status = 304;
        response.StatusCode = 304;
        response.ContentType = null;
        response.ContentLength = null;
        response.Headers.Remove(HeaderNames.AcceptRanges);
        response.Headers.Remove(HeaderNames.ContentEncoding);
        ResponseStart.Apply(r);
        return Flow.Done;
    }
}
