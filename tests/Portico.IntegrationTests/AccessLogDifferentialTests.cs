using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests;

/// <summary>
/// The same configuration on nginx and on Portico, the same requests to both: the access log lines in the
/// predefined "combined" format must be equal byte for byte, except the time, and the size of nginx's
/// default error pages, which carry the server's name ("nginx/1.22.1" against "portico/0.1.0").
/// </summary>
public sealed partial class AccessLogDifferentialTests
{
    private const string Nginx = "/usr/sbin/nginx";

    private static string HttpBody(int port) => $$"""
        log_format j escape=json '{"r":"$request","h":"$http_x_h","a":"$arg_a","none":"$http_x_none","s":$status}';
        log_format d '$http_x_h|$arg_a|$http_x_none|$status';
        access_log logs/access.log combined;
        access_log logs/json.log j;
        access_log logs/default.log d;
        server {
            listen 127.0.0.1:{{port}};
            server_name localhost;
            location / { return 200 "hello\n"; }
            location /nf { return 404; }
            location /text { return 403 "forbidden text"; }
            location = /moved { return 301 /elsewhere; }
        }
        """;

    /// <summary>Requests as raw bytes (Latin-1 string: one char per byte); "{host}" is replaced per server.</summary>
    private static readonly string[] Requests =
    [
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: diff/1.0\r\nConnection: close\r\n\r\n",
        "GET /nf HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        "GET /?q=1&x=%20y HTTP/1.1\r\nHost: {host}\r\nReferer: http://ref.example/page?a=\"b\"\r\nUser-Agent: Mozilla/5.0 (X11; \"quoted\" \\ back)\r\nConnection: close\r\n\r\n",
        "HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        "HEAD /nf HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        "GET /text HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        "GET /moved HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        "GET /a%20b?c=d HTTP/1.0\r\nUser-Agent: \u00c3\u00a9t\u00c3\u00a9\r\n\r\n",
        "POST /nf HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        "GET /../x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:secret")) + "\r\nConnection: close\r\n\r\n",
        "GET /?a=%22q\"\\ HTTP/1.1\r\nHost: {host}\r\nX-H: \u001f\u007f\"\\\t\u00c3\u00a9 end\r\nConnection: close\r\n\r\n",
    ];

    /// <summary>Requests the HTTP parser rejects: the same request line and status in both logs (nginx's 400 page has a body, Kestrel's none).</summary>
    private static readonly string[] Rejected =
    [
        "GARBAGE\r\n\r\n",
        "GET /\u0001\u007f\u00ff HTTP/1.1\r\nHost: {host}\r\n\r\n",
    ];

    [Fact]
    public async Task CombinedLinesMatchNginxByteForByte()
    {
        Assert.True(File.Exists(Nginx), "nginx is needed for differential tests (.ci/run and test.sh install nginx-light)");

        using var nginxDir = new TempDir();
        var nginxPort = TestPorts.GetFree();
        Directory.CreateDirectory(nginxDir.File("logs"));
        nginxDir.Write("conf/nginx.conf", $$"""
            daemon off;
            master_process off;
            error_log logs/error.log;
            pid logs/nginx.pid;
            events { worker_connections 64; }
            http {
            {{HttpBody(nginxPort)}}
            }
            """);
        using var nginx = Process.Start(new ProcessStartInfo(Nginx)
        {
            ArgumentList = { "-p", nginxDir.Path + "/", "-c", "conf/nginx.conf" },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        try
        {
            await WaitForPortAsync(nginxPort, nginx);
            await using var portico = await PorticoInstance.StartHttpAsync(HttpBody(0).Replace("127.0.0.1:0", "127.0.0.1:{port}", StringComparison.Ordinal));

            foreach (var request in Requests.Concat(Rejected))
            {
                await SendAsync(nginxPort, request.Replace("{host}", "localhost:" + nginxPort, StringComparison.Ordinal));
                await SendAsync(portico.Port, request.Replace("{host}", "localhost:" + portico.Port, StringComparison.Ordinal));
            }

            var total = Requests.Length + Rejected.Length;
            var nginxLines = await ReadLinesAsync(nginxDir.File("logs/access.log"), total, null);
            var porticoLines = await ReadLinesAsync(portico.Dir.File("logs/access.log"), total, portico);
            var nginxSignature = NginxSignature();
            var porticoSignature = Pipeline.Product.NameAndVersion;

            for (var i = 0; i < Requests.Length; i++)
            {
                var n = Combined().Match(nginxLines[i]);
                var p = Combined().Match(porticoLines[i]);
                Assert.True(n.Success, "nginx: " + nginxLines[i]);
                Assert.True(p.Success, "portico: " + porticoLines[i]);
                Assert.True(DateTimeOffset.TryParseExact(p.Groups["time"].Value, "dd/MMM/yyyy:HH:mm:ss zzz", CultureInfo.InvariantCulture, DateTimeStyles.None, out _), p.Groups["time"].Value);

                // Default error pages name the server: the body differs by the length of the names, nothing else.
                var expected = nginxLines[i];
                var body = long.Parse(n.Groups["body"].Value, CultureInfo.InvariantCulture);
                if (body > 0 && n.Groups["status"].Value is "404" or "400" or "301")
                {
                    body += porticoSignature.Length - nginxSignature.Length;
                }

                expected = expected[..n.Groups["time"].Index] + p.Groups["time"].Value
                    + expected[(n.Groups["time"].Index + n.Groups["time"].Length)..n.Groups["body"].Index]
                    + body.ToString(CultureInfo.InvariantCulture)
                    + expected[(n.Groups["body"].Index + n.Groups["body"].Length)..];
                Assert.Equal(expected, porticoLines[i]);
            }

            for (var i = Requests.Length; i < total; i++)
            {
                var n = Combined().Match(nginxLines[i]);
                var p = Combined().Match(porticoLines[i]);
                Assert.True(p.Success, "portico: " + porticoLines[i]);
                Assert.Equal(n.Groups["request"].Value, p.Groups["request"].Value);
                Assert.Equal(n.Groups["status"].Value, p.Groups["status"].Value);
            }

            // Formats without time: the whole files are equal (json and default escaping of hostile bytes).
            foreach (var log in new[] { "logs/json.log", "logs/default.log" })
            {
                var expected = await ReadLinesAsync(nginxDir.File(log), total, null);
                var actual = await ReadLinesAsync(portico.Dir.File(log), total, portico);
                for (var i = 0; i < Requests.Length; i++)
                {
                    Assert.Equal(expected[i], actual[i]);
                }
            }
        }
        finally
        {
            if (!nginx.HasExited)
            {
                nginx.Kill();
                await nginx.WaitForExitAsync();
            }
        }
    }

    [GeneratedRegex("^(?<addr>\\S+) - (?<user>\\S+) \\[(?<time>[^\\]]+)\\] \"(?<request>.*)\" (?<status>\\d{3}) (?<body>\\d+) \"(?<referer>.*)\" \"(?<ua>.*)\"$")]
    private static partial Regex Combined();

    private static string NginxSignature()
    {
        var psi = new ProcessStartInfo(Nginx) { ArgumentList = { "-v" }, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        var text = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return text.Trim()["nginx version: ".Length..];
    }

    private static async Task WaitForPortAsync(int port, Process process)
    {
        for (var i = 0; i < 200; i++)
        {
            Assert.False(process.HasExited, "nginx exited: " + await process.StandardError.ReadToEndAsync());
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(25);
            }
        }

        Assert.Fail("nginx did not start listening");
    }

    /// <summary>Sends one request and reads until the server closes the connection.</summary>
    private static async Task SendAsync(int port, string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes(request));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[8192];
        while (await stream.ReadAsync(buffer, cts.Token) > 0)
        {
        }
    }

    private static async Task<string[]> ReadLinesAsync(string path, int count, PorticoInstance? portico)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            if (portico is not null)
            {
                await portico.QuiesceAsync();
            }

            var lines = File.Exists(path) ? (await File.ReadAllTextAsync(path, Encoding.Latin1)).Split('\n', StringSplitOptions.RemoveEmptyEntries) : [];
            if (lines.Length >= count)
            {
                return lines;
            }

            await Task.Delay(25);
        }

        Assert.Fail($"{path} did not get {count} lines");
        return [];
    }
}
