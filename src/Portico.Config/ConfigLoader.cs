using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Config;

/// <summary>What to load: nginx's -p, -c and -g, and where files come from.</summary>
public sealed class ConfigLoadRequest
{
    /// <summary>nginx's prefix (-p), with a trailing slash.</summary>
    public required string Prefix { get; init; }

    /// <summary>The main file (-c); relative paths resolve against the prefix, as nginx does.</summary>
    public required string ConfFile { get; init; }

    /// <summary>-g directives, applied before the file.</summary>
    public string? GlobalDirectives { get; init; }

    public IConfigFileSystem FileSystem { get; init; } = PhysicalFileSystem.Instance;

    /// <summary>Text used instead of the main file when that file does not exist (the embedded default).</summary>
    public string? FallbackText { get; init; }
}

public sealed class ConfigLoadResult
{
    public ConfigModel? Model { get; init; }
    public List<Diagnostic> Errors { get; } = [];
    public List<Diagnostic> Warnings { get; } = [];
    public List<BoundSocket> Sockets { get; init; } = [];
    public ConfigDump Dump { get; init; } = new();
    public required ConfigPaths Paths { get; init; }
    public bool UsedFallback { get; init; }

    public bool Success => Model is not null && Errors.Count == 0;
}

/// <summary>Parse → bind → merge → validate: a text configuration into a model, or nginx's diagnostics.</summary>
public static class ConfigLoader
{
    public static ConfigLoadResult Load(DirectiveRegistry registry, ConfigLoadRequest request)
    {
        var prefix = request.Prefix.EndsWith('/') ? request.Prefix : request.Prefix + "/";
        var confFile = request.ConfFile.StartsWith('/') ? request.ConfFile : prefix + request.ConfFile;
        var confPrefix = Path.GetDirectoryName(confFile) is { Length: > 0 } d ? d + "/" : prefix;
        var paths = new ConfigPaths(prefix, confPrefix, confFile);
        var dump = new ConfigDump();
        var parser = new ConfigParser(request.FileSystem, confPrefix, dump);
        var usedFallback = false;

        List<Directive> globals, tree;
        try
        {
            globals = request.GlobalDirectives is { Length: > 0 } g ? parser.ParseParam(g) : [];
            if (!request.FileSystem.FileExists(confFile) && request.FallbackText is not null)
            {
                usedFallback = true;
                tree = parser.ParseText(request.FallbackText, "<embedded default configuration>");
            }
            else
            {
                tree = parser.ParseFile(confFile);
            }
        }
        catch (ConfigException e)
        {
            var failed = new ConfigLoadResult { Paths = paths, Dump = dump };
            failed.Errors.Add(e.ToDiagnostic());
            return failed;
        }

        var model = new ConfigModel(paths, dump);
        var binder = new ConfigBinder(registry, model);
        var main = new BindScope(Ctx.Main, null, null);
        binder.BindBlock(globals, main);
        binder.BindBlock(tree, main);

        var result = new ConfigLoadResult { Model = model, Paths = paths, Dump = dump, UsedFallback = usedFallback };
        result.Errors.AddRange(binder.Errors);
        if (result.Errors.Count == 0 && !model.Main.Get<MainSettings>().HasEvents)
        {
            result.Errors.Add(new Diagnostic(LogLevel.Emerg, "no \"events\" section in configuration", null, 0));
        }

        if (result.Errors.Count == 0)
        {
            binder.Merge();
            foreach (var validate in registry.Validators)
            {
                validate(model, result.Errors);
            }

            if (model.Http is not null && result.Errors.Count == 0)
            {
                var sockets = ListenPlan.Build(model.Http, result.Errors, model.Warnings);
                result.Sockets.AddRange(sockets);
            }
        }

        // Validators may report warnings through the same list; keep them apart.
        for (var i = result.Errors.Count - 1; i >= 0; i--)
        {
            if (result.Errors[i].Level > LogLevel.Error)
            {
                model.Warnings.Insert(0, result.Errors[i]);
                result.Errors.RemoveAt(i);
            }
        }

        result.Warnings.AddRange(model.Warnings);
        return result;
    }
}
