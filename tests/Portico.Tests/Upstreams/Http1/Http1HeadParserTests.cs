using System.Text;
using Portico.Upstreams.Transport.Http1;

namespace Portico.Tests.Upstreams.Http1;

public sealed class Http1HeadParserTests
{
    private static byte[] B(string s) => Encoding.Latin1.GetBytes(s);

    private static Http1HeadParser Complete(string text, Http1ValueCache? cache = null)
    {
        var parser = new Http1HeadParser(trailers: false, cache);
        var data = B(text);
        Assert.Equal(HeadParse.Complete, parser.Parse(data));
        Assert.True(parser.Finish(data.AsSpan(0, parser.Length)), parser.Error);
        return parser;
    }

    private static string? Rejected(string text)
    {
        var parser = new Http1HeadParser();
        var data = B(text);
        var step = parser.Parse(data);
        if (step == HeadParse.Complete)
        {
            Assert.False(parser.Finish(data.AsSpan(0, parser.Length)), "the head was accepted");
        }
        else
        {
            Assert.Equal(HeadParse.Invalid, step);
        }

        return parser.Error;
    }

    [Fact]
    public void ParsesStatusHeadersAndLength()
    {
        var p = Complete("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type:text/plain  \r\nContent-Length: 5\r\nX-Empty:\r\n\r\nhello");
        Assert.Equal(200, p.Status);
        Assert.Equal("OK", p.Reason);
        Assert.Equal(1, p.Minor);
        Assert.Equal(5, p.ContentLength);
        Assert.False(p.Chunked);
        Assert.False(p.ConnectionClose);
        Assert.Equal(B("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type:text/plain  \r\nContent-Length: 5\r\nX-Empty:\r\n\r\n").Length, p.Length);
        Assert.Equal(
            [new("Server", "nginx"), new("Content-Type", "text/plain"), new("Content-Length", "5"), new KeyValuePair<string, string>("X-Empty", "")],
            p.Headers);
    }

    [Fact]
    public void ParsesByteByByteAsReadsDeliverIt()
    {
        var text = B("HTTP/1.0 404 Not Found\r\nX-A: 1\r\nx-b: two words \r\n\r\n");
        var parser = new Http1HeadParser();
        for (var i = 1; i < text.Length; i++)
        {
            Assert.Equal(HeadParse.Incomplete, parser.Parse(text.AsSpan(0, i)));
        }

        Assert.Equal(HeadParse.Complete, parser.Parse(text));
        Assert.True(parser.Finish(text));
        Assert.Equal(404, parser.Status);
        Assert.Equal("Not Found", parser.Reason);
        Assert.True(parser.ConnectionClose);
        Assert.Equal([new("X-A", "1"), new KeyValuePair<string, string>("x-b", "two words")], parser.Headers);
    }

    [Theory]
    [InlineData("HTTP/1.1 200\r\n\r\n", 200)]
    [InlineData("HTTP/1.1 599 Whatever it says\r\n\r\n", 599)]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 101)]
    public void AcceptsStatusLines(string text, int status) => Assert.Equal(status, Complete(text).Status);

    [Theory]
    [InlineData("HTTP/1.1 2000 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 20 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 20x OK\r\n\r\n")]
    [InlineData("HTTP/1.1  200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 099 Low\r\n\r\n")]
    [InlineData("HTTP/2.0 200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\n\r\n")]
    [InlineData("HTTP/1.1 200 O\u0001K\r\n\r\n")]
    [InlineData("HTTP/1.1 403.1 Forbidden\r\n\r\n")]
    [InlineData("http/1.1 200 OK\r\n\r\n")]
    public void RejectsStatusLines(string text) => Assert.Equal("upstream sent no valid HTTP/1.0 header", Rejected(text));

    [Fact]
    public void SomethingThatIsNotHttpIsRejectedAtOnce()
    {
        var parser = new Http1HeadParser();
        Assert.Equal(HeadParse.Invalid, parser.Parse(B("<html>")));
        Assert.Equal("upstream sent no valid HTTP/1.0 header", parser.Error);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "upstream sent invalid header: \"Bad\\x20...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nName : v\r\n\r\n", "upstream sent invalid header: \"Name\\x20...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "upstream sent invalid header: \"NoColon\\x0d...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: 1\n\r\n", "upstream sent invalid header: \"X-A: 1\\x0a...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: 1\r\n\n", "upstream sent invalid header: \"\\x0a...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: a\u0001b\r\n\r\n", "upstream sent invalid header: \"X-A: a\\x01...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", "upstream sent invalid header: \"X-A: a\\x0d...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", "upstream sent invalid header: \"X-A: a\\x00...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: a\u007fb\r\n\r\n", "upstream sent invalid header: \"X-A: a\\x7f...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX\0A: 1\r\n\r\n", "upstream sent invalid header: \"X\\x00...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", "upstream sent invalid header: \"\\x20...\"")]
    [InlineData("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", "upstream sent invalid header: \"\\x3a...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nX(A): 1\r\n\r\n", "upstream sent invalid header: \"X\\x28...\"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", "upstream sent duplicate header line: \"Content-Length: 1\", previous value: \"Content-Length: 1\"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-length: 1\r\n\r\n", "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "upstream sent duplicate header line: \"Transfer-Encoding: chunked\", previous value: \"Transfer-Encoding: chunked\"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", "upstream sent invalid \"Content-Length\" header: \"Content-Length: 12a\"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "upstream sent invalid \"Content-Length\" header: \"Content-Length: -1\"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", "upstream sent invalid \"Content-Length\" header: \"Content-Length: \"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n", "upstream sent invalid \"Content-Length\" header: \"Content-Length: 1, 1\"")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "upstream sent invalid \"Content-Length\" header: \"Content-Length: 99999999999999999999\"")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "upstream sent unknown \"Transfer-Encoding\": \"gzip, chunked\"")]
    [InlineData("HTTP/1.0 103 Early Hints\r\nLink: </a>\r\n\r\n", "upstream sent HTTP/1.0 response with early hints")]
    public void RejectsHeadersWithNginxMessages(string text, string message) => Assert.Equal(message, Rejected(text));

    [Fact]
    public void ConnectionCloseAndChunked()
    {
        var p = Complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nConnection: keep-alive, Close\r\n\r\n");
        Assert.True(p.Chunked);
        Assert.Equal(-1, p.ContentLength);
        Assert.True(p.ConnectionClose);
        Assert.False(Complete("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n").ConnectionClose);
        Assert.True(Complete("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").ConnectionClose);
    }

    [Fact]
    public void KnownNamesAndRepeatedValuesShareStrings()
    {
        var cache = new Http1ValueCache();
        var one = Complete("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\ncontent-type: text/html\r\nX-Custom: v\r\n\r\n", cache);
        var two = Complete("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\ncontent-type: text/html\r\nX-Custom: v\r\n\r\n", cache);
        Assert.Same(one.Headers[0].Key, two.Headers[0].Key);
        Assert.Same(one.Headers[0].Value, two.Headers[0].Value);
        Assert.Equal("content-type", two.Headers[1].Key);
        Assert.Same(one.Headers[1].Value, two.Headers[1].Value);
        Assert.NotSame(one.Headers[2].Key, two.Headers[2].Key);
        var three = Complete("HTTP/1.1 200 OK\r\nServer: other\r\n\r\n", cache);
        Assert.Equal("other", three.Headers[0].Value);
    }

    [Fact]
    public void ObsTextIsPassedAsLatin1()
    {
        var p = Complete("HTTP/1.1 200 OK\r\nX-Name: caf\u00e9\r\n\r\n");
        Assert.Equal("caf\u00e9", p.Headers[0].Value);
    }

    [Fact]
    public void TrailerSectionsUseTheirOwnMessage()
    {
        var parser = new Http1HeadParser(trailers: true);
        Assert.Equal(HeadParse.Complete, parser.Parse(B("X-Sum: 42\r\n\r\n")));
        Assert.True(parser.Finish(B("X-Sum: 42\r\n\r\n")));
        Assert.Equal([new KeyValuePair<string, string>("X-Sum", "42")], parser.Headers);

        var empty = new Http1HeadParser(trailers: true);
        Assert.Equal(HeadParse.Complete, empty.Parse(B("\r\n")));
        Assert.Equal(2, empty.Length);

        var bad = new Http1HeadParser(trailers: true);
        Assert.Equal(HeadParse.Invalid, bad.Parse(B("X Sum: 1\r\n\r\n")));
        Assert.Equal("upstream sent invalid trailer: \"X\\x20...\"", bad.Error);
    }
}
