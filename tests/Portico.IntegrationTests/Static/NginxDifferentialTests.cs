using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Static;

/// <summary>
/// The same configuration on nginx 1.22 (/usr/sbin/nginx) and on Portico: status, header values (Expires as
/// an offset from Date), and bodies of files, ranges and listings must be the same.
/// </summary>
public sealed partial class NginxDifferentialTests : IAsyncLifetime
{
    private const string Config = """
        include /etc/nginx/mime.types;
        default_type application/octet-stream;
        server {
            listen 127.0.0.1:{port};
            root {docs}/html;
            location /e1/ { alias {docs}/html/; expires 1h; add_header X-A a; add_header X-B b always; }
            location /e2/ { alias {docs}/html/; expires modified 1d; }
            location /e3/ { alias {docs}/html/; expires epoch; }
            location /e4/ { alias {docs}/html/; expires max; }
            location /e5/ { alias {docs}/html/; expires -1; }
            location /e6/ { alias {docs}/html/; expires 0; }
            location /e8/ { alias {docs}/html/; expires modified -1d; }
            location /e9/ { alias {docs}/html/; expires 30d; add_header Cache-Control "public, immutable"; add_header Link "</a.txt>; rel=preload"; }
            location /e10/ { alias {docs}/html/; add_header ETag ""; add_header X-Empty ""; etag off; }
            location /ai/ { alias {docs}/html/dir/; autoindex on; }
            location /aj/ { alias {docs}/html/dir/; autoindex on; autoindex_format json; }
            location /ax/ { alias {docs}/html/dir/; autoindex on; autoindex_format xml; }
            location /ap/ { alias {docs}/html/dir/; autoindex on; autoindex_format jsonp; }
            location /an/ { alias {docs}/html/dir/; autoindex on; autoindex_exact_size off; }
            location /spa/ { try_files $uri $uri/ /spa/index.html; }
            location ~ ^/download/(.+)$ { alias {docs}/data/$1; }
            location /ret/ { add_header X-R r; expires 2h; return 200 "ret"; }
            location /sym/ { disable_symlinks on; }
            location /own/ { disable_symlinks if_not_owner; }
            location /from/ { disable_symlinks on from={docs}/html/from; }
            location /idx/ { index nope.html other.htm /idx/last.txt; }
            location /al/ { alias {docs}/html/; try_files $uri $uri.txt =404; }
            location /nolog/ { log_not_found off; }
            location /types/ { types { text/x-special txt; } default_type text/x-default; }
            location /ims/ { alias {docs}/html/; if_modified_since before; }
            location /noetag/ { alias {docs}/html/; etag off; }
            location /mr/ { alias {docs}/html/; max_ranges 1; }
        }
        """;

    private readonly TempDir _docs = new();
    private NginxReference _nginx = null!;
    private PorticoInstance _portico = null!;

    public async Task InitializeAsync()
    {
        var mtime = new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        void Put(string name, string content)
        {
            File.SetLastWriteTimeUtc(_docs.Write(name, content), mtime);
        }

        Put("html/a.txt", "hello world\n");
        Put("html/index.html", "<h1>idx</h1>\n");
        Put("html/dir/big.bin", new string('x', 20000));
        Put("html/dir/a b&c<d>.txt", "hi\n");
        Put("html/dir/ünïcödé-名前.txt", "u\n");
        Put("html/dir/" + new string('n', 60) + ".txt", "long\n");
        Directory.CreateDirectory(_docs.File("html/dir/Some long directory name that exceeds fifty characters ok"));
        Directory.SetLastWriteTimeUtc(_docs.File("html/dir/Some long directory name that exceeds fifty characters ok"), mtime);
        Directory.CreateDirectory(_docs.File("html/dir/sub"));
        Directory.SetLastWriteTimeUtc(_docs.File("html/dir/sub"), mtime);
        Put("html/spa/index.html", "spa");
        Put("html/spa/docs/index.html", "docs");
        Put("data/report.csv", "a,b\n");
        Directory.CreateDirectory(_docs.File("html/emptydir"));
        Put("html/idx/other.htm", "other");
        Put("html/idx/last.txt", "last");
        Put("html/types/t.txt", "t");
        Put("html/types/none", "n");
        Directory.CreateDirectory(_docs.File("html/sym"));
        Directory.CreateDirectory(_docs.File("html/own"));
        Directory.CreateDirectory(_docs.File("html/from"));
        File.CreateSymbolicLink(_docs.File("html/sym/link.txt"), _docs.File("html/a.txt"));
        Directory.CreateSymbolicLink(_docs.File("html/sym/dir"), _docs.File("html/dir"));
        File.CreateSymbolicLink(_docs.File("html/own/link.txt"), _docs.File("html/a.txt"));
        File.CreateSymbolicLink(_docs.File("html/from/link.txt"), _docs.File("html/a.txt"));
        Directory.CreateSymbolicLink(_docs.File("html/fromdir"), _docs.File("html/from"));

        var body = Config.Replace("{docs}", _docs.Path, StringComparison.Ordinal);
        _nginx = await NginxReference.StartHttpAsync(body, _docs.Path);
        _portico = await PorticoInstance.StartHttpAsync(body);
    }

    public async Task DisposeAsync()
    {
        await _portico.DisposeAsync();
        await _nginx.DisposeAsync();
        _docs.Dispose();
    }

    private sealed record Response(int Status, List<(string Name, string Value)> Headers, byte[] Body)
    {
        public IEnumerable<string> Values(string name) =>
            Headers.Where(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);

        public string? Value(string name) => Values(name).FirstOrDefault();
    }

    private static async Task<Response> SendAsync(int port, string method, string target, params string[] headers)
    {
        var request = new StringBuilder($"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        foreach (var h in headers)
        {
            request.Append(h).Append("\r\n");
        }

        var raw = await RawHttp.SendAsync(port, request.Append("\r\n").ToString());
        var end = raw.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, "no response from port " + port + " for " + target);
        var lines = raw[..end].Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var list = new List<(string, string)>();
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            list.Add((line[..colon], line[(colon + 1)..].Trim()));
        }

        var body = Encoding.Latin1.GetBytes(raw[(end + 4)..]);
        if (list.Any(h => h.Item1.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && h.Item2 == "chunked"))
        {
            body = Dechunk(body);
        }

        return new Response(status, list, body);
    }

    private static byte[] Dechunk(byte[] body)
    {
        var text = Encoding.Latin1.GetString(body);
        var output = new MemoryStream();
        var p = 0;
        while (p < text.Length)
        {
            var eol = text.IndexOf("\r\n", p, StringComparison.Ordinal);
            var size = Convert.ToInt32(text[p..eol].Split(';')[0], 16);
            if (size == 0)
            {
                break;
            }

            output.Write(Encoding.Latin1.GetBytes(text.Substring(eol + 2, size)));
            p = eol + 2 + size + 2;
        }

        return output.ToArray();
    }

    /// <summary>Headers that differ by design: who answers, when, and how the connection is framed.</summary>
    private static readonly HashSet<string> Ignored = new(StringComparer.OrdinalIgnoreCase)
    {
        "Server", "Date", "Connection", "Keep-Alive", "Transfer-Encoding", "Expires", "Location",
    };

    private async Task<(Response Nginx, Response Portico)> BothAsync(string method, string target, params string[] headers)
    {
        var n = await SendAsync(_nginx.Port, method, target, headers);
        var p = await SendAsync(_portico.Port, method, target, headers);
        Assert.Equal(n.Status, p.Status);
        var names = n.Headers.Select(h => h.Name).Concat(p.Headers.Select(h => h.Name))
            .Where(x => !Ignored.Contains(x)).Distinct(StringComparer.OrdinalIgnoreCase);
        var errorPage = n.Status >= 300 && n.Status != 304; // nginx's special response pages
        foreach (var name in names)
        {
            if (errorPage && name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                continue; // the page names the server: "nginx/1.22.1" vs "portico/0.1.0"
            }

            Assert.Equal(Normalize(n.Values(name)), Normalize(p.Values(name)));
        }

        Assert.Equal(Offset(n), Offset(p));
        Assert.Equal(n.Value("Location") is null, p.Value("Location") is null);
        if (n.Value("Location") is { } location)
        {
            Assert.Equal(new Uri(location).PathAndQuery, new Uri(p.Value("Location")!).PathAndQuery);
        }

        if (!errorPage)
        {
            Assert.Equal(Boundary(Encoding.Latin1.GetString(n.Body)), Boundary(Encoding.Latin1.GetString(p.Body)));
        }

        return (n, p);
    }

    private static string[] Normalize(IEnumerable<string> values) => values.Select(Boundary).ToArray();

    private static string Boundary(string s) => BoundaryPattern().Replace(s, "BOUNDARY");

    [GeneratedRegex("[0-9]{20}")]
    private static partial Regex BoundaryPattern();

    /// <summary>Expires relative to Date (both servers compute it from their clock), or the absolute value.</summary>
    private static string? Offset(Response r)
    {
        if (r.Value("Expires") is not { } expires)
        {
            return null;
        }

        var e = DateTimeOffset.Parse(expires, CultureInfo.InvariantCulture);
        if (e.Year is 1970 or 2037 or 2019 or 2020)
        {
            return expires; // epoch, max, and "modified" times do not depend on now
        }

        var d = DateTimeOffset.Parse(r.Value("Date")!, CultureInfo.InvariantCulture);
        return "now" + (e - d).TotalSeconds.ToString("+0;-0", CultureInfo.InvariantCulture);
    }

    [Theory]
    [InlineData("/e1/a.txt")]
    [InlineData("/e2/a.txt")]
    [InlineData("/e3/a.txt")]
    [InlineData("/e4/a.txt")]
    [InlineData("/e5/a.txt")]
    [InlineData("/e6/a.txt")]
    [InlineData("/e8/a.txt")]
    [InlineData("/e9/a.txt")]
    [InlineData("/e10/a.txt")]
    [InlineData("/e1/missing")]
    [InlineData("/e1/dir")]
    [InlineData("/ret/")]
    [InlineData("/a.txt")]
    [InlineData("/")]
    [InlineData("/dir")]
    [InlineData("/dir?x=1")]
    [InlineData("/emptydir/")]
    [InlineData("/download/report.csv")]
    [InlineData("/spa/route/deep?x=1")]
    [InlineData("/spa/docs")]
    [InlineData("/spa/docs/")]
    [InlineData("/sym/link.txt")]
    [InlineData("/sym/dir/big.bin")]
    [InlineData("/sym/dir/")]
    [InlineData("/own/link.txt")]
    [InlineData("/from/link.txt")]
    [InlineData("/idx/")]
    [InlineData("/idx/missing/")]
    [InlineData("/al/a")]
    [InlineData("/al/a.txt")]
    [InlineData("/al/zzz")]
    [InlineData("/nolog/x")]
    [InlineData("/types/t.txt")]
    [InlineData("/types/none")]
    [InlineData("/noetag/a.txt")]
    [InlineData("/dir/a%20b%26c%3Cd%3E.txt")]
    [InlineData("/dir/%C3%BCn%C3%AFc%C3%B6d%C3%A9-%E5%90%8D%E5%89%8D.txt")]
    [InlineData("/%zz")]
    [InlineData("/a.txt/")]
    [InlineData("/%2e")]
    public async Task ExpiresAddHeaderAndStaticResponses(string target)
    {
        await BothAsync("GET", target);
    }

    [Theory]
    [InlineData("/ai/")]
    [InlineData("/aj/")]
    [InlineData("/ax/")]
    [InlineData("/ap/?callback=cb")]
    [InlineData("/ap/")]
    [InlineData("/an/")]
    public async Task AutoindexListings(string target)
    {
        await BothAsync("GET", target);
    }

    [Theory]
    [InlineData("Range: bytes=0-4")]
    [InlineData("Range: bytes=-3")]
    [InlineData("Range: bytes=5-")]
    [InlineData("Range: bytes=0-1,5-6,-2")]
    [InlineData("Range: bytes=100-")]
    [InlineData("Range: bytes=0-1,0-11")]
    [InlineData("Range: bytes=x")]
    [InlineData("Range: items=0-1")]
    [InlineData("If-None-Match: \"5e0d5da5-c\"")]
    [InlineData("If-None-Match: W/\"5e0d5da5-c\", \"x\"")]
    [InlineData("If-Modified-Since: Thu, 02 Jan 2020 03:04:05 GMT")]
    [InlineData("If-Modified-Since: Thu, 02 Jan 2020 03:04:06 GMT")]
    [InlineData("If-Match: \"nope\"")]
    [InlineData("If-Unmodified-Since: Wed, 01 Jan 2020 00:00:00 GMT")]
    [InlineData("Range: bytes=0-1\r\nIf-Range: \"5e0d5da5-c\"")]
    [InlineData("Range: bytes=0-1\r\nIf-Range: \"stale\"")]
    [InlineData("Range: bytes=0-1\r\nIf-Range: Thu, 02 Jan 2020 03:04:05 GMT")]
    [InlineData("Range: bytes=0-1\r\nIf-Range: Thu, 02 Jan 2020 03:04:06 GMT")]
    [InlineData("If-None-Match: *")]
    public async Task ConditionalAndRangeRequests(string header)
    {
        await BothAsync("GET", "/e1/a.txt", header);
        await BothAsync("HEAD", "/a.txt", header);
        await BothAsync("GET", "/ims/a.txt", header);
        await BothAsync("GET", "/noetag/a.txt", header);
        await BothAsync("GET", "/mr/a.txt", header);
        await BothAsync("GET", "/ai/", header);
    }

    [Theory]
    [InlineData("POST", "/a.txt")]
    [InlineData("PUT", "/")]
    [InlineData("DELETE", "/a.txt")]
    [InlineData("POST", "/missing")]
    public async Task Methods(string method, string target)
    {
        await BothAsync(method, target, "Content-Length: 0");
    }
}
