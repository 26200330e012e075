using Portico.Compilation;
using Portico.Config.Model;
using Portico.Logging;

namespace Portico.Config.Tests;

/// <summary>Golden tests for ngx_http_log_module's directives: nginx's [emerg] text and position, and the merged model.</summary>
public class LogDirectiveTests
{
    private const string F = ConfigHarness.Main;

    [Theory]
    [InlineData("log_format combined '$remote_addr';", "[emerg] duplicate \"log_format\" name \"combined\" in " + F + ":3")]
    [InlineData("log_format a x;\nlog_format a y;", "[emerg] duplicate \"log_format\" name \"a\" in " + F + ":4")]
    [InlineData("log_format a escape=foo '$uri';", "[emerg] unknown log format escaping \"foo\" in " + F + ":3")]
    [InlineData("log_format a 'x $';", "[emerg] invalid parameter \"$\" in " + F + ":3")]
    [InlineData("log_format a '${uri';", "[emerg] the closing bracket in \"uri\" variable is missing in " + F + ":3")]
    [InlineData("log_format a;", "[emerg] invalid number of arguments in \"log_format\" directive in " + F + ":3")]
    [InlineData("server { log_format a x; }", "[emerg] \"log_format\" directive is not allowed here in " + F + ":3")]
    [InlineData("access_log logs/a.log nope;", "[emerg] unknown log format \"nope\" in " + F + ":3")]
    [InlineData("access_log logs/a.log b;\nlog_format b x;", "[emerg] unknown log format \"b\" in " + F + ":3")]
    [InlineData("access_log off x;", "[emerg] invalid parameter \"x\" in " + F + ":3")]
    [InlineData("access_log logs/a.log combined buffer=0;", "[emerg] invalid buffer size \"0\" in " + F + ":3")]
    [InlineData("access_log logs/a.log combined buffer=x;", "[emerg] invalid buffer size \"x\" in " + F + ":3")]
    [InlineData("access_log logs/a.log combined flush=1s;", "[emerg] no buffer is defined for access_log \"logs/a.log\" in " + F + ":3")]
    [InlineData("access_log logs/a.log combined buffer=1k flush=0;", "[emerg] invalid flush time \"0\" in " + F + ":3")]
    [InlineData("access_log logs/a.log combined gzip=0;", "[emerg] invalid compression level \"0\" in " + F + ":3")]
    [InlineData("access_log logs/a.log combined gzip=10;", "[emerg] invalid compression level \"10\" in " + F + ":3")]
    [InlineData("access_log logs/a.log combined foo;", "[emerg] invalid parameter \"foo\" in " + F + ":3")]
    [InlineData("access_log logs/$host.log combined buffer=1k;", "[emerg] buffered logs cannot have variables in name in " + F + ":3")]
    [InlineData("access_log logs/a.log combined buffer=1k;\naccess_log logs/a.log combined buffer=2k;", "[emerg] access_log \"logs/a.log\" already defined with conflicting parameters in " + F + ":4")]
    [InlineData("access_log syslog:server=127.0.0.1;", "[emerg] \"syslog:\" access logs are not supported by Portico; log to a file in " + F + ":3")]
    [InlineData("open_log_file_cache max=0;", "[emerg] \"open_log_file_cache\" must have \"max\" parameter in " + F + ":3")]
    [InlineData("open_log_file_cache inactive=1s;", "[emerg] \"open_log_file_cache\" must have \"max\" parameter in " + F + ":3")]
    [InlineData("open_log_file_cache max=10 foo=1;", "[emerg] invalid \"open_log_file_cache\" parameter \"foo=1\" in " + F + ":3")]
    [InlineData("open_log_file_cache max=x;", "[emerg] invalid \"open_log_file_cache\" parameter \"max=x\" in " + F + ":3")]
    [InlineData("open_log_file_cache off;\nopen_log_file_cache off;", "[emerg] \"open_log_file_cache\" directive is duplicate in " + F + ":4")]
    [InlineData("log_subrequest maybe;", "[emerg] invalid value \"maybe\" in \"log_subrequest\" directive, it must be \"on\" or \"off\" in " + F + ":3")]
    public void ReportsNginxMessage(string httpBody, string expected)
    {
        Assert.Equal(expected, ConfigHarness.FirstError(ConfigHarness.Http(httpBody)));
    }

    [Theory]
    [InlineData("log_format a x;\nlog_format A y;\naccess_log logs/a.log a;")]
    [InlineData("log_format a escape=json;")]
    [InlineData("access_log logs/a.log COMBINED;")]
    [InlineData("access_log logs/a.log combined buffer=1k;\naccess_log logs/a.log combined;")]
    [InlineData("access_log logs/a.log combined buffer=32k gzip flush=5m if=$arg_log;")]
    [InlineData("open_log_file_cache max=10 inactive=20s min_uses=2 valid=1m;")]
    [InlineData("open_log_file_cache max=10 off;")]
    public void AcceptsWhatNginxAccepts(string httpBody)
    {
        var result = ConfigHarness.Load(ConfigHarness.Http(httpBody));
        Assert.True(result.Success, string.Join("\n", result.Errors));
    }

    [Fact]
    public void CaseInsensitiveLookupFindsTheFirstFormat()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("log_format a x;\nlog_format A y;\naccess_log logs/a.log A;"));
        var logs = result.Model!.Http!.Settings.Get<AccessLogSettings>().Logs!;
        Assert.Equal("a", logs[0].Format.Name);
        Assert.Equal("/etc/portico/logs/a.log", logs[0].Path);
    }

    [Fact]
    public void ArraysAreReplacedPerLevelAndOffWinsAtItsLevel()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("""
            access_log logs/http.log;
            access_log logs/http2.log combined;
            server {
                location /inherit { }
                location /own { access_log logs/own.log; }
                location /off { access_log logs/x.log; access_log off; }
                location /off2 { access_log off; location /off2/in { } }
            }
            server {
                access_log off;
                location / { access_log logs/back.log; }
            }
            """));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        var servers = result.Model!.Http!.Servers;
        AccessLogSettings At(int server, int location) => servers[server].Locations[location].Settings.Get<AccessLogSettings>();

        Assert.Equal(["logs/http.log", "logs/http2.log"], At(0, 0).Logs!.Select(l => l.PathSource));
        Assert.Equal(["logs/own.log"], At(0, 1).Logs!.Select(l => l.PathSource));
        Assert.True(At(0, 2).Off);
        Assert.True(At(0, 3).Off);
        Assert.True(servers[0].Locations[3].Children[0].Settings.Get<AccessLogSettings>().Off);
        Assert.True(servers[1].Settings.Get<AccessLogSettings>().Off);
        Assert.False(At(1, 0).Off);
        Assert.Equal(["logs/back.log"], At(1, 0).Logs!.Select(l => l.PathSource));
    }

    [Fact]
    public void NothingConfiguredMeansTheDefaultLog()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("server { location / { } }"));
        var s = result.Model!.Http!.Servers[0].Locations[0].Settings.Get<AccessLogSettings>();
        Assert.Null(s.Logs);
        Assert.False(s.Off);
    }

    [Theory]
    [InlineData("log_format a '$nope';", "[emerg] unknown \"nope\" variable in " + F + ":4")]
    [InlineData("access_log logs/a.log combined if=$nope;", "[emerg] unknown \"nope\" variable in " + F + ":4")]
    [InlineData("access_log logs/$nope.log;", "[emerg] unknown \"nope\" variable in " + F + ":4")]
    public async Task UnknownVariablesFailTheCompilation(string httpBody, string expected)
    {
        var errors = await CompileErrorsAsync("error_log stderr;\n" + ConfigHarness.Http(httpBody + "\nserver { listen 127.0.0.1:1; }"));
        Assert.Equal(expected, errors[0].ToString());
    }

    [Fact]
    public async Task AMissingLogDirectoryFailsTheCompilation()
    {
        var errors = await CompileErrorsAsync("error_log stderr;\n" + ConfigHarness.Http("access_log /nonexistent-portico-dir/a.log;\nserver { listen 127.0.0.1:1; }"));
        Assert.Equal("[emerg] open() \"/nonexistent-portico-dir/a.log\" failed (2: No such file or directory)", errors[0].ToString());
    }

    private static async Task<IReadOnlyList<Syntax.Diagnostic>> CompileErrorsAsync(string config)
    {
        var load = ConfigHarness.Load(config);
        Assert.True(load.Success, string.Join("\n", load.Errors));
        var modules = ModuleCatalog.CreateModules();
        await using var writer = new LogWriter(start: false);
        var services = new HostServices(writer, TimeProvider.System, new NoServices());
        var e = Assert.Throws<SnapshotCompileException>(() => new SnapshotCompiler(modules, services).Compile(load, 1));
        return e.Errors;
    }

    private sealed class NoServices : IServiceProvider
    {
        public object? GetService(Type serviceType) => null;
    }
}
