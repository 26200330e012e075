using System.Text;
using Portico.Upstreams.Transport.Http1;

namespace Portico.Tests.Upstreams.Http1;

public sealed class Http1ChunkedDecoderTests
{
    /// <summary>Decodes <paramref name="text"/> given in pieces of <paramref name="piece"/> bytes, as reads deliver it.</summary>
    private static (string Data, ChunkStep Last, int Left) Decode(string text, int piece)
    {
        var input = Encoding.Latin1.GetBytes(text);
        var decoder = new Http1ChunkedDecoder();
        var data = new StringBuilder();
        var start = 0;
        var available = Math.Min(piece, input.Length);
        while (true)
        {
            var step = decoder.Next(input.AsSpan(start, available - start), out var consumed, out var offset, out var length);
            if (step == ChunkStep.Data)
            {
                data.Append(Encoding.Latin1.GetString(input, start + offset, length));
                start += consumed;
                continue;
            }

            start += consumed;
            if (step != ChunkStep.NeedMore || available == input.Length)
            {
                return (data.ToString(), step, input.Length - start);
            }

            available = Math.Min(input.Length, available + piece);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(1000)]
    public void DecodesInAnyPieces(int piece)
    {
        var (data, last, left) = Decode("5\r\nhello\r\n6;name=value\r\n world\r\nA \r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n", piece);
        Assert.Equal("hello world0123456789", data);
        Assert.Equal(ChunkStep.Trailers, last);
        Assert.Equal("X-Sum: 1\r\n\r\n".Length, left);
    }

    [Theory]
    [InlineData("5\nhello\r\n0\r\n\r\n")]
    [InlineData("5\r\nhello\n0\r\n\r\n")]
    [InlineData("5\r\nhelloX\r\n0\r\n\r\n")]
    [InlineData("g\r\n")]
    [InlineData("\r\n")]
    [InlineData("-5\r\nhello\r\n")]
    [InlineData("5 x\u0001\r\nhello\r\n")]
    [InlineData("0x5\r\nhello\r\n")]
    [InlineData("fffffffffffffffffff\r\n")]
    public void RejectsBrokenFraming(string text) => Assert.Equal(ChunkStep.Invalid, Decode(text, 3).Last);

    [Fact]
    public void AnEndlessSizeLineIsRejected() =>
        Assert.Equal(ChunkStep.Invalid, Decode("5;" + new string('x', Http1ChunkedDecoder.MaxLine + 10), 100000).Last);

    [Fact]
    public void ATruncatedBodyNeedsMore() => Assert.Equal(ChunkStep.NeedMore, Decode("5\r\nhel", 100).Last);

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "ok", 5L)]
    [InlineData("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", "ok", 2L)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nA: b\r\n\r\n", "ok", 2L)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", "truncated-body", 3L)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nhel", "ok-extra-data", 1L)]
    [InlineData("HTTP/1.0 200 OK\r\n\r\nuntil close", "ok-until-close", 11L)]
    [InlineData("HTTP/1.1 204 No Content\r\n\r\n", "ok", 0L)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nA b\r\n\r\n", "invalid-trailer", 2L)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid-chunked", 0L)]
    public void ReadsWholeResponses(string text, string verdict, long length)
    {
        var result = Http1ResponseReader.Read(Encoding.Latin1.GetBytes(text));
        Assert.Equal(verdict, result.Verdict);
        Assert.Equal(length, result.BodyLength);
    }

    [Fact]
    public void AHeadBeyondTheLimitIsTooBig()
    {
        var text = "HTTP/1.1 200 OK\r\nX-Big: " + new string('a', 5000) + "\r\n\r\n";
        Assert.Equal("too-big", Http1ResponseReader.Read(Encoding.Latin1.GetBytes(text), maxHead: 4096).Verdict);
        Assert.Equal("ok-until-close", Http1ResponseReader.Read(Encoding.Latin1.GetBytes(text), maxHead: 8192).Verdict);
    }
}
