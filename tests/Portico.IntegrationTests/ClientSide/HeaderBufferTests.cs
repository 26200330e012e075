using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Portico.IntegrationTests.Infrastructure;
using Portico.IntegrationTests.Proxy;

namespace Portico.IntegrationTests.ClientSide;

/// <summary>client_header_buffer_size and large_client_header_buffers: nginx's 414 and 400 pages, checked side by side with nginx.</summary>
public sealed partial class HeaderBufferTests
{
    private const string Http = """
        client_header_buffer_size 1k;
        large_client_header_buffers 2 1k;
        server {
            listen 127.0.0.1:{port};
            http2 on;
            location / { return 200 "ok\n"; }
        }
        """;

    /// <summary>Header lines "X-Hn: vvv..." of the given lengths on the wire (CRLF included).</summary>
    private static string Headers(params int[] lengths)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < lengths.Length; i++)
        {
            var name = "X-H" + i;
            sb.Append(name).Append(": ").Append('v', lengths[i] - name.Length - 4).Append("\r\n");
        }

        return sb.ToString();
    }

    private static string Line(int length) => "GET /" + new string('a', length - "GET / HTTP/1.1".Length) + " HTTP/1.1\r\nHost: h\r\n";

    public static TheoryData<string, string> Cases => new()
    {
        // The request line with its CRLF may fill one large buffer (1k), not more.
        { "line 1022", Line(1022) + "\r\n" },
        { "line 1023", Line(1023) + "\r\n" },
        // Header lines move into the two large buffers; a third is one too many.
        { "three of 900", "GET / HTTP/1.1\r\nHost: h\r\n" + Headers(900, 900, 900) + "\r\n" },
        { "four of 900", "GET / HTTP/1.1\r\nHost: h\r\n" + Headers(900, 900, 900, 900) + "\r\n" },
        // One header line may fill a large buffer, not more.
        { "one of 1024", "GET / HTTP/1.1\r\nHost: h\r\n" + Headers(1024) + "\r\n" },
        { "one of 1025", "GET / HTTP/1.1\r\nHost: h\r\n" + Headers(1025) + "\r\n" },
        { "one of 1100", "GET / HTTP/1.1\r\nHost: h\r\n" + Headers(1100) + "\r\n" },
    };

    [GeneratedRegex(@"\*\d+ (client sent .*?), client: ")]
    private static partial Regex ClientSent();

    [GeneratedRegex(@"<title>(.*)</title>")]
    private static partial Regex Title();

    private static async Task<(string Status, string? Title, string? Log)> SendAsync(int port, string request, Func<Task<string>> log)
    {
        var response = await RawHttp.SendAsync(port, request, untilClose: false);
        var status = response.Split("\r\n")[0];
        var title = Title().Match(response) is { Success: true } t ? t.Groups[1].Value : null;
        string? message = null;
        if (!status.Contains(" 200 ", StringComparison.Ordinal))
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (message is null && DateTime.UtcNow < deadline)
            {
                var m = ClientSent().Matches(await log());
                message = m.Count > 0 ? m[^1].Groups[1].Value : null;
                if (message is null)
                {
                    await Task.Delay(20);
                }
            }
        }

        return (status, title, message);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AsNginx(string what, string request)
    {
        await using var nginx = await NginxProcess.StartHttpAsync(Http.Replace("    http2 on;\n", string.Empty, StringComparison.Ordinal));
        await using var portico = await PorticoInstance.StartHttpAsync(Http);
        var expected = await SendAsync(nginx.Port, request, () => File.ReadAllTextAsync(nginx.Dir.File("logs/error.log")));
        var actual = await SendAsync(portico.Port, request, portico.ReadErrorLogAsync);
        Assert.True(expected == actual, $"{what}: nginx {expected}, portico {actual}");
    }

    [Fact]
    public async Task BeyondTheBackstop_KestrelRefusesWithoutAPage()
    {
        await using var portico = await PorticoInstance.StartHttpAsync(Http);
        // Kestrel's limits are nginx's plus at least 16k: beyond them Kestrel answers before Portico sees the request.
        var line = await RawHttp.SendAsync(portico.Port, Line(20 * 1024) + "\r\n", untilClose: true);
        Assert.StartsWith("HTTP/1.1 414 ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("<html>", line, StringComparison.Ordinal);
        var head = await RawHttp.SendAsync(portico.Port, "GET / HTTP/1.1\r\nHost: h\r\n" + Headers(1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000) + "\r\n", untilClose: true);
        Assert.StartsWith("HTTP/1.1 431 ", head, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http2_AFieldLongerThanALargeBuffer_OrAListLongerThanAllOfThem_GetsNoResponse()
    {
        await using var portico = await PorticoInstance.StartHttpAsync(Http);
        using var h2 = new HttpClient(new SocketsHttpHandler()) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var url = $"http://127.0.0.1:{portico.Port}/";
        Assert.Equal("ok\n", await h2.GetStringAsync(url));

        // One field over 1k: Kestrel's HTTP/2 field limit ends the connection, as nginx does.
        using var field = new HttpRequestMessage(HttpMethod.Get, url) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        field.Headers.Add("X-Big", new string('v', 1100));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => h2.SendAsync(field));

        // Fields under 1k adding up to more than 2 × 1k: the stream is reset.
        using var list = new HttpRequestMessage(HttpMethod.Get, url) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        list.Headers.Add("X-A", new string('a', 900));
        list.Headers.Add("X-B", new string('b', 900));
        list.Headers.Add("X-C", new string('c', 900));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => h2.SendAsync(list));
        await ProxyTest.WaitUntilAsync(async () => (await portico.ReadErrorLogAsync()).Contains("client sent too large header, client: 127.0.0.1", StringComparison.Ordinal), "the error line");
    }
}
