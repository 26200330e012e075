using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Portico.Compilation;
using Portico.Config;
using Portico.Config.Syntax;
using Portico.Logging;
using Portico.Pipeline;

namespace Portico.Micro;

/// <summary>
/// Configuration text compiled as a reload would (parser, binder, snapshot compiler), without sockets; and
/// requests shaped as Kestrel hands them to Portico, for the benchmarks that need a request.
/// </summary>
internal static class MicroConfig
{
    public static readonly IReadOnlyList<PorticoModule> Modules = ModuleCatalog.CreateModules();
    public static readonly Config.Directives.DirectiveRegistry Registry = ModuleCatalog.CreateRegistry(Modules);

    public static ConfigLoadResult Load(string config)
    {
        var fs = new MemoryFileSystem().Add("/etc/portico/portico.conf", config);
        var load = ConfigLoader.Load(Registry, new ConfigLoadRequest
        {
            Prefix = "/etc/portico/",
            ConfFile = "/etc/portico/portico.conf",
            FileSystem = fs,
        });
        if (!load.Success)
        {
            throw new InvalidOperationException(string.Join("\n", load.Errors));
        }

        return load;
    }

    public static RuntimeSnapshot Compile(string config)
    {
        var services = new HostServices(new LogWriter(start: false), TimeProvider.System, new ServiceCollection().BuildServiceProvider());
        return new SnapshotCompiler(Modules, services).Compile(Load(config), 1);
    }

    /// <summary>A whole configuration around an http block body; error_log to stderr, no access log.</summary>
    public static RuntimeSnapshot Http(string body) =>
        Compile("error_log stderr emerg;\nevents {}\nhttp { access_log off;\n" + body + "\n}\n");

    /// <summary>A GET as a browser sends it, with its server chosen, URI set and location found.</summary>
    public static RequestContext Request(RuntimeSnapshot snapshot, string target, string remote = "192.0.2.10")
    {
        var http = new DefaultHttpContext();
        var feature = http.Features.GetRequiredFeature<IHttpRequestFeature>();
        feature.Method = "GET";
        feature.Protocol = "HTTP/1.1";
        feature.Scheme = "http";
        feature.RawTarget = target;
        var query = target.IndexOf('?', StringComparison.Ordinal);
        feature.Path = query < 0 ? target : target[..query];
        feature.QueryString = query < 0 ? string.Empty : target[query..];
        var headers = http.Request.Headers;
        headers.Host = "www.example.com";
        headers.UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        headers.Accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        headers.AcceptLanguage = "en-GB,en;q=0.5";
        headers.AcceptEncoding = "gzip, deflate, br";
        headers.Referer = "http://www.example.com/index.html";
        headers.Cookie = "session=7b1f0c2a9e; theme=dark";
        headers["X-Forwarded-For"] = "198.51.100.7";

        var r = new RequestContext(http, snapshot, null!, new ClientConnection(IPAddress.Parse(remote), 51234, IPAddress.Loopback, 80));
        r.Server = snapshot.Servers[0];
        r.Uri = feature.Path;
        r.Args = query < 0 ? string.Empty : target[(query + 1)..];
        r.Host = "www.example.com";
        r.Location = r.Server.Locations.Find(r.Uri, r).Location ?? throw new InvalidOperationException("no location for " + target);
        r.Status = 200;
        return r;
    }

    /// <summary>Forgets the request's cached variable values, as the next request starts without them.</summary>
    public static void ClearVariables(RequestContext r)
    {
        if (Values(r) is { } values)
        {
            Array.Clear(values);
        }
    }

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_values")]
    private static extern ref string?[]? Values(RequestContext r);
}
