using System.Text;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>nginx and Portico with the same configuration in front of one recording origin.</summary>
public sealed class DifferentialFixture : IAsyncLifetime
{
    public const string Http = """
        proxy_set_header X-Global global;
        server {
            listen 127.0.0.1:{port};
            server_name example.com;
            location / { proxy_pass http://ORIGIN; }
            location /uri/ { proxy_pass http://ORIGIN/remote/; }
            location /root/ { proxy_pass http://ORIGIN/; }
            location ~ ^/re/ { proxy_pass http://ORIGIN; }
            location = /exact { proxy_pass http://ORIGIN/exact-target; }
            location /headers/ {
                proxy_pass http://ORIGIN;
                proxy_set_header Host $host;
                proxy_set_header X-Real-IP $remote_addr;
                proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                proxy_set_header X-Forwarded-Proto $scheme;
                proxy_set_header X-Args $args;
                proxy_set_header X-Empty "";
                proxy_set_header Accept-Encoding "";
            }
            location /keepalive/ { proxy_pass http://ORIGIN; proxy_http_version 1.1; proxy_set_header Connection ""; }
            location /noheaders/ { proxy_pass http://ORIGIN; proxy_pass_request_headers off; proxy_set_header X-Only yes; }
            location /method/ { proxy_pass http://ORIGIN; proxy_method PUT; }
            location /var/ { proxy_pass http://ORIGIN$request_uri; }
            location /varuri/ { proxy_pass http://ORIGIN/v$uri$is_args$args; }
            location /proxyvars/ { proxy_pass http://ORIGIN; proxy_set_header X-PH $proxy_host; proxy_set_header X-PP $proxy_port; }
            location /ws/ { proxy_pass http://ORIGIN; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; }
            location /rw/ { rewrite ^/rw/(.*)$ /changed/$1 break; proxy_pass http://ORIGIN/base/; }
            location /rwlast/ { rewrite ^/rwlast/(.*)$ /uri/$1 last; }
            location /ep/ { error_page 418 = /ep-target/a%20b; return 418; }
            location /ep-target/ { proxy_pass http://ORIGIN; }
            location /nm/ { error_page 418 = @nm; return 418; }
            location @nm { proxy_pass http://ORIGIN; proxy_set_header X-Named yes; }
            location /setargs/ { set $args "x=1"; proxy_pass http://ORIGIN; }
            location /ifblock/ {
                proxy_pass http://ORIGIN;
                proxy_set_header X-Flag $flag;
                if ($arg_f) { set $flag on; }
            }
        }
        """;

    public RawOrigin Origin { get; private set; } = null!;
    public NginxProcess Nginx { get; private set; } = null!;
    public PorticoInstance Portico { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Origin = RawOrigin.Start();
        var http = Http.Replace("ORIGIN", Origin.Address, StringComparison.Ordinal);
        Nginx = await NginxProcess.StartHttpAsync(http);
        Portico = await PorticoInstance.StartHttpAsync(http);
    }

    public async Task DisposeAsync()
    {
        await Portico.DisposeAsync();
        await Nginx.DisposeAsync();
        await Origin.DisposeAsync();
    }
}

/// <summary>
/// Differential tests: the same requests through nginx (Debian's package) and Portico, comparing what the
/// origin receives: the request line and the headers (names case-insensitive, repeated headers joined as
/// .NET's client sends them, order not compared).
/// </summary>
public sealed class ProxyDifferentialTests : IClassFixture<DifferentialFixture>
{
    private readonly DifferentialFixture _f;
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public ProxyDifferentialTests(DifferentialFixture fixture, Xunit.Abstractions.ITestOutputHelper output)
    {
        _f = fixture;
        _output = output;
    }

    public static TheoryData<string, string> Requests()
    {
        var data = new TheoryData<string, string>();
        void Add(string name, string request) => data.Add(name, request);
        const string H = "Host: example.com\r\nConnection: close\r\n";
        Add("root", "GET / HTTP/1.1\r\n" + H + "\r\n");
        Add("path and args", "GET /a/b/c?x=1&y=2 HTTP/1.1\r\n" + H + "\r\n");
        Add("escaped", "GET /a%20b?q=%2F HTTP/1.1\r\n" + H + "\r\n");
        Add("double slashes", "GET //double//slash HTTP/1.1\r\n" + H + "\r\n");
        Add("dots", "GET /dot/./x/../y HTTP/1.1\r\n" + H + "\r\n");
        Add("uri part", "GET /uri/sub/path?z=1 HTTP/1.1\r\n" + H + "\r\n");
        Add("uri part escaped", "GET /uri/a%20b HTTP/1.1\r\n" + H + "\r\n");
        Add("uri part tilde", "GET /uri/%7Etilde HTTP/1.1\r\n" + H + "\r\n");
        Add("uri part slash", "GET /uri/x%2Fy HTTP/1.1\r\n" + H + "\r\n");
        Add("uri part merged", "GET /uri//m//n HTTP/1.1\r\n" + H + "\r\n");
        Add("root uri", "GET /root/ HTTP/1.1\r\n" + H + "\r\n");
        Add("root uri deep", "GET /root/deep/er?k HTTP/1.1\r\n" + H + "\r\n");
        Add("regex location", "GET /re/match?x HTTP/1.1\r\n" + H + "\r\n");
        Add("exact", "GET /exact HTTP/1.1\r\n" + H + "\r\n");
        Add("exact with args", "GET /exact?with=args HTTP/1.1\r\n" + H + "\r\n");
        Add("headers with xff", "GET /headers/h?a=1 HTTP/1.1\r\n" + H + "X-Forwarded-For: 10.1.1.1\r\n\r\n");
        Add("headers without xff", "GET /headers/h HTTP/1.1\r\n" + H + "\r\n");
        Add("headers removed", "GET /headers/ HTTP/1.1\r\n" + H + "Accept-Encoding: gzip, br\r\nX-Empty: client\r\n\r\n");
        Add("headers host case", "GET /headers/ HTTP/1.1\r\nHost: Example.COM\r\nConnection: close\r\n\r\n");
        Add("keepalive 1.1", "GET /keepalive/k HTTP/1.1\r\n" + H + "\r\n");
        Add("no request headers", "GET /noheaders/n HTTP/1.1\r\n" + H + "X-Client: 1\r\n\r\n");
        Add("proxy_method", "POST /method/m HTTP/1.1\r\n" + H + "Content-Length: 4\r\nContent-Type: text/plain\r\n\r\nbody");
        Add("request_uri variable", "GET /var/a%2Fb?c=d HTTP/1.1\r\n" + H + "\r\n");
        Add("uri variable", "GET /varuri/x?y=1 HTTP/1.1\r\n" + H + "\r\n");
        Add("proxy variables", "GET /proxyvars/ HTTP/1.1\r\n" + H + "\r\n");
        Add("head", "HEAD /a HTTP/1.1\r\n" + H + "\r\n");
        Add("post", "POST /form HTTP/1.1\r\n" + H + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2");
        Add("post chunked", "POST /chunked HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        Add("put", "PUT /put HTTP/1.1\r\n" + H + "Content-Length: 3\r\n\r\nxyz");
        Add("delete", "DELETE /del HTTP/1.1\r\n" + H + "\r\n");
        Add("options", "OPTIONS /opt HTTP/1.1\r\n" + H + "\r\n");
        Add("hop by hop", "GET /hop HTTP/1.1\r\n" + H + "TE: trailers\r\nKeep-Alive: 300\r\nUpgrade: h2c\r\n\r\n");
        Add("underscore header", "GET /u HTTP/1.1\r\n" + H + "X_Under: 1\r\nX-Fine: 2\r\n\r\n");
        Add("invalid header name", "GET /i HTTP/1.1\r\n" + H + "X.Dot: 1\r\n\r\n");
        Add("repeated cookie", "GET /c HTTP/1.1\r\n" + H + "Cookie: a=1\r\nCookie: b=2\r\n\r\n");
        Add("repeated header", "GET /d HTTP/1.1\r\n" + H + "X-Dup: 1\r\nX-Dup: 2\r\n\r\n");
        Add("browser-like", "GET /page?id=7 HTTP/1.1\r\n" + H + "User-Agent: Mozilla/5.0\r\nAccept: text/html,*/*;q=0.8\r\nAccept-Language: en\r\nReferer: http://example.com/\r\n\r\n");
        Add("absolute form", "GET http://example.com/abs?x HTTP/1.1\r\n" + H + "\r\n");
        Add("websocket headers", "GET /ws/socket HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        Add("rewrite break", "GET /rw/a%20b?k=v HTTP/1.1\r\n" + H + "\r\n");
        Add("rewrite last", "GET /rwlast/x%2Fy HTTP/1.1\r\n" + H + "\r\n");
        Add("error_page uri", "GET /ep/ HTTP/1.1\r\n" + H + "\r\n");
        Add("error_page named", "GET /nm/a%20b?q=1 HTTP/1.1\r\n" + H + "\r\n");
        Add("set args", "GET /setargs/p?old=1 HTTP/1.1\r\n" + H + "\r\n");
        Add("if block", "GET /ifblock/x?f=1 HTTP/1.1\r\n" + H + "\r\n");
        return data;
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task OriginReceivesTheSame(string name, string request)
    {
        var nginx = await SeenAsync(_f.Nginx.Port, request);
        var portico = await SeenAsync(_f.Portico.Port, request);
        _output.WriteLine(Normalize(portico));
        Assert.True(Normalize(nginx) == Normalize(portico), $"{name}:\nnginx:\n{Normalize(nginx)}\nportico:\n{Normalize(portico)}");
    }

    [Fact]
    public void AtLeastThirtyRequestsAreCompared() => Assert.True(Requests().Count >= 30);

    private async Task<RawRequest> SeenAsync(int port, string request)
    {
        while (_f.Origin.Requests.TryDequeue(out _))
        {
        }

        await RawHttp.SendAsync(port, request, TimeSpan.FromSeconds(5));
        await ProxyTest.WaitUntilAsync(() => !_f.Origin.Requests.IsEmpty, "the origin to receive the request", 10);
        _f.Origin.Requests.TryDequeue(out var seen);
        return seen!;
    }

    private static string Normalize(RawRequest r)
    {
        var headers = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in r.Headers)
        {
            var key = name.ToLowerInvariant();
            headers[key] = headers.TryGetValue(key, out var existing) ? existing + (key == "cookie" ? "; " : ", ") + value : value;
        }

        var sb = new StringBuilder(r.RequestLine).Append('\n');
        foreach (var (k, v) in headers)
        {
            sb.Append(k).Append(": ").Append(v).Append('\n');
        }

        return sb.ToString();
    }
}
