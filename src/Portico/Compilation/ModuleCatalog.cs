using Portico.Config.Directives;

namespace Portico.Compilation;

/// <summary>
/// Every module Portico is built with, in nginx's module order (which orders handlers within a phase).
/// A new capability is a folder with its module, plus one line here.
/// </summary>
public static class ModuleCatalog
{
    public static IReadOnlyList<PorticoModule> CreateModules() =>
    [
        new Pipeline.HttpCoreModule(),
        new ClientSide.ClientModule(),
        new Rewrite.RewriteModule(),
        new Variables.MapModule(),
        new Rewrite.ErrorPageModule(),
        new Static.StaticModule(),
        new Headers.HeadersModule(),
        new Upstreams.UpstreamModule(),
        new Proxy.ProxyModule(),
        new Admin.ApiModule(),
        new Grpc.GrpcModule(),
        new Logging.LogModule(),
        new Tls.SslModule(),
        new Tls.Http2Module(),
    ];

    /// <summary>The directive registry of the configuration language: the structure plus every module.</summary>
    public static DirectiveRegistry CreateRegistry(IReadOnlyList<PorticoModule> modules)
    {
        var registry = new DirectiveRegistry();
        new CoreModule().Register(registry);
        foreach (var m in modules)
        {
            m.Register(registry);
        }

        return registry;
    }
}
