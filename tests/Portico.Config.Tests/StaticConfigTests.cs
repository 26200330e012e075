using Portico.Config.Syntax;
using Portico.Static;

namespace Portico.Config.Tests;

/// <summary>Golden tests of the static file directives: nginx's [emerg] messages, warnings and merge rules.</summary>
public class StaticConfigTests
{
    private const string F = ConfigHarness.Main;

    private static string Err(string httpBody) => ConfigHarness.FirstError(ConfigHarness.Http(httpBody));

    [Theory]
    [InlineData("server { location / { root /a; alias /b; } }", "\"alias\" directive is duplicate, \"root\" directive was specified earlier")]
    [InlineData("server { location / { alias /a; root /b; } }", "\"root\" directive is duplicate, \"alias\" directive was specified earlier")]
    [InlineData("server { location / { root /a; root /b; } }", "\"root\" directive is duplicate")]
    [InlineData("server { location / { alias /a; alias /b; } }", "\"alias\" directive is duplicate")]
    [InlineData("server { location @x { alias /a; } }", "the \"alias\" directive cannot be used inside the named location")]
    [InlineData("root $document_root/x;", "the $document_root variable cannot be used in the \"root\" directive")]
    [InlineData("root ${realpath_root};", "the $realpath_root variable cannot be used in the \"root\" directive")]
    [InlineData("server { location / { alias $document_root; } }", "the $document_root variable cannot be used in the \"alias\" directive")]
    [InlineData("alias /x;", "\"alias\" directive is not allowed here")]
    [InlineData("index \"\";", "index \"\" in \"index\" directive is invalid")]
    [InlineData("server { try_files a =abc; }", "invalid code \"=abc\"")]
    [InlineData("server { try_files a =1000; }", "invalid code \"=1000\"")]
    [InlineData("server { try_files a; }", "invalid number of arguments in \"try_files\" directive")]
    [InlineData("server { location / { try_files a b; try_files c d; } }", "\"try_files\" directive is duplicate")]
    [InlineData("try_files a b;", "\"try_files\" directive is not allowed here")]
    [InlineData("autoindex_format foo;", "invalid value \"foo\"")]
    [InlineData("autoindex maybe;", "invalid value \"maybe\" in \"autoindex\" directive, it must be \"on\" or \"off\"")]
    [InlineData("if_modified_since sometimes;", "invalid value \"sometimes\"")]
    [InlineData("max_ranges -1;", "\"max_ranges\" directive invalid number")]
    [InlineData("types { text/html html { } }", "unexpected \"{\"")]
    [InlineData("types foo { }", "invalid number of arguments in \"types\" directive")]
    [InlineData("disable_symlinks from=/x;", "\"disable_symlinks\" must have \"off\", \"on\" or \"if_not_owner\" parameter")]
    [InlineData("disable_symlinks off from=/x;", "\"from=\" cannot be used with \"off\" parameter")]
    [InlineData("disable_symlinks on foo;", "invalid parameter \"foo\"")]
    [InlineData("disable_symlinks on from=/a from=/b;", "invalid number of arguments in \"disable_symlinks\" directive")]
    [InlineData("disable_symlinks on off;", "duplicate parameters \"on off\"")]
    [InlineData("open_file_cache max=0;", "invalid \"open_file_cache\" parameter \"max=0\"")]
    [InlineData("open_file_cache inactive=10s;", "\"open_file_cache\" must have the \"max\" parameter")]
    [InlineData("open_file_cache max=10 inactive=xx;", "invalid \"open_file_cache\" parameter \"inactive=xx\"")]
    [InlineData("open_file_cache foo;", "invalid \"open_file_cache\" parameter \"foo\"")]
    [InlineData("open_file_cache off; open_file_cache max=1;", "\"open_file_cache\" directive is duplicate")]
    [InlineData("open_file_cache_valid 10x;", "\"open_file_cache_valid\" directive invalid value")]
    [InlineData("open_file_cache_min_uses x;", "\"open_file_cache_min_uses\" directive invalid number")]
    [InlineData("sendfile_max_chunk 1x;", "\"sendfile_max_chunk\" directive invalid value")]
    [InlineData("types_hash_max_size x;", "\"types_hash_max_size\" directive invalid number")]
    [InlineData("etag maybe;", "invalid value \"maybe\" in \"etag\" directive, it must be \"on\" or \"off\"")]
    [InlineData("sendfile on; sendfile off;", "\"sendfile\" directive is duplicate")]
    [InlineData("autoindex_localtime yes;", "invalid value \"yes\" in \"autoindex_localtime\" directive, it must be \"on\" or \"off\"")]
    [InlineData("autoindex_exact_size 1;", "invalid value \"1\" in \"autoindex_exact_size\" directive, it must be \"on\" or \"off\"")]
    [InlineData("log_not_found no;", "invalid value \"no\" in \"log_not_found\" directive, it must be \"on\" or \"off\"")]
    [InlineData("open_file_cache_errors x;", "invalid value \"x\" in \"open_file_cache_errors\" directive, it must be \"on\" or \"off\"")]
    [InlineData("tcp_nopush x;", "invalid value \"x\" in \"tcp_nopush\" directive, it must be \"on\" or \"off\"")]
    [InlineData("types_hash_bucket_size x;", "\"types_hash_bucket_size\" directive invalid number")]
    [InlineData("server { location / { index a; root /x; root /y; } }", "\"root\" directive is duplicate")]
    [InlineData("server { location ~ ^/d/(.*)$ { alias /a/$1; alias /b/$1; } }", "\"alias\" directive is duplicate")]
    public void ReportsNginxMessage(string httpBody, string message)
    {
        // Each message checked against nginx 1.22's "nginx -t" on the same http block.
        Assert.Equal("[emerg] " + message + " in " + F + ":3", Err(httpBody));
    }

    [Fact]
    public void OnlyTheLastIndexShouldBeAbsolute()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("index /a b;"));
        Assert.True(result.Success);
        Assert.Contains(result.Warnings, w => w.ToString() == "[warn] only the last index in \"index\" directive should be absolute in " + F + ":3");
    }

    [Fact]
    public void DuplicateExtensionWarnsAndTheLaterTypeWins()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("types { text/html html; text/plain html; }"));
        Assert.True(result.Success);
        Assert.Contains(result.Warnings, w => w.ToString() ==
            "[warn] duplicate extension \"html\", content type: \"text/plain\", previous content type: \"text/html\" in " + F + ":3");
        var types = result.Model!.Http!.Settings.Get<StaticSettings>().Types!;
        Assert.Equal("text/plain", Assert.Single(types).Value);
    }

    [Fact]
    public void DebiansMimeTypesFileIsIncludedAsData()
    {
        const string path = "/etc/nginx/mime.types";
        Assert.True(File.Exists(path), "nginx-common provides /etc/nginx/mime.types; test.sh installs nginx");
        var result = ConfigHarness.Load(ConfigHarness.Http("include /etc/nginx/mime.types;\ndefault_type application/octet-stream;"),
            (path, File.ReadAllText(path)));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        var types = new MimeTypes(result.Model!.Http!.Settings.Get<StaticSettings>().Types!);
        Assert.Equal("text/css", types.Find("css"));
        Assert.Equal("application/vnd.openxmlformats-officedocument.wordprocessingml.document", types.Find("docx"));
        Assert.Equal(MimeTypes.Default.Count, types.Count);
    }

    [Fact]
    public void IncludeInsideTypesBlock()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("types {\n include extra.types;\n text/x-a a;\n}"),
            ("extra.types", "text/x-b b bb;\n"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        var types = result.Model!.Http!.Settings.Get<StaticSettings>().Types!;
        Assert.Equal(["b", "bb", "a"], types.Select(t => t.Key));
    }

    [Fact]
    public void RootAndAliasMergeAsOneValue()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http(
            "root /srv/www/;\nserver {\n location /i/ { alias /data/img/;\n  location /i/x/ { } }\n location ~ ^/dl/(.+)$ { alias /data/$1; }\n location / { }\n}"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        var server = result.Model!.Http!.Servers[0];
        var alias = server.Locations[0].Settings.Get<StaticSettings>().Root!;
        Assert.Equal(RootKind.Alias, alias.Kind);
        Assert.Equal("/data/img/", alias.Value);
        Assert.Equal(3, alias.AliasLength);
        Assert.Same(alias, server.Locations[0].Children[0].Settings.Get<StaticSettings>().Root);
        Assert.Equal(RootKind.AliasRegex, server.Locations[1].Settings.Get<StaticSettings>().Root!.Kind);
        var root = server.Locations[2].Settings.Get<StaticSettings>().Root!;
        Assert.Equal(RootKind.Root, root.Kind);
        Assert.Equal("/srv/www", root.Value);
    }

    [Fact]
    public void RelativeRootIsUnderThePrefix()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("root html;"));
        Assert.Equal(ConfigHarness.Prefix + "html", result.Model!.Http!.Settings.Get<StaticSettings>().Root!.Value);
    }

    [Fact]
    public void TryFilesIsNotInheritedAndIndexIsReplacedPerLevel()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http(
            "index a.html;\nserver {\n try_files $uri =404;\n index b.html c.html;\n location / { }\n}"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        var server = result.Model!.Http!.Servers[0];
        Assert.NotNull(server.Settings.Get<TryFilesSettings>().TryFiles);
        Assert.Null(server.Locations[0].Settings.Get<TryFilesSettings>().TryFiles);
        Assert.Equal(["b.html", "c.html"], server.Locations[0].Settings.Get<IndexSettings>().Effective.Select(i => i.Name));
    }

    [Fact]
    public void DefaultsAreNginxs()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("server { location / { } }"));
        var loc = result.Model!.Http!.Servers[0].Locations[0].Settings;
        var s = loc.Get<StaticSettings>();
        Assert.True(s.Etag);
        Assert.Equal(IfModifiedSince.Exact, s.IfModifiedSince);
        Assert.Equal(int.MaxValue, s.MaxRanges);
        Assert.True(s.LogNotFound);
        Assert.Equal(SymlinkPolicy.Off, s.DisableSymlinks!.Policy);
        Assert.Null(s.OpenFileCache);
        Assert.Equal(60, s.OpenFileCacheValid);
        Assert.Equal(["index.html"], loc.Get<IndexSettings>().Effective.Select(i => i.Name));
        var a = loc.Get<AutoindexSettings>();
        Assert.False(a.Enable);
        Assert.Equal(AutoindexFormat.Html, a.Format);
        Assert.True(a.ExactSize);
        Assert.False(a.Localtime);
    }

    [Fact]
    public void AcceptsDebiansDefaultHttpBlock()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http(
            "sendfile on;\ntcp_nopush on;\ntcp_nodelay on;\ntypes_hash_max_size 2048;\ndefault_type application/octet-stream;\n" +
            "open_file_cache max=1000 inactive=20s;\nopen_file_cache_valid 30s;\nopen_file_cache_min_uses 2;\nopen_file_cache_errors on;\n" +
            "disable_symlinks if_not_owner from=$document_root;\nserver { listen 8080; root /var/www/html; index index.html index.htm index.nginx-debian.html;\n" +
            " location / { try_files $uri $uri/ =404; } }"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        Assert.DoesNotContain(result.Warnings, w => w.Level <= LogLevel.Warn);
    }
}
