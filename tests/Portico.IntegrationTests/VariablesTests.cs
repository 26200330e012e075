using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Portico.IntegrationTests.Infrastructure;
using static Portico.IntegrationTests.RewriteTests;

namespace Portico.IntegrationTests;

/// <summary>The request variables of ngx_http_core_module as a client sees them through "return".</summary>
public class VariablesTests
{
    private static Task<PorticoInstance> StartAsync(string location) => PorticoInstance.StartHttpAsync($$"""
        server {
            listen 127.0.0.1:{port};
            server_name main.test *.wild.test ~^(?<sub>[a-z]+)\.re\.test$;
            {{location}}
        }
        """);

    [Fact]
    public async Task RequestLineVariables()
    {
        await using var p = await StartAsync("""
            location / {
                return 200 "uri=[$uri] document_uri=[$document_uri] request_uri=[$request_uri] args=[$args] query_string=[$query_string] is_args=[$is_args] method=[$request_method] protocol=[$server_protocol] request=[$request]\n";
            }
            """);

        var normalized = await p.RawAsync("GET /a%20b//./c?x=1&y HTTP/1.1\r\nHost: main.test\r\nConnection: close\r\n\r\n");
        Assert.EndsWith("uri=[/a b/c] document_uri=[/a b/c] request_uri=[/a%20b//./c?x=1&y] args=[x=1&y] query_string=[x=1&y] is_args=[?] method=[GET] protocol=[HTTP/1.1] request=[GET /a%20b//./c?x=1&y HTTP/1.1]\n",
            normalized);
        Assert.Equal("uri=[/] document_uri=[/] request_uri=[/] args=[] query_string=[] is_args=[] method=[GET] protocol=[HTTP/1.1] request=[GET / HTTP/1.1]\n",
            (await GetAsync(p, "/")).Body);

        // An absolute-form target: $request_uri has neither scheme nor host.
        var raw = await p.RawAsync("GET http://main.test/p?q HTTP/1.1\r\nHost: main.test\r\nConnection: close\r\n\r\n");
        Assert.EndsWith("uri=[/p] document_uri=[/p] request_uri=[/p?q] args=[q] query_string=[q] is_args=[?] method=[GET] protocol=[HTTP/1.1] request=[GET http://main.test/p?q HTTP/1.1]\n", raw);
    }

    [Fact]
    public async Task HeadersCookiesAndArguments()
    {
        await using var p = await StartAsync("""
            location / {
                return 200 "arg=[$arg_a] ARG=[$arg_B] none=[$arg_none] cookie=[$cookie_id] ua=[$http_user_agent] custom=[$http_x_custom_header] type=[$content_type] length=[$content_length]\n";
            }
            """);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/?a=1&b=2&a=3");
        request.Headers.TryAddWithoutValidation("User-Agent", "tester/1");
        request.Headers.TryAddWithoutValidation("X-Custom-Header", "v");
        request.Headers.TryAddWithoutValidation("Cookie", "x=1; id=abc");
        request.Content = new StringContent("hello", System.Text.Encoding.ASCII, "text/x-test");
        var body = await (await p.Client.SendAsync(request)).Content.ReadAsStringAsync();
        Assert.Equal("arg=[1] ARG=[2] none=[] cookie=[abc] ua=[tester/1] custom=[v] type=[text/x-test; charset=us-ascii] length=[5]\n", body);
    }

    [Fact]
    public async Task HostAndServerName()
    {
        await using var p = await StartAsync("""
            location / { return 200 "host=[$host] http_host=[$http_host] server_name=[$server_name] sub=[$sub] one=[$1]\n"; }
            """);

        Assert.Equal("host=[main.test] http_host=[MAIN.test:8080] server_name=[main.test] sub=[] one=[]\n", (await GetAsync(p, "/", "MAIN.test:8080")).Body);
        Assert.Equal("host=[abc.re.test] http_host=[abc.re.test] server_name=[main.test] sub=[abc] one=[abc]\n", (await GetAsync(p, "/", "abc.re.test")).Body);

        // Without Host (HTTP/1.0) $host is the server's name.
        var raw = await p.RawAsync("GET / HTTP/1.0\r\n\r\n");
        Assert.EndsWith("host=[main.test] http_host=[] server_name=[main.test] sub=[] one=[]\n", raw);
    }

    [Fact]
    public async Task ConnectionAndAddresses()
    {
        await using var p = await StartAsync("""
            location / { return 200 "remote=[$remote_addr] binary=[$binary_remote_addr] server_addr=[$server_addr] port=[$server_port] remote_port=[$remote_port] scheme=[$scheme] https=[$https] connection=[$connection] requests=[$connection_requests]\n"; }
            """);

        var raw = await TwoRequestsOnOneConnectionAsync(p.Port);
        var lines = Regex.Matches(raw, @"remote=\[(.*?)\] binary=\[(.*?)\] server_addr=\[(.*?)\] port=\[(\d+)\] remote_port=\[(\d+)\] scheme=\[(.*?)\] https=\[(.*?)\] connection=\[(\d+)\] requests=\[(\d+)\]");
        Assert.Equal(2, lines.Count);
        var first = lines[0].Groups;
        Assert.Equal("127.0.0.1", first[1].Value);
        Assert.Equal("\u007f\0\0\u0001", first[2].Value);
        Assert.Equal("127.0.0.1", first[3].Value);
        Assert.Equal(p.Port.ToString(CultureInfo.InvariantCulture), first[4].Value);
        Assert.InRange(int.Parse(first[5].Value, CultureInfo.InvariantCulture), 1, 65535);
        Assert.Equal("http", first[6].Value);
        Assert.Equal(string.Empty, first[7].Value);
        Assert.Equal("1", first[9].Value);

        // The same connection: the same serial, the second request.
        var second = lines[1].Groups;
        Assert.Equal(first[8].Value, second[8].Value);
        Assert.Equal(first[5].Value, second[5].Value);
        Assert.Equal("2", second[9].Value);
    }

    /// <summary>Two requests, one after the other, on one keep-alive connection; both responses end with "\n".</summary>
    private static async Task<string> TwoRequestsOnOneConnectionAsync(int port)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = new System.Text.StringBuilder();
        var buffer = new byte[8192];
        foreach (var request in (string[])["GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"])
        {
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request), cts.Token);
            var before = Regex.Matches(received.ToString(), "requests=").Count;
            while (Regex.Matches(received.ToString(), @"requests=\[\d+\]\n").Count == before)
            {
                var n = await stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                {
                    break;
                }

                received.Append(System.Text.Encoding.Latin1.GetString(buffer, 0, n));
            }
        }

        return received.ToString();
    }

    [Fact]
    public async Task RequestIdIsThirtyTwoHexDigitsPerRequest()
    {
        await using var p = await StartAsync("""
            location / { return 200 "$request_id $request_id"; }
            """);

        var ids = new HashSet<string>();
        for (var i = 0; i < 5; i++)
        {
            var parts = (await GetAsync(p, "/")).Body.Split(' ');
            Assert.Equal(parts[0], parts[1]);
            Assert.Matches("^[0-9a-f]{32}$", parts[0]);
            ids.Add(parts[0]);
        }

        Assert.Equal(5, ids.Count);
    }

    [Fact]
    public async Task TimesAndProcess()
    {
        await using var p = await StartAsync("""
            location / { return 200 "msec=[$msec] local=[$time_local] iso=[$time_iso8601] time=[$request_time] pid=[$pid] hostname=[$hostname] version=[$nginx_version]\n"; }
            """);

        var body = (await GetAsync(p, "/")).Body;
        Assert.Matches(@"msec=\[\d{10,}\.\d{3}\]", body);
        Assert.Matches(@"local=\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]", body);
        Assert.Matches(@"iso=\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}\]", body);
        Assert.Matches(@"time=\[\d+\.\d{3}\]", body);
        Assert.Contains($"pid=[{Environment.ProcessId}]", body);
        Assert.Contains($"hostname=[{System.Net.Dns.GetHostName().ToLowerInvariant()}]", body);
        Assert.Contains("version=[" + Portico.Pipeline.Product.Version + "]", body);
    }

    [Fact]
    public async Task StatusFollowsTheResponse()
    {
        await using var p = await StartAsync("""
            error_page 404 /err;
            location /err { return 200 "err status=[$status]\n"; }
            location /ok { return 201 "status=[$status]\n"; }
            """);

        Assert.Equal("status=[201]\n", (await GetAsync(p, "/ok")).Body);
        var err = await GetAsync(p, "/missing");
        Assert.Equal(HttpStatusCode.NotFound, err.Status);
        Assert.Equal("err status=[404]\n", err.Body);
    }

    [Fact]
    public async Task CapturesFromEveryRegex()
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            map $arg_m $mapped { ~^(?<mword>[a-z]+)-(\d+)$ "$2"; default "none"; }
            server {
                listen 127.0.0.1:{port};
                location ~ ^/loc/(?<lword>[a-z]+)/(\d+)$ { return 200 "loc lword=[$lword] one=[$1] two=[$2] three=[$3]\n"; }
                location /rw/ { rewrite ^/rw/(?<rword>[a-z]+)$ /target/$1 break; return 200 "rw rword=[$rword] one=[$1] uri=[$uri]\n"; }
                location /map { set $m $mapped; return 200 "map m=[$m] mword=[$mword] one=[$1] two=[$2]\n"; }
            }
            """);

        Assert.Equal("loc lword=[abc] one=[abc] two=[42] three=[]\n", (await GetAsync(p, "/loc/abc/42")).Body);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(p, "/rw/xyz")).Status);
        Assert.Equal("map m=[7] mword=[seven] one=[seven] two=[7]\n", (await GetAsync(p, "/map?m=seven-7")).Body);
    }
}
