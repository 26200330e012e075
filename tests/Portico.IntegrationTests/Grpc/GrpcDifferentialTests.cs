using Grpc.Core;
using Portico.IntegrationTests.Grpc.Proto;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using static Portico.IntegrationTests.Grpc.GrpcTestKit;

namespace Portico.IntegrationTests.Grpc;

/// <summary>nginx and Portico with one grpc_pass configuration in front of one gRPC origin: what the origin and the client see.</summary>
public sealed class GrpcDifferentialTests
{
    private const string Http = """
        server {
            listen 127.0.0.1:{port} http2;
            location / {
                grpc_pass grpc://ORIGIN;
                grpc_set_header X-From $remote_addr;
                grpc_hide_header x-secret;
            }
            location /portico.test.Echo/Collect { grpc_pass grpc://127.0.0.1:DEAD; }
        }
        """;

    private sealed record Seen(EchoReply Reply, string? OriginHeader, string? Secret, string? Trailer, string Streamed, string? StreamTrailer,
        StatusCode FailedCode, string FailedDetail, StatusCode DeadCode, string DeadDetail, StatusCode BrokenCode, string BrokenFirst);

    private static async Task<Seen> CallAsync(int port, GrpcOrigin origin)
    {
        var (client, channel) = Client(port);
        using var _ = channel;
        var call = client.UnaryAsync(new EchoRequest { Text = "same" }, new Metadata { { "x-custom", "c" } });
        var reply = await call;
        var headers = await call.ResponseHeadersAsync;

        using var stream = client.Count(new CountRequest { Count = 3 });
        var streamed = new List<string>();
        await foreach (var item in stream.ResponseStream.ReadAllAsync())
        {
            streamed.Add(item.Text + "@" + item.Authority);
        }

        var failed = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest { Text = "err", FailCode = (int)StatusCode.PermissionDenied }));
        using var collect = client.Collect();
        var dead = await Assert.ThrowsAsync<RpcException>(async () => await collect.ResponseAsync);

        // The origin breaks the connection after the first message.
        using var broken = client.Count(new CountRequest { Count = 3, Paced = true, AbortAfter = 1 });
        Assert.True(await broken.ResponseStream.MoveNext(CancellationToken.None));
        var first = broken.ResponseStream.Current.Text;
        await origin.State.Pace.Writer.WriteAsync(true);
        var brokenError = await Assert.ThrowsAsync<RpcException>(() => broken.ResponseStream.MoveNext(CancellationToken.None));
        return new Seen(reply, headers.GetValue("x-origin-header"), headers.GetValue("x-secret"), call.GetTrailers().GetValue("x-origin-trailer"),
            string.Join(" ", streamed), stream.GetTrailers().GetValue("x-origin-trailer"), failed.StatusCode, failed.Status.Detail, dead.StatusCode, dead.Status.Detail,
            brokenError.StatusCode, first);
    }

    [Fact]
    public async Task NginxAndPorticoPassTheSameCalls()
    {
        await using var origin = await GrpcOrigin.StartAsync();
        var http = Http.Replace("ORIGIN", origin.Address, StringComparison.Ordinal)
            .Replace("DEAD", TestPorts.GetFree().ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        await using var nginx = await NginxProcess.StartHttpAsync(http);
        await using var portico = await PorticoInstance.StartHttpAsync(http);

        var expected = await CallAsync(nginx.Port, origin);
        var actual = await CallAsync(portico.Port, origin);

        // Each proxy has its own connection to the origin; everything else must match.
        Assert.Equal(new EchoReply(expected.Reply) { Connection = "" }, new EchoReply(actual.Reply) { Connection = "" });
        Assert.Equal(origin.Address, actual.Reply.Authority);
        Assert.Equal("127.0.0.1", actual.Reply.Headers["x-from"]);
        Assert.Equal(expected with { Reply = actual.Reply }, actual);
        Assert.Equal(StatusCode.Unavailable, actual.DeadCode);
        Assert.Equal("Bad gRPC response. HTTP status code: 502", actual.DeadDetail);
        Assert.Null(actual.Secret);
        Assert.Equal(StatusCode.Internal, actual.BrokenCode);
        Assert.Equal($"n0@{origin.Address} n1@{origin.Address} n2@{origin.Address}", actual.Streamed);
    }
}
