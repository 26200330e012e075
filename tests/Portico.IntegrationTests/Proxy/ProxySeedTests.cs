using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>
/// The seed configurations (../shared/seeds/) that use only proxy and core directives, as written there,
/// with listen addresses, ports and the origin's port replaced. Each behaves as its seed says.
/// </summary>
public sealed class ProxySeedTests
{
    private static string Seed(string text, int originPort) => text
        .Replace("listen 80;", "listen 127.0.0.1:{port};", StringComparison.Ordinal)
        .Replace(":8000", ":" + originPort, StringComparison.Ordinal)
        .Replace(":8080", ":" + originPort, StringComparison.Ordinal);

    [Fact]
    public async Task Seed002_SimpleReverseProxyWithForwardedHeaders()
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(Seed("""
            server {
                    listen 80;
                    server_name _;

                    location / {
                            proxy_pass http://127.0.0.1:8000;
                            proxy_set_header Host $host;
                            proxy_set_header X-Real-IP $remote_addr;
                            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                            proxy_set_header X-Forwarded-Proto $scheme;
                    }
            }
            """, origin.Port));
        // "curl 127.0.0.1:80/hello": the request reaches the application with the client's details.
        var response = await ProxyTest.RawAsync(portico, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.True(origin.Requests.TryDequeue(out var seen));
        Assert.Equal("/hello", seen!.Target);
        Assert.Equal("127.0.0.1", seen.Header("Host"));
        Assert.Equal("127.0.0.1", seen.Header("X-Real-IP"));
        Assert.Equal("127.0.0.1", seen.Header("X-Forwarded-For"));
        Assert.Equal("http", seen.Header("X-Forwarded-Proto"));
    }

    [Fact]
    public async Task Seed001_SimplestReverseProxyAndItsHeaders()
    {
        await using var origin = RawOrigin.Start();
        await using var portico = await PorticoInstance.StartHttpAsync(Seed("""
            server {
            listen 80;
            server_name example.com;
            location / {
            proxy_pass http://127.0.0.1:8080;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            }
            }
            """, origin.Port));
        var response = await ProxyTest.RawAsync(portico, "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.True(origin.Requests.TryDequeue(out var seen));
        Assert.Equal("example.com", seen!.Header("X-Forwarded-Host"));
        Assert.Equal(portico.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), seen.Header("X-Forwarded-Port"));

        // "Kill the backend, re-curl: should get 502 Bad Gateway."
        await origin.DisposeAsync();
        var down = await ProxyTest.RawAsync(portico, "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502", down, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Seed004_MyappWithTrailingSlashHeadersBindAndBuffers()
    {
        await using var origin = RawOrigin.Start(async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.RespondAsync(200, "hello world\n", "Server: SimpleHTTP/0.6 Python/3.5.3", "Content-type: text/html");
            }
        });
        await using var portico = await PorticoInstance.StartHttpAsync(Seed("""
            server {
                    listen 80;
                    server_name myapp;
                    location / {
                            proxy_pass http://localhost:8000/;
                    }
            }
            server {
                listen 80;

                server_name headers;

                location / {
                        proxy_set_header X-Forwarded-For $remote_addr;
                        proxy_set_header Host $host;
                        proxy_pass http://localhost:8000/;
                }
            }
            server {
                listen 80;
                server_name bind;
                location / {
                    proxy_bind 127.0.0.2;
                    proxy_pass http://localhost:8000/;
                }
            }
            server {
                listen 80;
                server_name buffers;
                location / {
                    proxy_buffers 8 2k;
                    proxy_buffer_size 2k;
                    proxy_pass http://localhost:8000/;
                }
            }
            """, origin.Port));

        // "curl -I myapp": the server is now the proxy, the application's headers come through.
        var head = await ProxyTest.RawAsync(portico, "HEAD / HTTP/1.1\r\nHost: myapp\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Contains("Server: portico", head, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 12", head, StringComparison.Ordinal);
        Assert.Contains("Content-type: text/html", head, StringComparison.OrdinalIgnoreCase);

        var body = await ProxyTest.RawAsync(portico, "GET / HTTP/1.1\r\nHost: myapp\r\nConnection: close\r\n\r\n");
        Assert.EndsWith("hello world\n", body, StringComparison.Ordinal);

        while (origin.Requests.TryDequeue(out _))
        {
        }

        await ProxyTest.RawAsync(portico, "GET /x HTTP/1.1\r\nHost: headers\r\nConnection: close\r\n\r\n");
        Assert.True(origin.Requests.TryDequeue(out var seen));
        Assert.Equal("/x", seen!.Target);
        Assert.Equal("headers", seen.Header("Host"));
        Assert.Equal("127.0.0.1", seen.Header("X-Forwarded-For"));

        await ProxyTest.RawAsync(portico, "GET / HTTP/1.1\r\nHost: bind\r\nConnection: close\r\n\r\n");
        Assert.True(origin.Requests.TryDequeue(out var bound));
        Assert.Equal("127.0.0.2", bound!.RemoteAddress);

        Assert.EndsWith("hello world\n", await ProxyTest.RawAsync(portico, "GET / HTTP/1.1\r\nHost: buffers\r\nConnection: close\r\n\r\n"), StringComparison.Ordinal);
    }
}
