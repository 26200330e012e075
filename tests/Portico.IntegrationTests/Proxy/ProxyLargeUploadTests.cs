using System.Net;
using Portico.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Portico.IntegrationTests.Proxy;

/// <summary>Tests that measure the process's memory run alone: no other test allocates meanwhile.</summary>
[CollectionDefinition("memory", DisableParallelization = true)]
public sealed class MemoryCollection
{
}

/// <summary>A 1 GiB upload through the proxy with request buffering on (temp file) and off (streamed): memory stays bounded.</summary>
[Collection("memory")]
public sealed class ProxyLargeUploadTests
{
    private const long OneGiB = 1024L * 1024 * 1024;
    private readonly ITestOutputHelper _output;

    public ProxyLargeUploadTests(ITestOutputHelper output)
    {
        _output = output;
    }

    /// <summary>A body generated on the fly: never held in memory by the test either.</summary>
    private sealed class GeneratedStream(long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            for (var i = 0; i < n; i++)
            {
                buffer[offset + i] = (byte)((_position + i) % 251);
            }

            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Theory]
    [InlineData("proxy_request_buffering on;")]
    [InlineData("proxy_request_buffering off;")]
    public async Task OneGiBUpload_MemoryStaysBounded(string directive)
    {
        long received = 0;
        var valid = true;
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is null)
            {
                return;
            }

            // Count and check the bytes without keeping them.
            var length = long.Parse(c.Request!.Header("Content-Length")!, System.Globalization.CultureInfo.InvariantCulture);
            received = await c.DrainAsync(length, (piece, at) =>
            {
                var span = piece.Span;
                for (var i = 0; i < span.Length; i++)
                {
                    if (span[i] != (byte)((at + i) % 251))
                    {
                        valid = false;
                    }
                }
            });

            await c.RespondAsync(200, $"received {received}");
        });
        await using var portico = await PorticoInstance.StartHttpAsync(ProxyTest.Server($$"""
            client_max_body_size 0;
            client_body_temp_path {prefix}/cbt;
            location / { proxy_pass http://{{origin.Address}}; {{directive}} }
            """));

        // Live memory (after a full collection), sampled while the body flows.
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        var peak = baseline;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true));
                await Task.Delay(250);
            }
        });

        using var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(5) };
        using var content = new StreamContent(new GeneratedStream(OneGiB), 256 * 1024);
        content.Headers.ContentLength = OneGiB;
        using var response = await client.PostAsync($"http://127.0.0.1:{portico.Port}/upload", content);
        var text = await response.Content.ReadAsStringAsync();
        sampling.Cancel();
        await sampler;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"received {OneGiB}", text);
        Assert.True(valid, "the origin received different bytes");
        var growth = peak - baseline;
        _output.WriteLine($"{directive} peak live managed memory growth: {growth / (1024 * 1024)} MiB");
        Assert.True(growth < 64L * 1024 * 1024, $"live managed memory grew by {growth / (1024 * 1024)} MiB during a 1 GiB upload");
        Assert.Empty(Directory.Exists(portico.Dir.File("cbt")) ? Directory.GetFiles(portico.Dir.File("cbt"), "*", SearchOption.AllDirectories) : []);
    }
}
