using System.Net;
using System.Text;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Static;

/// <summary>A 100 MiB file: whole, single and multipart ranges, 416, and revalidation with ETag / If-Modified-Since.</summary>
public class RangesTests
{
    private const long Size = 100L * 1024 * 1024;
    private const long Middle = 50L * 1024 * 1024;
    private static readonly byte[] Head = Encoding.ASCII.GetBytes("HEAD-OF-THE-FILE");
    private static readonly byte[] Mid = Encoding.ASCII.GetBytes("MIDDLE-OF-FILE!!");
    private static readonly byte[] Tail = Encoding.ASCII.GetBytes("END-OF-THE-FILE.");

    private static async Task<PorticoInstance> StartAsync()
    {
        var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/html;
                location /one/ { alias {prefix}/html/; max_ranges 1; }
                location /none/ { alias {prefix}/html/; max_ranges 0; }
            }
            """);
        Directory.CreateDirectory(p.Dir.File("html"));
        using (var fs = new FileStream(p.Dir.File("html/big.iso"), FileMode.Create, FileAccess.Write))
        {
            fs.SetLength(Size); // sparse
            fs.Write(Head);
            fs.Position = Middle;
            fs.Write(Mid);
            fs.Position = Size - Tail.Length;
            fs.Write(Tail);
        }

        return p;
    }

    private static HttpRequestMessage Get(string uri, string? range = null, HttpMethod? method = null)
    {
        var req = new HttpRequestMessage(method ?? HttpMethod.Get, uri);
        if (range is not null)
        {
            req.Headers.TryAddWithoutValidation("Range", range);
        }

        return req;
    }

    [Fact]
    public async Task WholeFileStreamsEveryByte()
    {
        await using var p = await StartAsync();
        using var resp = await p.Client.SendAsync(Get("/big.iso"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal(Size, resp.Content.Headers.ContentLength);
        Assert.Equal("application/octet-stream", resp.Content.Headers.ContentType!.ToString());
        await using var body = await resp.Content.ReadAsStreamAsync();
        var buffer = new byte[1 << 16];
        long offset = 0;
        var headOk = false;
        var midOk = false;
        var tailOk = false;
        while (true)
        {
            var n = await body.ReadAsync(buffer);
            if (n == 0)
            {
                break;
            }

            headOk |= Check(buffer, n, offset, 0, Head);
            midOk |= Check(buffer, n, offset, Middle, Mid);
            tailOk |= Check(buffer, n, offset, Size - Tail.Length, Tail);
            offset += n;
        }

        Assert.Equal(Size, offset);
        Assert.True(headOk && midOk && tailOk, "markers at the start, middle and end");
    }

    private static bool Check(byte[] buffer, int n, long offset, long at, byte[] marker) =>
        at >= offset && at + marker.Length <= offset + n && buffer.AsSpan((int)(at - offset), marker.Length).SequenceEqual(marker);

    [Fact]
    public async Task SingleRanges()
    {
        await using var p = await StartAsync();
        using var mid = await p.Client.SendAsync(Get("/big.iso", $"bytes={Middle}-{Middle + 15}"));
        Assert.Equal(HttpStatusCode.PartialContent, mid.StatusCode);
        Assert.Equal($"bytes {Middle}-{Middle + 15}/{Size}", mid.Content.Headers.GetValues("Content-Range").Single());
        Assert.Equal(Mid, await mid.Content.ReadAsByteArrayAsync());

        using var suffix = await p.Client.SendAsync(Get("/big.iso", "bytes=-16"));
        Assert.Equal($"bytes {Size - 16}-{Size - 1}/{Size}", suffix.Content.Headers.GetValues("Content-Range").Single());
        Assert.Equal(Tail, await suffix.Content.ReadAsByteArrayAsync());

        using var open = await p.Client.SendAsync(Get("/big.iso", $"bytes={Size - 16}-"));
        Assert.Equal(Tail, await open.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task MultipartByteranges()
    {
        await using var p = await StartAsync();
        using var resp = await p.Client.SendAsync(Get("/big.iso", $"bytes=0-15,{Middle}-{Middle + 15},-16"));
        Assert.Equal(HttpStatusCode.PartialContent, resp.StatusCode);
        var type = resp.Content.Headers.ContentType!;
        Assert.Equal("multipart/byteranges", type.MediaType);
        var boundary = type.Parameters.Single(x => x.Name == "boundary").Value!;
        Assert.Matches("^[0-9]{20}$", boundary);
        var body = Encoding.Latin1.GetString(await resp.Content.ReadAsByteArrayAsync());
        Assert.Equal(resp.Content.Headers.ContentLength, body.Length);
        var expected =
            $"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-15/{Size}\r\n\r\nHEAD-OF-THE-FILE" +
            $"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {Middle}-{Middle + 15}/{Size}\r\n\r\nMIDDLE-OF-FILE!!" +
            $"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {Size - 16}-{Size - 1}/{Size}\r\n\r\nEND-OF-THE-FILE." +
            $"\r\n--{boundary}--\r\n";
        Assert.Equal(expected, body);
    }

    [Fact]
    public async Task UnsatisfiableRangeIs416WithContentRange()
    {
        await using var p = await StartAsync();
        using var resp = await p.Client.SendAsync(Get("/big.iso", $"bytes={Size}-"));
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, resp.StatusCode);
        Assert.Equal($"bytes */{Size}", resp.Content.Headers.GetValues("Content-Range").Single());
        Assert.Contains("<title>416 Requested Range Not Satisfiable</title>", await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task MaxRangesLimitsAndDisables()
    {
        await using var p = await StartAsync();
        using var one = await p.Client.SendAsync(Get("/one/big.iso", "bytes=0-1,5-6", HttpMethod.Head));
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal(Size, one.Content.Headers.ContentLength);
        using var single = await p.Client.SendAsync(Get("/one/big.iso", "bytes=0-1", HttpMethod.Head));
        Assert.Equal(HttpStatusCode.PartialContent, single.StatusCode);
        using var none = await p.Client.SendAsync(Get("/none/big.iso", "bytes=0-1", HttpMethod.Head));
        Assert.Equal(HttpStatusCode.OK, none.StatusCode);
        Assert.False(none.Headers.Contains("Accept-Ranges"));
    }

    [Fact]
    public async Task RevalidationWithEtagAndLastModified()
    {
        await using var p = await StartAsync();
        using var head = await p.Client.SendAsync(Get("/big.iso", null, HttpMethod.Head));
        var etag = head.Headers.ETag!.ToString();
        var lastModified = head.Content.Headers.GetValues("Last-Modified").Single();
        Assert.Matches("^\"[0-9a-f]+-6400000\"$", etag);

        var inm = Get("/big.iso");
        inm.Headers.TryAddWithoutValidation("If-None-Match", etag);
        using var notModified = await p.Client.SendAsync(inm);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Equal(etag, notModified.Headers.ETag!.ToString());
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());

        var ims = Get("/big.iso");
        ims.Headers.TryAddWithoutValidation("If-Modified-Since", lastModified);
        using var notModified2 = await p.Client.SendAsync(ims);
        Assert.Equal(HttpStatusCode.NotModified, notModified2.StatusCode);

        var ifRange = Get("/big.iso", "bytes=-16");
        ifRange.Headers.TryAddWithoutValidation("If-Range", etag);
        using var partial = await p.Client.SendAsync(ifRange);
        Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);

        var stale = Get("/big.iso", "bytes=-16", HttpMethod.Head);
        stale.Headers.TryAddWithoutValidation("If-Range", "\"stale-etag\"");
        using var whole = await p.Client.SendAsync(stale);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.Equal(Size, whole.Content.Headers.ContentLength);

        var ifMatch = Get("/big.iso", null, HttpMethod.Head);
        ifMatch.Headers.TryAddWithoutValidation("If-Match", "\"other\"");
        using var failed = await p.Client.SendAsync(ifMatch);
        Assert.Equal(HttpStatusCode.PreconditionFailed, failed.StatusCode);
    }
}
