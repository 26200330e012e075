using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Static;

/// <summary>
/// The directive table of the static file modules: the core module's file directives, index, autoindex and
/// try_files, with nginx's argument checks and messages.
/// </summary>
internal static class StaticDirectives
{
    public static void Register(DirectiveRegistry r, string module)
    {
        r.AddSettings<StaticSettings>(SettingsScope.Location);
        r.AddSettings<IndexSettings>(SettingsScope.Location);
        r.AddSettings<AutoindexSettings>(SettingsScope.Location);
        r.AddSettings<TryFilesSettings>(SettingsScope.Location);

        const Ctx loc = Ctx.HttpServerLocation;
        void Add(string name, Ctx ctx, Arity arity, DirectiveHandler handler, bool repeatable = false, bool block = false) =>
            r.Add(new DirectiveSpec(name, ctx, arity, handler) { Module = module, Repeatable = repeatable, IsBlock = block });

        // ngx_http_core_module
        Add("root", loc | Ctx.LocationIf, Arity.One, c => Root(c, alias: false), repeatable: true);
        Add("alias", Ctx.Location, Arity.One, c => Root(c, alias: true), repeatable: true);
        Add("types", loc, Arity.None, Types, repeatable: true, block: true);
        Add("types_hash_max_size", loc, Arity.One, c => c.Loc<StaticSettings>().TypesHashMaxSize = c.Number(0));
        Add("types_hash_bucket_size", loc, Arity.One, c => c.Loc<StaticSettings>().TypesHashBucketSize = c.Number(0));
        Add("etag", loc, Arity.Flag, c => c.Loc<StaticSettings>().Etag = c.Flag(0));
        Add("if_modified_since", loc, Arity.One, IfModifiedSinceDirective);
        Add("max_ranges", loc, Arity.One, MaxRanges);
        Add("sendfile", loc | Ctx.LocationIf, Arity.Flag, c => c.Loc<StaticSettings>().Sendfile = c.Flag(0));
        Add("sendfile_max_chunk", loc, Arity.One, c => c.Loc<StaticSettings>().SendfileMaxChunk = c.Size(0));
        Add("tcp_nopush", loc, Arity.Flag, c => c.Loc<StaticSettings>().TcpNopush = c.Flag(0));
        Add("tcp_nodelay", loc, Arity.Flag, c => c.Loc<StaticSettings>().TcpNodelay = c.Flag(0));
        Add("disable_symlinks", loc, Arity.Range(1, 2), DisableSymlinks);
        Add("open_file_cache", loc, Arity.Range(1, 2), OpenFileCache);
        Add("open_file_cache_valid", loc, Arity.One, c => c.Loc<StaticSettings>().OpenFileCacheValid = c.Seconds(0));
        Add("open_file_cache_min_uses", loc, Arity.One, c => c.Loc<StaticSettings>().OpenFileCacheMinUses = c.Number(0));
        Add("open_file_cache_errors", loc, Arity.Flag, c => c.Loc<StaticSettings>().OpenFileCacheErrors = c.Flag(0));
        Add("open_file_cache_events", loc, Arity.Flag, c => c.Flag(0));
        Add("log_not_found", loc, Arity.Flag, c => c.Loc<StaticSettings>().LogNotFound = c.Flag(0));

        // ngx_http_index_module, ngx_http_autoindex_module, ngx_http_try_files_module
        Add("index", loc, Arity.OneOrMore, Index, repeatable: true);
        Add("autoindex", loc, Arity.Flag, c => c.Loc<AutoindexSettings>().Enable = c.Flag(0));
        Add("autoindex_format", loc, Arity.One, AutoindexFormatDirective);
        Add("autoindex_localtime", loc, Arity.Flag, c => c.Loc<AutoindexSettings>().Localtime = c.Flag(0));
        Add("autoindex_exact_size", loc, Arity.Flag, c => c.Loc<AutoindexSettings>().ExactSize = c.Flag(0));
        Add("try_files", Ctx.Server | Ctx.Location, Arity.TwoOrMore, TryFiles);
    }

    /// <summary>ngx_http_core_root: root and alias share one slot; each names the other in its duplicate message.</summary>
    private static void Root(DirectiveCall c, bool alias)
    {
        var settings = c.Loc<StaticSettings>();
        if (settings.Root is { } existing)
        {
            if (existing.IsAlias == alias)
            {
                throw c.Error("is duplicate");
            }

            throw c.Emerg($"\"{c.Name}\" directive is duplicate, \"{(existing.IsAlias ? "alias" : "root")}\" directive was specified earlier");
        }

        var location = c.Scope.Location;
        if (alias && location is { Kind: LocationKind.Named })
        {
            throw c.Emerg("the \"alias\" directive cannot be used inside the named location");
        }

        var value = c[0];
        if (value.Contains("$document_root", StringComparison.Ordinal) || value.Contains("${document_root}", StringComparison.Ordinal))
        {
            throw c.Emerg($"the $document_root variable cannot be used in the \"{c.Name}\" directive");
        }

        if (value.Contains("$realpath_root", StringComparison.Ordinal) || value.Contains("${realpath_root}", StringComparison.Ordinal))
        {
            throw c.Emerg($"the $realpath_root variable cannot be used in the \"{c.Name}\" directive");
        }

        if (!alias && value.Length > 0 && value[^1] == '/')
        {
            value = value[..^1];
        }

        if (!value.StartsWith('$'))
        {
            value = c.Model.Paths.FromPrefix(value);
        }

        var template = ValueTemplate.Parse(value, c.Directive);
        RootKind kind;
        var aliasLength = 0;
        if (!alias)
        {
            kind = RootKind.Root;
        }
        else if (location is not null && location.IsRegex)
        {
            kind = RootKind.AliasRegex;
        }
        else
        {
            kind = RootKind.Alias;
            aliasLength = location?.Pattern.Length ?? 0;
        }

        settings.Root = new RootSpec(kind, value, template.IsConstant && kind != RootKind.AliasRegex ? null : template, aliasLength, c.Directive);
    }

    /// <summary>ngx_http_core_types: the block's body is data ("type ext ...;"), not directives.</summary>
    private static void Types(DirectiveCall c)
    {
        var settings = c.Loc<StaticSettings>();
        var list = settings.Types ??= [];
        foreach (var entry in c.Directive.Block ?? [])
        {
            if (entry.HasBlock)
            {
                throw entry.Error("unexpected \"{\"");
            }

            var type = entry.Name;
            foreach (var arg in entry.Args)
            {
                var ext = arg.Value.ToLowerInvariant();
                var replaced = false;
                for (var i = 0; i < list.Count; i++)
                {
                    if (list[i].Key == ext)
                    {
                        c.Model.Warnings.Add(new Diagnostic(LogLevel.Warn,
                            $"duplicate extension \"{ext}\", content type: \"{type}\", previous content type: \"{list[i].Value}\"",
                            entry.File, entry.Line));
                        list[i] = new KeyValuePair<string, string>(ext, type);
                        replaced = true;
                        break;
                    }
                }

                if (!replaced)
                {
                    list.Add(new KeyValuePair<string, string>(ext, type));
                }
            }
        }
    }

    private static void IfModifiedSinceDirective(DirectiveCall c)
    {
        c.Loc<StaticSettings>().IfModifiedSince = c[0] switch
        {
            "off" => IfModifiedSince.Off,
            "exact" => IfModifiedSince.Exact,
            "before" => IfModifiedSince.Before,
            _ => throw c.Emerg($"invalid value \"{c[0]}\""),
        };
    }

    private static void MaxRanges(DirectiveCall c)
    {
        var n = c.Number(0);
        c.Loc<StaticSettings>().MaxRanges = n > int.MaxValue ? int.MaxValue : n;
    }

    /// <summary>ngx_http_disable_symlinks.</summary>
    private static void DisableSymlinks(DirectiveCall c)
    {
        SymlinkPolicy? policy = null;
        ValueTemplate? from = null;
        foreach (var arg in c.Args)
        {
            var v = arg.Value;
            switch (v)
            {
                case "off":
                    policy = SymlinkPolicy.Off;
                    continue;
                case "if_not_owner":
                    policy = SymlinkPolicy.IfNotOwner;
                    continue;
                case "on":
                    policy = SymlinkPolicy.On;
                    continue;
            }

            if (v.StartsWith("from=", StringComparison.Ordinal))
            {
                from = ValueTemplate.Parse(v[5..], c.Directive);
                continue;
            }

            throw c.Emerg($"invalid parameter \"{v}\"");
        }

        if (policy is null)
        {
            throw c.Emerg($"\"{c.Name}\" must have \"off\", \"on\" or \"if_not_owner\" parameter");
        }

        if (c.Count == 2)
        {
            if (from is null)
            {
                throw c.Emerg($"duplicate parameters \"{c[0]} {c[1]}\"");
            }

            if (policy == SymlinkPolicy.Off)
            {
                throw c.Emerg("\"from=\" cannot be used with \"off\" parameter");
            }
        }

        c.Loc<StaticSettings>().DisableSymlinks = new DisableSymlinksSpec(policy.Value, from);
    }

    /// <summary>ngx_http_core_open_file_cache: max=N [inactive=time] | off.</summary>
    private static void OpenFileCache(DirectiveCall c)
    {
        var settings = c.Loc<StaticSettings>();
        if (settings.OpenFileCacheSet)
        {
            throw c.Error("is duplicate");
        }

        long max = 0;
        long inactive = 60;
        var off = false;
        foreach (var arg in c.Args)
        {
            var v = arg.Value;
            if (v.StartsWith("max=", StringComparison.Ordinal))
            {
                if (!ConfigValues.TryParseNumber(v[4..], out max) || max <= 0 || max > int.MaxValue)
                {
                    throw c.Emerg($"invalid \"open_file_cache\" parameter \"{v}\"");
                }

                continue;
            }

            if (v.StartsWith("inactive=", StringComparison.Ordinal))
            {
                if (!ConfigValues.TryParseSeconds(v[9..], out inactive))
                {
                    throw c.Emerg($"invalid \"open_file_cache\" parameter \"{v}\"");
                }

                continue;
            }

            if (v == "off")
            {
                off = true;
                continue;
            }

            throw c.Emerg($"invalid \"open_file_cache\" parameter \"{v}\"");
        }

        settings.OpenFileCacheSet = true;
        if (off)
        {
            settings.OpenFileCache = null;
            return;
        }

        if (max == 0)
        {
            throw c.Emerg("\"open_file_cache\" must have the \"max\" parameter");
        }

        settings.OpenFileCache = new OpenFileCacheSpec((int)max, inactive, c.Directive);
    }

    /// <summary>ngx_http_index_set_index: several directives at one level add up.</summary>
    private static void Index(DirectiveCall c)
    {
        var settings = c.Loc<IndexSettings>();
        var list = settings.Indices ??= [];
        for (var i = 0; i < c.Count; i++)
        {
            var v = c[i];
            if (v.Length > 0 && v[0] == '/' && i != c.Count - 1)
            {
                c.Warn("only the last index in \"index\" directive should be absolute");
            }

            if (v.Length == 0)
            {
                throw c.Emerg($"index \"{c[0]}\" in \"index\" directive is invalid");
            }

            var template = ValueTemplate.Parse(v, c.Directive);
            list.Add(new IndexSpec(v, template.IsConstant ? null : template));
        }
    }

    private static void AutoindexFormatDirective(DirectiveCall c)
    {
        c.Loc<AutoindexSettings>().Format = c[0] switch
        {
            "html" => AutoindexFormat.Html,
            "json" => AutoindexFormat.Json,
            "jsonp" => AutoindexFormat.Jsonp,
            "xml" => AutoindexFormat.Xml,
            _ => throw c.Emerg($"invalid value \"{c[0]}\""),
        };
    }

    /// <summary>ngx_http_try_files: every parameter but the last is tested; "x/" tests a directory.</summary>
    private static void TryFiles(DirectiveCall c)
    {
        var files = new List<TryFileSpec>(c.Count - 1);
        for (var i = 0; i < c.Count - 1; i++)
        {
            var name = c[i];
            var testDir = false;
            if (name.Length > 0 && name[^1] == '/')
            {
                testDir = true;
                name = name[..^1];
            }

            files.Add(new TryFileSpec(name, ValueTemplate.Parse(name, c.Directive), testDir));
        }

        var last = c[c.Count - 1];
        int? code = null;
        if (last.Length > 0 && last[0] == '=')
        {
            if (!ConfigValues.TryParseNumber(last[1..], out var n) || n > 999)
            {
                throw c.Emerg($"invalid code \"{last}\"");
            }

            code = (int)n;
        }

        c.Loc<TryFilesSettings>().TryFiles = new TryFilesSpec(files, ValueTemplate.Parse(last, c.Directive), code, c.Directive);
    }
}
