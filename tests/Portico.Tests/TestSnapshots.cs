using Microsoft.Extensions.DependencyInjection;
using Portico.Compilation;
using Portico.Config;
using Portico.Config.Syntax;
using Portico.Logging;

namespace Portico.Tests;

/// <summary>Compiles configuration text into a runtime snapshot without binding any socket.</summary>
public static class TestSnapshots
{
    private static readonly IReadOnlyList<PorticoModule> Modules = ModuleCatalog.CreateModules();
    private static readonly Config.Directives.DirectiveRegistry Registry = ModuleCatalog.CreateRegistry(Modules);

    public static RuntimeSnapshot Compile(string config)
    {
        var fs = new MemoryFileSystem().Add("/etc/portico/portico.conf", config);
        var load = ConfigLoader.Load(Registry, new ConfigLoadRequest
        {
            Prefix = "/etc/portico/",
            ConfFile = "/etc/portico/portico.conf",
            FileSystem = fs,
        });
        Assert.True(load.Success, string.Join("\n", load.Errors));
        var services = new HostServices(new LogWriter(), TimeProvider.System, new ServiceCollection().BuildServiceProvider());
        var compiler = new SnapshotCompiler(Modules, services);
        return compiler.Compile(load, 1);
    }

    /// <summary>A whole configuration around an http block body; error_log goes to stderr, access logs are off.</summary>
    public static RuntimeSnapshot Http(string body) =>
        Compile("error_log stderr emerg;\nevents {}\nhttp { access_log off;\n" + body + "\n}\n");
}
