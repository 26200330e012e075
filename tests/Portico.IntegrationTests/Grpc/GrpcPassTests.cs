using Grpc.Core;
using Portico.IntegrationTests.Grpc.Proto;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using Portico.IntegrationTests.Tls;
using static Portico.IntegrationTests.Grpc.GrpcTestKit;

namespace Portico.IntegrationTests.Grpc;

/// <summary>grpc_pass with a Kestrel gRPC origin: unary and streaming calls over h2c and TLS, headers, trailers and TLS to the origin.</summary>
public sealed class GrpcPassTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TestCa _ca = new();

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    private static string H2c(string location) => $$"""
        server {
            listen 127.0.0.1:{port};
            http2 on;
            {{location}}
        }
        """;

    private string Tls(string location)
    {
        var files = TestCa.Write(_dir, "portico", _ca.IssueServer("localhost", false, "localhost"));
        return $$"""
            server {
                listen 127.0.0.1:{port} ssl;
                http2 on;
                {{TlsTestKit.CertLines(files)}}
                {{location}}
            }
            """;
    }

    [Fact]
    public async Task Unary_OverH2c_ReachesTheOriginAsNginxSendsIt()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($"location / {{ grpc_pass grpc://{origin.Address}; }}"));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        var call = client.UnaryAsync(new EchoRequest { Text = "hi" }, new Metadata { { "x-custom", "c1" } }, Deadline);
        var reply = await call;
        Assert.Equal("echo:hi", reply.Text);
        // :authority is grpc_pass's host:port; :path the client's; HTTP/2 without TLS; TE: trailers passed on.
        Assert.Equal(origin.Address, reply.Authority);
        Assert.Equal("/portico.test.Echo/Unary", reply.Path);
        Assert.Equal("http", reply.Scheme);
        Assert.Equal("HTTP/2", reply.Protocol);
        Assert.Equal("trailers", reply.Headers["te"]);
        Assert.Equal("application/grpc", reply.Headers["content-type"]);
        Assert.Equal("c1", reply.Headers["x-custom"]);
        Assert.StartsWith("grpc-dotnet/", reply.Headers["user-agent"], StringComparison.Ordinal);

        var headers = await call.ResponseHeadersAsync;
        Assert.Equal("head", headers.GetValue("x-origin-header"));
        Assert.Equal("tail", call.GetTrailers().GetValue("x-origin-trailer"));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task ServerStreaming_OverH2c_DeliversEachMessageAsTheOriginSendsIt()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($"location / {{ grpc_pass grpc://{origin.Address}; }}"));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        // The origin sends message n+1 only after the test received message n: nothing is buffered on the way.
        using var call = client.Count(new CountRequest { Count = 3, Paced = true }, deadline: Deadline);
        var seen = new List<string>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            seen.Add(call.ResponseStream.Current.Text);
            await origin.State.Pace.Writer.WriteAsync(true);
        }

        Assert.Equal(["n0", "n1", "n2"], seen);
        Assert.Equal("streamed", call.GetTrailers().GetValue("x-origin-trailer"));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task UnaryAndStreaming_OverTlsToPortico()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(Tls($"location / {{ grpc_pass grpc://{origin.Address}; }}"));
        var (client, channel) = Client(portico.Port, tls: true);
        using var _ = channel;

        var reply = await client.UnaryAsync(new EchoRequest { Text = "secure" }, deadline: Deadline);
        Assert.Equal("echo:secure", reply.Text);
        Assert.Equal("http", reply.Scheme);

        using var call = client.Count(new CountRequest { Count = 4 }, deadline: Deadline);
        var texts = new List<string>();
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            texts.Add(item.Text);
        }

        Assert.Equal(["n0", "n1", "n2", "n3"], texts);
        Assert.Equal("streamed", call.GetTrailers().GetValue("x-origin-trailer"));
    }

    [Fact]
    public async Task ClientStreaming_TheRequestBodyIsStreamedToTheOrigin()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($"location / {{ grpc_pass grpc://{origin.Address}; }}"));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        using var call = client.Collect(deadline: Deadline);
        foreach (var text in new[] { "a", "b", "c" })
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = text });
        }

        await call.RequestStream.CompleteAsync();
        var reply = await call;
        Assert.Equal("a,b,c", reply.Text);
        Assert.Equal(3, reply.Index);
    }

    [Fact]
    public async Task GrpcsToATlsOrigin_AlpnH2_VerifiedWithSni()
    {
        var caFile = _dir.Write("ca.pem", _ca.CertificatePem);
        using var usable = GrpcOrigin.Usable(_ca.IssueServer("backend.test", false, "backend.test"));
        await using var origin = await GrpcOrigin.StartAsync(usable);
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($$"""
            location / {
                grpc_pass grpcs://{{origin.Address}};
                grpc_ssl_verify on;
                grpc_ssl_trusted_certificate {{caFile}};
                grpc_ssl_name backend.test;
                grpc_ssl_server_name on;
            }
            """));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        var reply = await client.UnaryAsync(new EchoRequest { Text = "tls" }, deadline: Deadline);
        Assert.Equal("echo:tls", reply.Text);
        Assert.Equal("https", reply.Scheme);
        Assert.Equal("HTTP/2", reply.Protocol);
        Assert.Equal(["backend.test"], origin.State.ServerNames);
    }

    [Fact]
    public async Task GrpcSslVerify_RejectsAnUntrustedOrigin_Unavailable()
    {
        var other = new TestCa("Other CA");
        using var __ = other;
        var caFile = _dir.Write("ca.pem", _ca.CertificatePem);
        using var usable = GrpcOrigin.Usable(other.IssueServer("backend.test", false, "backend.test"));
        await using var origin = await GrpcOrigin.StartAsync(usable);
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($$"""
            location / {
                grpc_pass grpcs://{{origin.Address}};
                grpc_ssl_verify on;
                grpc_ssl_trusted_certificate {{caFile}};
                grpc_ssl_name backend.test;
            }
            """));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        var e = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoRequest { Text = "x" }, deadline: Deadline));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Equal("Bad gRPC response. HTTP status code: 502", e.Status.Detail);
        Assert.Contains("upstream SSL certificate verify error: (20:unable to get local issuer certificate) while SSL handshaking to upstream",
            await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        Assert.Equal(0, origin.State.Calls);
    }

    [Fact]
    public async Task SetHeader_Host_HideAndPassHeaders()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($$"""
            grpc_set_header X-From portico;
            location / {
                grpc_pass grpc://{{origin.Address}};
                grpc_set_header Host example.test;
                grpc_set_header X-From $remote_addr;
                grpc_set_header X-Custom "";
                grpc_hide_header x-secret;
            }
            location /portico.test.Echo/Count {
                grpc_pass grpc://{{origin.Address}};
            }
            """));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        var call = client.UnaryAsync(new EchoRequest { Text = "h" }, new Metadata { { "x-custom", "dropped" } }, Deadline);
        var reply = await call;
        Assert.Equal("example.test", reply.Authority);
        Assert.Equal("127.0.0.1", reply.Headers["x-from"]);
        Assert.False(reply.Headers.ContainsKey("x-custom"));
        var headers = await call.ResponseHeadersAsync;
        Assert.Null(headers.Get("x-secret"));
        Assert.Equal("head", headers.GetValue("x-origin-header"));

        // The http-level grpc_set_header applies where the location sets none.
        using var stream = client.Count(new CountRequest { Count = 1 }, deadline: Deadline);
        Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal("portico", stream.ResponseStream.Current.Headers["x-from"]);
        Assert.Equal(origin.Address, stream.ResponseStream.Current.Authority);
    }

    [Fact]
    public async Task OriginStatus_IsPassedInTheTrailers()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($"location / {{ grpc_pass grpc://{origin.Address}; }}"));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest { Text = "nothing", FailCode = (int)StatusCode.NotFound }, deadline: Deadline));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Equal("origin says nothing", e.Status.Detail);
    }

    [Fact]
    public async Task GrpcPassWithVariables()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($$"""
            location / {
                set $backend {{origin.Address}};
                grpc_pass grpc://$backend;
            }
            location /bad/ {
                grpc_pass grpc://$host/x;
            }
            """));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;
        var reply = await client.UnaryAsync(new EchoRequest { Text = "v" }, deadline: Deadline);
        Assert.Equal("echo:v", reply.Text);
        Assert.Equal(origin.Address, reply.Authority);

        // A URL that ngx_parse_url refuses: nginx logs it and answers 500.
        using var h2 = new HttpClient { DefaultRequestVersion = System.Net.HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var response = await h2.GetAsync($"http://127.0.0.1:{portico.Port}/bad/");
        Assert.Equal(System.Net.HttpStatusCode.InternalServerError, response.StatusCode);
        var log = await portico.ReadErrorLogAsync();
        Assert.True(log.Contains("invalid host in upstream \"127.0.0.1/x\", client: 127.0.0.1", StringComparison.Ordinal), log);
    }

    [Fact]
    public async Task UnixSocketOrigin()
    {
        var socket = _dir.File("grpc.sock");
        await using var origin = await GrpcOrigin.StartAsync(unixSocket: socket);
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($"location / {{ grpc_pass unix:{socket}; }}"));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;
        var reply = await client.UnaryAsync(new EchoRequest { Text = "u" }, deadline: Deadline);
        Assert.Equal("echo:u", reply.Text);
        Assert.Equal("localhost", reply.Authority);
    }

    [Fact]
    public async Task UpstreamBlock_WithAndWithoutKeepalive()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        await using var portico = await PorticoInstance.StartHttpAsync($$"""
            upstream grpc_plain { server {{origin.Address}}; }
            upstream grpc_kept { server {{origin.Address}}; keepalive 4; }
            server {
                listen 127.0.0.1:{port};
                http2 on;
                location /portico.test.Echo/Unary { grpc_pass grpc://grpc_plain; }
                location /portico.test.Echo/Count { grpc_pass grpc://grpc_kept; }
            }
            """);
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        // The upstream's name is the :authority; without keepalive every call has its own connection.
        var a = await client.UnaryAsync(new EchoRequest { Text = "a" }, deadline: Deadline);
        var b = await client.UnaryAsync(new EchoRequest { Text = "b" }, deadline: Deadline);
        Assert.Equal("grpc_plain", a.Authority);
        Assert.NotEqual(a.Connection, b.Connection);

        // With keepalive the HTTP/2 connection to the origin is used again.
        async Task<string> CountConnection()
        {
            using var call = client.Count(new CountRequest { Count = 1 }, deadline: Deadline);
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            var connection = call.ResponseStream.Current.Connection;
            Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None));
            return connection;
        }

        Assert.Equal(await CountConnection(), await CountConnection());
    }
}
