using Portico.Compilation;
using Portico.Config.Syntax;
using Portico.Logging;

namespace Portico.Config.Tests;

/// <summary>
/// Loads and compiles a configuration the way "-t" does, for the diagnostics that need the whole snapshot
/// (unknown variables, "the duplicate variable").
/// </summary>
public static class CompileHarness
{
    private static readonly IReadOnlyList<PorticoModule> Modules = ModuleCatalog.CreateModules();

    /// <summary>An http block body (from line 4) in a whole configuration that opens no log file.</summary>
    public static string Http(string body) => "error_log stderr;\nevents {}\nhttp { access_log off;\n" + body + "\n}\n";

    /// <summary>Every error of loading then compiling, in nginx's printed shape.</summary>
    public static async Task<IReadOnlyList<string>> ErrorsAsync(string main, params (string Path, string Content)[] files)
    {
        var load = ConfigHarness.Load(main, files);
        if (!load.Success)
        {
            return [.. load.Errors.Select(e => e.ToString())];
        }

        await using var writer = new LogWriter();
        var services = new HostServices(writer, TimeProvider.System, new NoServices());
        try
        {
            new SnapshotCompiler(Modules, services).Compile(load, 1);
            return [];
        }
        catch (SnapshotCompileException e)
        {
            return [.. e.Errors.Select(d => d.ToString())];
        }
    }

    /// <summary>The first error, which must exist.</summary>
    public static async Task<string> FirstErrorAsync(string main, params (string Path, string Content)[] files)
    {
        var errors = await ErrorsAsync(main, files);
        Assert.NotEmpty(errors);
        return errors[0];
    }

    private sealed class NoServices : IServiceProvider
    {
        public object? GetService(Type serviceType) => null;
    }
}
