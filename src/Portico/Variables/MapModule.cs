using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;

namespace Portico.Variables;

/// <summary>One map block as bound: the source, the variable, its parameters and its table of values.</summary>
public sealed class MapSpec
{
    public MapSpec(Directive source, ValueTemplate value, string name)
    {
        Source = source;
        Value = value;
        Name = name;
    }

    public Directive Source { get; }

    /// <summary>The first parameter: the string (with variables) that is looked up.</summary>
    public ValueTemplate Value { get; }

    /// <summary>The variable defined (without "$", lower case).</summary>
    public string Name { get; }

    public MapTable<ValueTemplate> Table { get; } = new(false);
    public ValueTemplate? Default { get; set; }
    public bool Volatile { get; set; }
    public bool Hostnames => Table.Hostnames;
}

/// <summary>ngx_http_map_module's http-level settings: the maps and the (accepted) hash sizes.</summary>
public sealed class MapSettings : Settings<MapSettings>
{
    public List<MapSpec> Maps { get; } = [];
    public long? HashMaxSize { get; set; }
    public long? HashBucketSize { get; set; }

    public override void MergeFrom(MapSettings parent)
    {
    }
}

/// <summary>
/// ngx_http_map_module: "map string $variable { ... }" creates a variable whose value is looked up, when
/// the variable is read, from the value of the string.
/// </summary>
public sealed class MapModule : PorticoModule
{
    public override string Name => "map";

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<MapSettings>(SettingsScope.HttpMain);
        r.AddSettings<CaptureDeclarations>(SettingsScope.HttpMain);
        r.Add(new DirectiveSpec("map", Ctx.Http, Arity.Two, Bind) { IsBlock = true, Repeatable = true, Module = Name });
        r.Add(new DirectiveSpec("map_hash_max_size", Ctx.Http, Arity.One, c => c.HttpMain<MapSettings>().HashMaxSize = c.Number(0)) { Module = Name });
        r.Add(new DirectiveSpec("map_hash_bucket_size", Ctx.Http, Arity.One, c => c.HttpMain<MapSettings>().HashBucketSize = c.Number(0)) { Module = Name });
    }

    /// <summary>ngx_http_map_block and ngx_http_map: the entries are parsed in order, with nginx's checks.</summary>
    private static void Bind(DirectiveCall c)
    {
        var source = c.Template(0);
        var target = c[1];
        if (target.Length == 0 || target[0] != '$')
        {
            throw c.Emerg($"invalid variable name \"{target}\"");
        }

        if (target.Length == 1)
        {
            throw c.Emerg("invalid variable name \"$\"");
        }

        var map = new MapSpec(c.Directive, source, target[1..].ToLowerInvariant());
        foreach (var entry in c.Directive.Block ?? [])
        {
            AddEntry(map, entry, c);
        }

        c.HttpMain<MapSettings>().Maps.Add(map);
    }

    private static void AddEntry(MapSpec map, Directive entry, DirectiveCall c)
    {
        if (entry.HasBlock)
        {
            throw entry.Error("unexpected \"{\"");
        }

        var key = entry.Name;
        if (entry.Args.Count == 0)
        {
            if (key == "hostnames")
            {
                map.Table.Hostnames = true;
                return;
            }

            if (key == "volatile")
            {
                map.Volatile = true;
                return;
            }
        }

        if (entry.Args.Count != 1)
        {
            throw entry.Error("invalid number of the map parameters");
        }

        var value = ValueTemplate.Parse(entry.Args[0].Value, entry);
        if (key == "default")
        {
            if (map.Default is not null)
            {
                throw entry.Error("duplicate default map parameter");
            }

            map.Default = value;
            return;
        }

        if (key.Length > 0 && key[0] == '~')
        {
            var pattern = key[1..];
            var caseless = pattern.StartsWith('*');
            if (caseless)
            {
                pattern = pattern[1..];
            }

            var regex = NginxRegex.Compile(pattern, caseless, entry, c.Model);
            c.HttpMain<CaptureDeclarations>().Regexes.Add((regex, entry));
            map.Table.AddRegex(regex, value);
            return;
        }

        if (key.Length > 0 && key[0] == '\\')
        {
            key = key[1..];
        }

        switch (map.Table.Add(key, value))
        {
            case MapKeyResult.InvalidWildcard:
                throw entry.Error($"invalid hostname or wildcard \"{key}\"");
            case MapKeyResult.Conflict:
                // nginx lowers the key in place before it reports the conflict.
                throw entry.Error($"conflicting parameter \"{AsciiLower(key)}\"");
        }
    }

    private static string AsciiLower(string s) => string.Create(s.Length, s, static (span, src) =>
    {
        for (var i = 0; i < src.Length; i++)
        {
            var c = src[i];
            span[i] = c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;
        }
    });

    /// <summary>
    /// Defines each map's variable (a built-in that cannot change is "the duplicate" variable) and compiles
    /// the values; runs after every module registered its variables, and after "set" declared its own.
    /// </summary>
    public override void CompileHttp(SnapshotBuilder snapshot)
    {
        CaptureNames.Check(snapshot);
        var maps = snapshot.HttpMain<MapSettings>()?.Maps;
        if (maps is null || maps.Count == 0)
        {
            return;
        }

        var variables = snapshot.Variables;
        var defined = new List<(MapSpec Spec, MapRuntime Runtime)>(maps.Count);
        foreach (var spec in maps)
        {
            var existing = variables.FindRegistered(spec.Name);
            if (existing is not null && !existing.Changeable)
            {
                snapshot.Error($"the duplicate \"{spec.Name}\" variable", spec.Source);
                continue;
            }

            var runtime = new MapRuntime(spec.Name, spec.Hostnames);
            variables.DefineUser(spec.Name, runtime.Get, cacheable: !spec.Volatile);
            defined.Add((spec, runtime));
        }

        // Values may use any variable, other maps' included, so they are compiled once all are defined.
        foreach (var (spec, runtime) in defined)
        {
            runtime.Source = snapshot.Compile(spec.Value);
            runtime.Default = spec.Default is null ? null : snapshot.Compile(spec.Default);
            runtime.Table = CompileTable(snapshot, spec);
        }
    }

    private static MapTable<CompiledTemplate> CompileTable(SnapshotBuilder snapshot, MapSpec spec) =>
        spec.Table.Convert(snapshot.Compile);
}

/// <summary>A compiled map: evaluated lazily each time its variable is read (and cached unless volatile).</summary>
public sealed class MapRuntime
{
    [ThreadStatic]
    private static int t_depth;

    public MapRuntime(string name, bool hostnames)
    {
        Name = name;
        Hostnames = hostnames;
    }

    public string Name { get; }
    public bool Hostnames { get; }
    public CompiledTemplate Source { get; internal set; } = CompiledTemplate.Empty;
    public CompiledTemplate? Default { get; internal set; }
    public MapTable<CompiledTemplate> Table { get; internal set; } = new(false);

    /// <summary>ngx_http_map_variable.</summary>
    public string? Get(RequestContext r)
    {
        // nginx's ngx_http_variable_depth: a map that (indirectly) reads itself.
        if (t_depth >= 100)
        {
            r.LogError(LogLevel.Error, $"cycle while evaluating variable \"{Name}\"");
            return null;
        }

        t_depth++;
        try
        {
            var key = Source.Evaluate(r);
            if (Hostnames && key.Length > 0 && key[^1] == '.')
            {
                key = key[..^1];
            }

            var value = Table.Find(key, out var match, out var regex);
            if (value is null)
            {
                return Default?.Evaluate(r) ?? string.Empty;
            }

            if (match is not null)
            {
                r.SetCaptures(regex!, match, key);
            }

            return value.Evaluate(r);
        }
        finally
        {
            t_depth--;
        }
    }
}
