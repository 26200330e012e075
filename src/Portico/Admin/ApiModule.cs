using System.Globalization;
using Microsoft.AspNetCore.Http;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Pipeline;

namespace Portico.Admin;

/// <summary>api [write=on|off] in a location (nginx Plus's ngx_http_api_module).</summary>
public sealed class ApiSettings : Settings<ApiSettings>
{
    public bool? Enabled { get; set; }
    public bool Write { get; set; }
    public Config.Syntax.Directive? Source { get; set; }

    public override void MergeFrom(ApiSettings parent)
    {
    }
}

/// <summary>
/// The nginx Plus REST API as a content handler: "/api/" lists versions, "/api/9/..." is routed through
/// the route table that modules fill (<see cref="IApiModule"/>). Write methods need "write=on".
/// </summary>
public sealed class ApiModule : PorticoModule
{
    /// <summary>The API versions served (nginx Plus R30+ serves 1 to 9).</summary>
    public static readonly int[] Versions = [1, 2, 3, 4, 5, 6, 7, 8, 9];

    public override string Name => "api";

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<ApiSettings>(SettingsScope.Location);
        r.Add(new DirectiveSpec("api", Ctx.Location, Arity.Range(0, 1), Bind) { Module = Name });
    }

    private static void Bind(DirectiveCall c)
    {
        var s = c.Loc<ApiSettings>();
        s.Enabled = true;
        s.Source = c.Directive;
        if (c.Count == 1)
        {
            s.Write = c[0] switch
            {
                "write=on" => true,
                "write=off" => false,
                _ => throw c.Emerg($"invalid parameter \"{c[0]}\""),
            };
        }
    }

    public override void CompileLocation(LocationCompiler lc)
    {
        var s = lc.Level.Find<ApiSettings>();
        if (s?.Enabled != true || lc.Block is null)
        {
            return;
        }

        var router = lc.Snapshot.Snapshot.Feature<ApiRouter>();
        if (router is null)
        {
            router = new ApiRouter();
            router.Map("GET", "nginx", r => NginxInfo(r));
            foreach (var m in lc.Snapshot.Modules)
            {
                (m as IApiModule)?.RegisterApi(router);
            }

            lc.Snapshot.Snapshot.SetFeature(router);
        }

        lc.SetContent(new ApiHandler(router, s.Write, lc.Block.Pattern), "api", s.Source!);
    }

    private static ApiResult NginxInfo(ApiRequest r) => new(200, ApiJson.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("version", Product.Version);
        w.WriteString("build", Product.Name);
        w.WriteString("address", r.Context.Http.Connection.LocalIpAddress?.ToString() ?? string.Empty);
        w.WriteNumber("generation", r.Snapshot.Generation);
        w.WriteString("load_timestamp", ApiJson.Iso(Loaded.GetOrAdd(r.Snapshot.Generation, _ => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())));
        w.WriteString("timestamp", ApiJson.Iso(r.Snapshot.Services.Time.GetUtcNow().ToUnixTimeMilliseconds()));
        w.WriteNumber("pid", Environment.ProcessId);
        w.WriteNumber("ppid", Environment.ProcessId);
        w.WriteEndObject();
    }));

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, long> Loaded = new();
}

/// <summary>Serves one "api" location.</summary>
internal sealed class ApiHandler : ContentHandler
{
    private readonly ApiRouter _router;
    private readonly bool _write;
    private readonly string _prefix;

    public ApiHandler(ApiRouter router, bool write, string prefix)
    {
        _router = router;
        _write = write;
        _prefix = prefix;
    }

    public override async ValueTask<Flow> HandleAsync(RequestContext r)
    {
        r.SetItem(ApiJson.RequestIdKey, HttpCoreModule.NewRequestId());
        var uri = r.Uri;
        var rest = uri.StartsWith(_prefix, StringComparison.Ordinal) ? uri[_prefix.Length..] : uri;
        var path = rest.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var method = r.Method;
        ApiResult result;
        if (path.Length == 0)
        {
            result = method is "GET" or "HEAD" ? List(ApiModule.Versions.Select(v => v.ToString(CultureInfo.InvariantCulture)), numbers: true) : NotSupported(r, method);
        }
        else if (!int.TryParse(path[0], NumberStyles.None, CultureInfo.InvariantCulture, out var version) || Array.IndexOf(ApiModule.Versions, version) < 0)
        {
            result = ApiJson.Error(r, 404, "unknown version", "UnknownVersion");
        }
        else
        {
            var tail = path[1..];
            var body = Array.Empty<byte>();
            if (method is "POST" or "PATCH" or "PUT")
            {
                var ms = new MemoryStream();
                await r.Http.Request.Body.CopyToAsync(ms, r.Http.RequestAborted).ConfigureAwait(false);
                body = ms.ToArray();
            }

            result = Dispatch(r, method, tail, body);
        }

        var response = r.Http.Response;
        r.Status = result.Status;
        response.StatusCode = result.Status;
        if (result.Json is { } json)
        {
            response.ContentType = "application/json";
            response.ContentLength = json.Length;
            ResponseStart.Apply(r);
            if (!HttpMethods.IsHead(method))
            {
                await response.Body.WriteAsync(json, r.Http.RequestAborted).ConfigureAwait(false);
            }
        }
        else
        {
            response.ContentLength = 0;
            ResponseStart.Apply(r);
        }

        return Flow.Done;
    }

    private ApiResult Dispatch(RequestContext r, string method, string[] tail, byte[] body)
    {
        var match = _router.Match(tail);
        if (match is null)
        {
            // A collection: the names below it, as Plus lists "/api/9/" and "/api/9/http/".
            var children = _router.Children(tail);
            if (children.Count == 0)
            {
                return ApiJson.Error(r, 404, "path not found", "PathNotFound");
            }

            return method is "GET" or "HEAD" ? List(children, numbers: false) : NotSupported(r, method);
        }

        var (methods, values) = match.Value;
        var lookup = method == "HEAD" ? "GET" : method;
        if (!methods.TryGetValue(lookup, out var endpoint))
        {
            return NotSupported(r, method);
        }

        if (lookup != "GET" && !_write)
        {
            return ApiJson.Error(r, 405, "method disabled", "MethodDisabled");
        }

        try
        {
            return endpoint(new ApiRequest
            {
                Context = r,
                Method = lookup,
                Values = values,
                Body = body,
                WriteEnabled = _write,
                Snapshot = r.Snapshot,
            });
        }
        catch (System.Text.Json.JsonException)
        {
            return ApiJson.Error(r, 415, "json error", "JsonError");
        }
    }

    private static ApiResult NotSupported(RequestContext r, string method) =>
        ApiJson.Error(r, 405, "method not supported", "MethodNotSupported");

    private static ApiResult List(IEnumerable<string> items, bool numbers) => new(200, ApiJson.Write(w =>
    {
        w.WriteStartArray();
        foreach (var i in items)
        {
            if (numbers)
            {
                w.WriteNumberValue(int.Parse(i, CultureInfo.InvariantCulture));
            }
            else
            {
                w.WriteStringValue(i);
            }
        }

        w.WriteEndArray();
    }));
}
