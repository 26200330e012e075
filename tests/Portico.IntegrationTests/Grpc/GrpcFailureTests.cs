using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Portico.IntegrationTests.Grpc.Proto;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using Portico.Upstreams;
using static Portico.IntegrationTests.Grpc.GrpcTestKit;

namespace Portico.IntegrationTests.Grpc;

/// <summary>
/// What a gRPC client sees when the origin fails: nginx answers with its HTTP 502 or 504 page (no grpc-status),
/// which gRPC clients map to UNAVAILABLE; error_page can answer with a gRPC status instead.
/// </summary>
public sealed class GrpcFailureTests
{
    private static string H2c(string body, string extra = "") => $$"""
        log_format up '$status $uri $upstream_addr $upstream_status';
        {{extra}}
        server {
            listen 127.0.0.1:{port};
            http2 on;
            access_log logs/access.log up;
            {{body}}
        }
        """;

    [Fact]
    public async Task OriginDown_502Page_ClientSeesUnavailable()
    {
        var dead = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($"location / {{ grpc_pass grpc://127.0.0.1:{dead}; }}"));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        var e = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoRequest { Text = "x" }, deadline: Deadline));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Equal("Bad gRPC response. HTTP status code: 502", e.Status.Detail);

        var log = await portico.ReadErrorLogAsync();
        Assert.Contains($"[error] ", log, StringComparison.Ordinal);
        Assert.Contains($"connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , "
            + $"request: \"POST /portico.test.Echo/Unary HTTP/2.0\", upstream: \"grpc://127.0.0.1:{dead}\", host: \"127.0.0.1:{portico.Port}\"",
            log, StringComparison.Ordinal);

        // On the wire: nginx's 502 page, as nginx sends it to any client.
        using var h2 = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{portico.Port}/portico.test.Echo/Unary")
        {
            Content = new ByteArrayContent([0, 0, 0, 0, 0]),
        };
        request.Content.Headers.ContentType = new("application/grpc");
        request.Headers.TE.ParseAdd("trailers");
        var response = await h2.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<center><h1>502 Bad Gateway</h1></center>", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(response.TrailingHeaders.Contains("grpc-status"));

        var access = portico.Dir.File("logs/access.log");
        await ProxyTest.WaitUntilAsync(() => File.Exists(access) && File.ReadAllLines(access).Length == 2, "two access log lines");
        Assert.All(File.ReadAllLines(access), line => Assert.Equal($"502 /portico.test.Echo/Unary 127.0.0.1:{dead} 502", line));
    }

    [Fact]
    public async Task OriginSilent_ReadTimeout_504Page_ClientSeesUnavailable()
    {
        // A listener that never answers: the connection opens, no response head comes.
        var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        try
        {
            var port = ((IPEndPoint)silent.LocalEndpoint).Port;
            await using var portico = await PorticoInstance.StartHttpAsync(H2c($$"""
                location / { grpc_pass grpc://127.0.0.1:{{port}}; grpc_read_timeout 300ms; }
                """));
            var (client, channel) = Client(portico.Port);
            using var _ = channel;

            var e = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoRequest { Text = "x" }, deadline: Deadline));
            Assert.Equal(StatusCode.Unavailable, e.StatusCode);
            Assert.Equal("Bad gRPC response. HTTP status code: 504", e.Status.Detail);
            Assert.Contains($"upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: , "
                + $"request: \"POST /portico.test.Echo/Unary HTTP/2.0\", upstream: \"grpc://127.0.0.1:{port}\"",
                await portico.ReadErrorLogAsync(), StringComparison.Ordinal);
        }
        finally
        {
            silent.Stop();
        }
    }

    [Fact]
    public async Task OriginBreaksMidStream_TheClientStreamIsReset()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($"location / {{ grpc_pass grpc://{origin.Address}; }}"));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        using var call = client.Count(new CountRequest { Count = 3, Paced = true, AbortAfter = 1 }, deadline: Deadline);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal("n0", call.ResponseStream.Current.Text);
        await origin.State.Pace.Writer.WriteAsync(true);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
        // nginx resets the HTTP/2 stream with INTERNAL_ERROR, which gRPC clients report as INTERNAL.
        Assert.Equal(StatusCode.Internal, e.StatusCode);
        Assert.Contains("INTERNAL_ERROR", e.Status.Detail, StringComparison.Ordinal);
        await ProxyTest.WaitUntilAsync(async () => (await portico.ReadErrorLogAsync()).Contains("while reading upstream, client: 127.0.0.1", StringComparison.Ordinal), "the error line");
        var access = portico.Dir.File("logs/access.log");
        await ProxyTest.WaitUntilAsync(() => File.Exists(access) && File.ReadAllLines(access).Length == 1, "the access log line");
        Assert.Equal($"200 /portico.test.Echo/Count {origin.Address} 200", File.ReadAllLines(access).Single());
    }

    [Fact]
    public async Task ErrorPage_AnswersWithAGrpcStatusInstead()
    {
        // The usual nginx idiom: error_page turns the 502 into a gRPC status carried in the headers of an empty response.
        var dead = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($$"""
            location / {
                grpc_pass grpc://127.0.0.1:{{dead}};
                error_page 502 = /error502grpc;
            }
            location = /error502grpc {
                internal;
                default_type application/grpc;
                add_header grpc-status 14;
                add_header grpc-message "unavailable";
                return 204;
            }
            """));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        var e = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoRequest { Text = "x" }, deadline: Deadline));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Equal("unavailable", e.Status.Detail);
    }

    [Fact]
    public async Task NextUpstream_TriesTheNextAddress_UnlessTriesOrOffSayNo()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        // max_fails=0: the refusing address is never taken out, so round robin alternates strictly.
        var pair = $"upstream pair {{ server 127.0.0.2:{origin.Port} max_fails=0; server 127.0.0.1:{origin.Port} max_fails=0; }}";
        await using var portico = await PorticoInstance.StartHttpAsync(H2c("""
            location /portico.test.Echo/Unary { grpc_pass grpc://pair; }
            location /portico.test.Echo/Count { grpc_pass grpc://pair; grpc_next_upstream_tries 1; }
            location /portico.test.Echo/Collect { grpc_pass grpc://pair; grpc_next_upstream off; }
            """, pair));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        // The first address (127.0.0.2) refuses: error is in grpc_next_upstream's default, the second answers.
        var reply = await client.UnaryAsync(new EchoRequest { Text = "retry" }, deadline: Deadline);
        Assert.Equal("echo:retry", reply.Text);

        // One try only: the group's round robin starts this request at the second address, the next at the first.
        using (var ok = client.Count(new CountRequest { Count = 1 }, deadline: Deadline))
        {
            Assert.True(await ok.ResponseStream.MoveNext(CancellationToken.None));
        }

        using (var failing = client.Count(new CountRequest { Count = 1 }, deadline: Deadline))
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => failing.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal("Bad gRPC response. HTTP status code: 502", e.Status.Detail);
        }

        // This one starts at the second address; the next one at the first again, where off makes the failure final.
        Assert.Equal("echo:direct", (await client.UnaryAsync(new EchoRequest { Text = "direct" }, deadline: Deadline)).Text);
        using var collect = client.Collect(deadline: Deadline);
        var error = await Assert.ThrowsAsync<RpcException>(async () => await collect.ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);

        // Each line is written when its call ends; streaming calls may end in another order than they began.
        var log = portico.Dir.File("logs/access.log");
        await ProxyTest.WaitUntilAsync(() => File.Exists(log) && File.ReadAllLines(log).Length == 5, "five access log lines");
        var port = origin.Port;
        string[] expected =
        [
            $"200 /portico.test.Echo/Unary 127.0.0.2:{port}, 127.0.0.1:{port} 502, 200",
            $"200 /portico.test.Echo/Count 127.0.0.1:{port} 200",
            $"502 /portico.test.Echo/Count 127.0.0.2:{port} 502",
            $"200 /portico.test.Echo/Unary 127.0.0.1:{port} 200",
            $"502 /portico.test.Echo/Collect 127.0.0.2:{port} 502",
        ];
        Assert.Equal(expected.Order(StringComparer.Ordinal), File.ReadAllLines(log).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task InterceptErrors_HandsTheOriginStatusToErrorPage()
    {
        // An HTTP/2 origin that answers 503 (not a gRPC server).
        await using var origin = await KestrelOrigin.StartAsync(ctx =>
        {
            ctx.Response.StatusCode = 503;
            return ctx.Response.WriteAsync("busy");
        }, new KestrelOriginOptions { Protocols = HttpProtocols.Http2 });
        await using var portico = await PorticoInstance.StartHttpAsync(H2c($$"""
            location /portico.test.Echo/Unary {
                grpc_pass grpc://{{origin.Address}};
                grpc_intercept_errors on;
                error_page 503 = @grpc503;
            }
            location /portico.test.Echo/Count {
                grpc_pass grpc://{{origin.Address}};
                error_page 503 = @grpc503;
            }
            location @grpc503 {
                default_type application/grpc;
                add_header grpc-status 8;
                add_header grpc-message "try later";
                return 204;
            }
            """));
        var (client, channel) = Client(portico.Port);
        using var _ = channel;

        var e = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoRequest { Text = "x" }, deadline: Deadline));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal("try later", e.Status.Detail);

        // Without grpc_intercept_errors the origin's 503 reaches the client.
        using var call = client.Count(new CountRequest { Count = 1 }, deadline: Deadline);
        var passed = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.Unavailable, passed.StatusCode);
        Assert.Equal("Bad gRPC response. HTTP status code: 503", passed.Status.Detail);
    }
}
