using Portico.Compilation;

namespace Portico.Tests.Compilation;

public class SnapshotCompilerTests
{
    [Fact]
    public void UnknownVariableIsAnEmergWithPosition()
    {
        var e = Assert.Throws<SnapshotCompileException>(() => TestSnapshots.Http("server {\n listen 8080;\n return 200 \"$nosuchvar\";\n}"));
        Assert.Equal("[emerg] unknown \"nosuchvar\" variable in /etc/portico/portico.conf:6", e.Errors[0].ToString());
    }

    [Fact]
    public void PrefixVariablesAreCreatedOnDemand()
    {
        var snapshot = TestSnapshots.Http("server { listen 8080; return 200 \"$http_x_custom $arg_q $cookie_sid\"; }");
        Assert.NotNull(snapshot.Variables.Find("http_x_custom"));
        Assert.NotNull(snapshot.Variables.Find("arg_q"));
    }

    [Theory]
    [InlineData("listen 8443 ssl;", "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in /etc/portico/portico.conf:4")]
    [InlineData("listen 8443 quic;", "the \"quic\" parameter of the \"listen\" directive requires HTTP/3, which needs libmsquic")]
    public void ListenParametersTheModulesServeAreChecked(string listen, string message)
    {
        var e = Assert.Throws<SnapshotCompileException>(() => TestSnapshots.Http($"server {{ {listen} return 200; }}"));
        Assert.StartsWith("[emerg] " + message, e.Errors[0].ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void EveryLocationOfEveryServerIsCompiled()
    {
        var snapshot = TestSnapshots.Http("""
            server { listen 8080; location /a/ { location /a/b/ { return 200; } } location @n { return 204; } }
            server { listen 8081; }
            """);
        Assert.Equal(2, snapshot.Servers.Count);
        var a = snapshot.Servers[0].Locations.Find("/a/b/c", null).Location!;
        Assert.Equal("/a/b/", a.Name);
        // The client limits (checked right after the location is found) and the location's own script.
        Assert.Single(a.Rewrite, h => h is Portico.Rewrite.ScriptHandler);
        Assert.NotNull(snapshot.Servers[0].Named["@n"]);
        Assert.Equal(2, snapshot.Listeners.Count);
    }
}
