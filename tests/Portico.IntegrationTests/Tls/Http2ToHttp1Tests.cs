using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;
using static Portico.IntegrationTests.Tls.TlsTestKit;

namespace Portico.IntegrationTests.Tls;

/// <summary>HTTP/2 clients (over TLS with ALPN h2, and h2c) proxied to an HTTP/1.1 origin with proxy_pass.</summary>
public sealed class Http2ToHttp1Tests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TestCa _ca = new();

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    /// <summary>An HTTP/1.1 origin that reports the request line and headers it got, and streams its answer in chunks.</summary>
    private static Task<KestrelOrigin> ReportingOriginAsync() => KestrelOrigin.StartAsync(async ctx =>
    {
        var body = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(body);
        var h = ctx.Request.Headers;
        var report = $"{ctx.Request.Protocol} {ctx.Request.Method} {ctx.Request.Path}{ctx.Request.QueryString} host={h.Host} cl={h.ContentLength} "
            + $"te={h.TransferEncoding} conn={h.Connection} custom={h["X-Custom"]} body={body.Length}";
        ctx.Response.Headers["X-Report"] = report;
        ctx.Response.Headers.Append("Set-Cookie", "a=1");
        ctx.Response.Headers.Append("Set-Cookie", "b=2");
        ctx.Response.Headers["Keep-Alive"] = "timeout=5";
        ctx.Response.ContentType = "text/plain";
        if (ctx.Request.Query.ContainsKey("big"))
        {
            var chunk = new byte[64 * 1024];
            for (var i = 0; i < 16; i++)
            {
                for (var k = 0; k < chunk.Length; k++)
                {
                    chunk[k] = BigByte((i * chunk.Length) + k);
                }

                await ctx.Response.Body.WriteAsync(chunk);
                await ctx.Response.Body.FlushAsync();
            }

            return;
        }

        await ctx.Response.WriteAsync("part1;");
        await ctx.Response.Body.FlushAsync();
        await ctx.Response.WriteAsync("part2");
    });

    private static byte BigByte(int i) => (byte)(i % 251);

    private static void AssertBig(byte[] big)
    {
        Assert.Equal(16 * 64 * 1024, big.Length);
        for (var i = 0; i < big.Length; i++)
        {
            if (big[i] != BigByte(i))
            {
                Assert.Fail($"byte {i} differs");
            }
        }
    }

    private string Config(string origin)
    {
        var files = TestCa.Write(_dir, "portico", _ca.IssueServer("localhost", false, "localhost"));
        var location = $$"""
                location / {
                    proxy_pass http://{{origin}};
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                }
                location /v10/ {
                    proxy_pass http://{{origin}};
                }
                location /v10-unbuffered/ {
                    proxy_pass http://{{origin}};
                    proxy_buffering off;
                }
            """;
        return $$"""
            server {
                listen 127.0.0.1:{port} ssl;
                http2 on;
                {{CertLines(files)}}
                {{location}}
            }
            server {
                listen 127.0.0.1:PLAIN;
                http2 on;
                {{location}}
            }
            """;
    }

    public static TheoryData<bool> Transports => new() { true, false };

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Http2ClientHttp11Origin(bool tls)
    {
        await using var origin = await ReportingOriginAsync();
        var plain = TestPorts.GetFree();
        await using var portico = await PorticoInstance.StartHttpAsync(Config(origin.Address).Replace("PLAIN", plain.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        var port = tls ? portico.Port : plain;
        using var client = tls
            ? Client(port, version: HttpVersion.Version20)
            : new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var baseUri = tls ? $"https://localhost:{port}" : $"http://127.0.0.1:{port}";

        // A body without a length (HTTP/2 DATA frames): read first, sent to the origin with Content-Length.
        using var request = new HttpRequestMessage(HttpMethod.Post, baseUri + "/echo?q=1")
        {
            Content = new StreamContent(new NonSeekable(Encoding.ASCII.GetBytes("hello body"))),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Add("X-Custom", "c1");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(request.Content.Headers.ContentLength);
        Assert.Equal($"HTTP/1.1 POST /echo?q=1 host={origin.Address} cl=10 te= conn= custom=c1 body=10", response.Headers.GetValues("X-Report").Single());
        Assert.Equal(["a=1", "b=2"], response.Headers.GetValues("Set-Cookie"));
        Assert.False(response.Headers.Contains("Keep-Alive"));
        Assert.Equal("part1;part2", await response.Content.ReadAsStringAsync());

        // nginx's default proxy_http_version 1.0: the origin sees HTTP/1.0 and "Connection: close".
        using var v10 = await client.GetAsync(baseUri + "/v10/a");
        Assert.Equal(HttpVersion.Version20, v10.Version);
        Assert.Equal($"HTTP/1.0 GET /v10/a host={origin.Address} cl= te= conn=close custom= body=0", v10.Headers.GetValues("X-Report").Single());

        // A large chunked answer arrives whole over HTTP/2; so does one that ends when the origin closes
        // (HTTP/1.0), read from the origin straight into the HTTP/2 stream's output memory.
        AssertBig(await client.GetByteArrayAsync(baseUri + "/big?big=1"));
        AssertBig(await client.GetByteArrayAsync(baseUri + "/v10/big?big=1"));
        AssertBig(await client.GetByteArrayAsync(baseUri + "/v10-unbuffered/big?big=1"));
    }

    /// <summary>A request body stream without a length, so HttpClient sends no Content-Length.</summary>
    private sealed class NonSeekable(byte[] data) : Stream
    {
        private readonly MemoryStream _inner = new(data);

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
