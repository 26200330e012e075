using System.Text;
using BenchmarkDotNet.Attributes;
using Portico.Upstreams.Transport.Http1;

namespace Portico.Micro;

/// <summary>
/// The two parsers: the strict HTTP/1 response-head parser of the upstream transport (per proxied request:
/// parse, then build the header array and check the framing fields), and the configuration loader
/// (per reload: read, tokenize, bind every directive; then the snapshot compiler).
/// </summary>
[MemoryDiagnoser]
public class ParserBenchmarks
{
    /// <summary>The bench origin's answer to the small GET (nginx, six fields).</summary>
    private static readonly byte[] SmallHead = Encoding.ASCII.GetBytes(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\n"
        + "Content-Length: 64\r\nConnection: keep-alive\r\nAccept-Ranges: bytes\r\n\r\n");

    /// <summary>An application's page: cookies, caching and security headers, 16 fields, about 1 KiB.</summary>
    private static readonly byte[] AppHead = Encoding.ASCII.GetBytes(
        "HTTP/1.1 200 OK\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\nContent-Type: text/html; charset=utf-8\r\n"
        + "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nVary: Accept-Encoding, Cookie\r\n"
        + "Cache-Control: private, max-age=0, must-revalidate\r\nETag: W/\"5f3a-1b2c3d4e5f\"\r\n"
        + "Last-Modified: Sun, 29 Nov 2026 18:42:11 GMT\r\n"
        + "Set-Cookie: session=8c1e4b7d2f9a4e0b8c1e4b7d2f9a4e0b; Path=/; HttpOnly; Secure; SameSite=Lax\r\n"
        + "Set-Cookie: csrftoken=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA; Path=/; Secure; SameSite=Strict\r\n"
        + "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\nX-Content-Type-Options: nosniff\r\n"
        + "X-Frame-Options: SAMEORIGIN\r\nReferrer-Policy: strict-origin-when-cross-origin\r\n"
        + "Content-Security-Policy: default-src 'self'; img-src 'self' data: https://cdn.example.com; script-src 'self'\r\n"
        + "X-Request-Id: 0f8e7d6c5b4a39281706f5e4d3c2b1a0\r\n\r\n");

    /// <summary>A reverse-proxy configuration as the seeds write them: upstreams, limits, TLS-less servers, locations.</summary>
    internal const string Config = """
        worker_processes auto;
        error_log stderr warn;
        events { worker_connections 4096; }
        http {
            log_format main '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                            '"$http_referer" "$http_user_agent" rt=$request_time uct=$upstream_connect_time '
                            'uht=$upstream_header_time urt=$upstream_response_time id=$request_id';
            access_log off;
            sendfile on;
            keepalive_timeout 65;
            client_max_body_size 16m;
            map $http_upgrade $connection_upgrade { default upgrade; '' close; }
            map $uri $backend_pool { default app; ~^/api/ api; }
            upstream app {
                least_conn;
                server 127.0.0.1:8001 weight=3 max_fails=3 fail_timeout=30s;
                server 127.0.0.1:8002 max_fails=3 fail_timeout=30s;
                server 127.0.0.1:8003 backup;
                keepalive 32;
            }
            upstream api {
                hash $request_uri consistent;
                server 127.0.0.1:9001;
                server 127.0.0.1:9002;
                server 127.0.0.1:9003;
                keepalive 16;
            }
            server {
                listen 8080;
                server_name www.example.com example.com;
                root /srv/www;
                proxy_http_version 1.1;
                proxy_set_header Host $host;
                proxy_set_header X-Real-IP $remote_addr;
                proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                proxy_set_header X-Forwarded-Proto $scheme;
                proxy_set_header X-Request-ID $request_id;
                proxy_connect_timeout 5s;
                proxy_read_timeout 60s;
                location = /health { access_log off; return 200 "ok\n"; }
                location / { try_files $uri $uri/ @app; }
                location @app { proxy_pass http://app; }
                location /api/ {
                    proxy_pass http://api/;
                    proxy_next_upstream error timeout http_502 http_503;
                }
                location /events/ { proxy_pass http://app; proxy_buffering off; proxy_read_timeout 1h; }
                location /ws/ {
                    proxy_pass http://app;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $connection_upgrade;
                }
                location ~* \.(?:css|js|png|jpg|svg|woff2)$ { expires 7d; add_header Cache-Control public; }
                location ^~ /admin/ { proxy_pass http://app; proxy_set_header X-Admin 1; }
                error_page 502 503 504 /50x.html;
                location = /50x.html { root /srv/errors; }
            }
            server {
                listen 8081;
                server_name api.example.com;
                location / { proxy_pass http://api; }
                location /v1/ { rewrite ^/v1/(.*)$ /$1 break; proxy_pass http://api; }
            }
        }
        """;

    private readonly Http1HeadParser _parser = new(trailers: false, new Http1ValueCache());

    [GlobalSetup]
    public void Setup()
    {
        var small = Head(SmallHead);
        var app = Head(AppHead);
        if (small != 6 || app != 16)
        {
            throw new InvalidOperationException($"head parser: {small} and {app} fields, expected 6 and 16 ({_parser.Error})");
        }

        MicroConfig.Compile(Config);
    }

    private int Head(byte[] head)
    {
        _parser.Reset();
        if (_parser.Parse(head) != HeadParse.Complete || !_parser.Finish(head))
        {
            return -1;
        }

        return _parser.Headers.Length;
    }

    /// <summary>The bench origin's six-field head (per small proxied request).</summary>
    [Benchmark(Baseline = true)]
    public int ResponseHeadSmall() => Head(SmallHead);

    /// <summary>A 16-field application head with cookies and security headers.</summary>
    [Benchmark]
    public int ResponseHeadApp() => Head(AppHead);

    /// <summary>Read, tokenize and bind the 64-line configuration (what `portico -t` does).</summary>
    [Benchmark]
    public object ConfigLoad() => MicroConfig.Load(Config);

    /// <summary>Load plus the snapshot compiler (templates, location trees, upstreams): a whole reload but the sockets.</summary>
    [Benchmark]
    public object ConfigReload() => MicroConfig.Compile(Config);
}
