using Portico.Compilation;
using Portico.Config;
using Portico.Config.Directives;
using Portico.Config.Syntax;

namespace Portico.Config.Tests;

/// <summary>Loads configuration text from an in-memory file tree with the full directive registry.</summary>
public static class ConfigHarness
{
    public const string Prefix = "/etc/portico/";
    public const string Main = "/etc/portico/portico.conf";

    private static readonly Lazy<DirectiveRegistry> Registry = new(() => ModuleCatalog.CreateRegistry(ModuleCatalog.CreateModules()));

    public static ConfigLoadResult Load(string main, params (string Path, string Content)[] files) =>
        Load(main, null, files);

    public static ConfigLoadResult Load(string main, string? globals, params (string Path, string Content)[] files)
    {
        var fs = new MemoryFileSystem().Add(Main, main);
        foreach (var (path, content) in files)
        {
            fs.Add(path.StartsWith('/') ? path : Prefix + path, content);
        }

        return ConfigLoader.Load(Registry.Value, new ConfigLoadRequest
        {
            Prefix = Prefix,
            ConfFile = Main,
            GlobalDirectives = globals,
            FileSystem = fs,
        });
    }

    /// <summary>The first error as nginx prints it: "[emerg] message in file:line".</summary>
    public static string FirstError(string main, params (string Path, string Content)[] files)
    {
        var result = Load(main, files);
        Assert.False(result.Success, "expected the configuration to fail");
        return result.Errors[0].ToString();
    }

    /// <summary>Wraps an http block body into a minimal whole configuration.</summary>
    public static string Http(string body) => "events {}\nhttp {\n" + body + "\n}\n";
}
