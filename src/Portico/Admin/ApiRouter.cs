using System.Text;
using System.Text.Json;
using Portico.Pipeline;

namespace Portico.Admin;

/// <summary>What an endpoint answers: a status and a JSON body (null for 204).</summary>
public readonly record struct ApiResult(int Status, byte[]? Json)
{
    public static ApiResult NoContent => new(204, null);
}

/// <summary>One request to the API, as an endpoint sees it.</summary>
public sealed class ApiRequest
{
    public required RequestContext Context { get; init; }
    public required string Method { get; init; }

    /// <summary>The values of the route's {placeholders}.</summary>
    public required IReadOnlyDictionary<string, string> Values { get; init; }

    /// <summary>The request body (PATCH, POST), read completely.</summary>
    public required byte[] Body { get; init; }

    public required bool WriteEnabled { get; init; }

    public required Compilation.RuntimeSnapshot Snapshot { get; init; }
}

/// <summary>Something that answers requests to one route.</summary>
public delegate ApiResult ApiEndpoint(ApiRequest request);

/// <summary>A module that serves part of the API (upstreams today; caches, zones, limits later).</summary>
public interface IApiModule
{
    /// <summary>Adds the module's routes; called once per snapshot that has an "api" location.</summary>
    void RegisterApi(ApiRouter router);
}

/// <summary>
/// The API's route table: paths below /api/VERSION/ with {placeholders}, each with the methods it serves.
/// Modules register their routes; the API module only matches and answers nginx Plus's errors.
/// Collections ("http", "http/upstreams") list their children automatically, as Plus does.
/// </summary>
public sealed class ApiRouter
{
    private readonly List<Route> _routes = [];

    private sealed record Route(string[] Segments, Dictionary<string, ApiEndpoint> Methods);

    /// <summary>Adds a handler for a method on a path like "http/upstreams/{upstream}/servers/{id}".</summary>
    public ApiRouter Map(string method, string path, ApiEndpoint endpoint)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (var r in _routes)
        {
            if (r.Segments.AsSpan().SequenceEqual(segments))
            {
                r.Methods[method] = endpoint;
                return this;
            }
        }

        _routes.Add(new Route(segments, new Dictionary<string, ApiEndpoint>(StringComparer.Ordinal) { [method] = endpoint }));
        return this;
    }

    /// <summary>The fixed names directly below a path ("" gives the top: "nginx", "http" ...), for collection listings.</summary>
    public List<string> Children(string[] prefix)
    {
        var names = new List<string>();
        foreach (var r in _routes)
        {
            if (r.Segments.Length > prefix.Length && r.Segments.AsSpan(0, prefix.Length).SequenceEqual(prefix))
            {
                var next = r.Segments[prefix.Length];
                if (!next.StartsWith('{') && !names.Contains(next))
                {
                    names.Add(next);
                }
            }
        }

        return names;
    }

    /// <summary>Finds the route of a path: (endpoints by method, placeholder values), or null.</summary>
    public (IReadOnlyDictionary<string, ApiEndpoint> Methods, Dictionary<string, string> Values)? Match(string[] path)
    {
        foreach (var r in _routes)
        {
            if (r.Segments.Length != path.Length)
            {
                continue;
            }

            Dictionary<string, string>? values = null;
            var ok = true;
            for (var i = 0; i < path.Length && ok; i++)
            {
                var s = r.Segments[i];
                if (s.StartsWith('{'))
                {
                    (values ??= new(StringComparer.Ordinal))[s[1..^1]] = path[i];
                }
                else
                {
                    ok = s == path[i];
                }
            }

            if (ok)
            {
                return (r.Methods, values ?? new(StringComparer.Ordinal));
            }
        }

        return null;
    }
}

/// <summary>nginx Plus's JSON bodies written without reflection (Utf8JsonWriter), and its error shape.</summary>
public static class ApiJson
{
    public const string DocsHref = "https://nginx.org/en/docs/http/ngx_http_api_module.html";

    /// <summary>Where the API handler keeps the request's $request_id for error bodies.</summary>
    public static readonly object RequestIdKey = new();

    public static byte[] Write(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            write(w);
        }

        return ms.ToArray();
    }

    /// <summary>{"error":{"status":…,"text":…,"code":…},"request_id":…,"href":…}</summary>
    public static ApiResult Error(ApiRequest? request, int status, string text, string code) => Error(request?.Context, status, text, code);

    public static ApiResult Error(RequestContext? r, int status, string text, string code) => new(status, Write(w =>
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteNumber("status", status);
        w.WriteString("text", text);
        w.WriteString("code", code);
        w.WriteEndObject();
        w.WriteString("request_id", r?.GetItem<string>(RequestIdKey) ?? Pipeline.HttpCoreModule.NewRequestId());
        w.WriteString("href", DocsHref);
        w.WriteEndObject();
    }));

    public static string Iso(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
