using Portico.Grpc;

namespace Portico.Tests.Grpc;

/// <summary>grpc_pass URLs as ngx_http_grpc_pass and ngx_http_grpc_eval read them.</summary>
public class GrpcPassSpecTests
{
    [Theory]
    [InlineData("127.0.0.1:9000", "grpc://", false, "127.0.0.1", 9000, "127.0.0.1:9000")]
    [InlineData("grpc://backend:50051", "grpc://", false, "backend", 50051, "backend:50051")]
    [InlineData("GRPCS://backend:443", "grpcs://", true, "backend", 443, "backend:443")]
    [InlineData("grpc://[::1]:9000", "grpc://", false, "[::1]", 9000, "[::1]:9000")]
    [InlineData("grpc://backend", "grpc://", false, "backend", 0, "backend")]
    public void ParsesAtLoadTime(string text, string schema, bool tls, string host, int port, string authority)
    {
        var url = GrpcPassSpec.Parse(text, out var error, runtime: false);
        Assert.Null(error);
        Assert.NotNull(url);
        Assert.Equal(schema, url.Schema);
        Assert.Equal(tls, url.Https);
        Assert.Equal(host, url.Host);
        Assert.Equal(port, url.Port);
        Assert.Equal(port == 0, url.NoPort);
        Assert.Equal(authority, url.HostHeader);
        Assert.Null(url.Uri);
    }

    [Fact]
    public void UnixSocketsHaveLocalhostAsAuthority()
    {
        var url = GrpcPassSpec.Parse("grpcs://unix:/run/app.sock", out _, runtime: false)!;
        Assert.Equal("/run/app.sock", url.UnixPath);
        Assert.Equal("localhost", url.HostHeader);
        Assert.True(url.Https);
    }

    [Theory]
    [InlineData("grpc://a:1/x", "invalid host in upstream \"a:1/x\"")]
    [InlineData("grpc://a:1?x", "invalid host in upstream \"a:1?x\"")]
    [InlineData("grpc://a:x", "invalid port in upstream \"a:x\"")]
    [InlineData("grpc://a:65536", "invalid port in upstream \"a:65536\"")]
    [InlineData("grpc://:80", "no host in upstream \":80\"")]
    [InlineData("grpc://[::1]x", "invalid host in upstream \"[::1]x\"")]
    [InlineData("unix:", "no path in the unix domain socket in upstream \"unix:\"")]
    public void RefusesWithNginxWords(string text, string expected)
    {
        Assert.Null(GrpcPassSpec.Parse(text, out var error, runtime: false));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void AtRunTimeTheSchemeIsKeptAsWrittenAndABareSchemeIsAHost()
    {
        Assert.Equal("GrPc://", GrpcPassSpec.Parse("GrPc://a:1", out _, runtime: true)!.Schema);
        // "grpc://" alone is not a scheme at run time (nginx wants more than the prefix): the text is parsed as a host.
        Assert.Null(GrpcPassSpec.Parse("grpc://", out var error, runtime: true));
        Assert.Equal("invalid host in upstream \"grpc://\"", error);
    }
}
