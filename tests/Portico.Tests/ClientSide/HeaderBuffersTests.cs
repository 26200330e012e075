using Portico.ClientSide;

namespace Portico.Tests.ClientSide;

/// <summary>nginx's header buffer layout (outcomes checked against nginx 1.22 with the same heads).</summary>
public class HeaderBuffersTests
{
    /// <summary>Header lines "X-Hn: vvv" whose wire length (CRLF included) is given.</summary>
    private static List<KeyValuePair<string, string>> Headers(params int[] lengths)
    {
        var list = new List<KeyValuePair<string, string>> { new("Host", "h") };
        for (var i = 0; i < lengths.Length; i++)
        {
            list.Add(new("X-H" + i, new string('v', lengths[i] - 8)));
        }

        return list;
    }

    [Theory]
    // client_header_buffer_size 8k; large_client_header_buffers 2 1k: what fits in the first buffer needs no large one.
    [InlineData(4000, new int[0], null)]
    [InlineData(8190, new int[0], null)]
    [InlineData(8191, new int[0], 414)]
    [InlineData(14, new[] { 5000 }, null)]
    [InlineData(14, new[] { 7000, 900 }, null)]
    [InlineData(14, new[] { 7000, 2000 }, 494)]
    public void LargeFirstBuffer(int requestLine, int[] headers, int? status)
    {
        Assert.Equal(status, HeaderBuffers.LayOut(requestLine, Headers(headers), 8192, 2, 1024)?.Status);
    }

    [Fact]
    public void ALineThatOutgrowsTheLastBufferIsShownAsFarAsItWasRead()
    {
        // 1k first buffer, 2 large buffers of 1k: the fourth 900-byte line finds no buffer; 124 of its bytes were read.
        var refusal = HeaderBuffers.LayOut(14, Headers(900, 900, 900, 900), 1024, 2, 1024)!.Value;
        Assert.Equal(494, refusal.Status);
        Assert.StartsWith("client sent too long header line: \"X-H3: ", refusal.Message, StringComparison.Ordinal);
        Assert.EndsWith("...\" while reading client request headers", refusal.Message, StringComparison.Ordinal);
        Assert.Equal("client sent too long header line: \"".Length + 124 + "...\" while reading client request headers".Length, refusal.Message.Length);
    }

    [Fact]
    public void TheDefaultsTakeAnyUsualRequest()
    {
        var (number, size) = HeaderBuffers.DefaultLargeBuffers;
        Assert.Null(HeaderBuffers.LayOut(200, Headers(100, 300, 4000, 8000, 600), HeaderBuffers.DefaultHeaderBufferSize, number, size));
        Assert.Equal(414, HeaderBuffers.LayOut(8191, Headers(), HeaderBuffers.DefaultHeaderBufferSize, number, size)?.Status);
    }
}
