namespace Portico.Config.Tests;

/// <summary>Golden tests for the proxy and client directives: nginx's messages (checked against nginx -t).</summary>
public class ProxyDirectiveTests
{
    private const string F = ConfigHarness.Main;

    private static string Location(string body) => ConfigHarness.Http("server {\nlocation / {\n" + body + "\n}\n}");

    [Theory]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_buffering maybe;", "[emerg] invalid value \"maybe\" in \"proxy_buffering\" directive, it must be \"on\" or \"off\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_read_timeout 5x;", "[emerg] \"proxy_read_timeout\" directive invalid value in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_buffers 0 4k;", "[emerg] \"proxy_buffers\" directive invalid value in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_buffer_size x;", "[emerg] \"proxy_buffer_size\" directive invalid value in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_http_version 3;", "[emerg] invalid value \"3\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_ignore_headers X-Foo;", "[emerg] invalid value \"X-Foo\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_redirect bogus;", "[emerg] invalid parameter \"bogus\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_redirect off; proxy_redirect default;", "[emerg] \"proxy_redirect\" directive is duplicate in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_cookie_flags one;", "[emerg] invalid parameter \"one\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_bind 1.2.3.4 magic;", "[emerg] invalid parameter \"magic\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_bind not-an-ip;", "[emerg] invalid address \"not-an-ip\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_set_header X;", "[emerg] invalid number of arguments in \"proxy_set_header\" directive in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; client_body_in_file_only maybe;", "[emerg] invalid value \"maybe\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; keepalive_timeout 5 x;", "[emerg] \"keepalive_timeout\" directive invalid value in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; client_max_body_size 1x;", "[emerg] \"client_max_body_size\" directive invalid value in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_ssl_protocols TLSv9;", "[emerg] invalid value \"TLSv9\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_method;", "[emerg] invalid number of arguments in \"proxy_method\" directive in " + F + ":5")]
    [InlineData("proxy_pass http://;", "[emerg] no host in upstream \"\" in " + F + ":5")]
    [InlineData("proxy_pass http://unix:;", "[emerg] no path in the unix domain socket in upstream \"unix:\" in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; proxy_temp_path /tmp x;", "[emerg] \"proxy_temp_path\" directive invalid value in " + F + ":5")]
    [InlineData("proxy_pass http://127.0.0.1:1; underscores_in_headers on;", "[emerg] \"underscores_in_headers\" directive is not allowed here in " + F + ":5")]
    public void ReportsNginxMessage(string body, string expected)
    {
        Assert.Equal(expected, ConfigHarness.FirstError(Location(body)));
    }

    [Fact]
    public void IgnoreHeaders_IsCaseInsensitiveAndAddsUpWhenRepeated()
    {
        // ngx_conf_set_bitmask_slot: names compared with ngx_strcasecmp; a repeated directive adds to the mask.
        var result = ConfigHarness.Load(Location("proxy_pass http://127.0.0.1:1; proxy_ignore_headers x-accel-redirect EXPIRES; proxy_ignore_headers Set-Cookie expires;"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        Assert.Equal(["[warn] duplicate value \"expires\" in " + F + ":5"], result.Warnings.Select(w => w.ToString()));
    }

    [Fact]
    public void ProxyPassIsNotAllowedAtServerLevel()
    {
        Assert.Equal("[emerg] \"proxy_pass\" directive is not allowed here in " + F + ":4",
            ConfigHarness.FirstError(ConfigHarness.Http("server {\nproxy_pass http://127.0.0.1:1;\n}")));
    }

    [Fact]
    public void TheUsualReverseProxyBlockLoads()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("""
            client_max_body_size 20m;
            keepalive_timeout 65;
            send_timeout 60s;
            server {
                listen 80;
                server_name _;
                underscores_in_headers on;
                location / {
                    proxy_pass http://127.0.0.1:8000;
                    proxy_set_header Host $host;
                    proxy_set_header X-Real-IP $remote_addr;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_connect_timeout 5s;
                    proxy_send_timeout 60s;
                    proxy_read_timeout 60s;
                    proxy_buffering on;
                    proxy_buffer_size 16k;
                    proxy_buffers 8 16k;
                    proxy_busy_buffers_size 32k;
                    proxy_hide_header X-Powered-By;
                    proxy_redirect default;
                    proxy_redirect ~^http://internal(/.*)$ $1;
                    proxy_cookie_path / "/; secure";
                    proxy_ssl_server_name on;
                }
            }
            """));
        Assert.True(result.Success, string.Join("\n", result.Errors));
    }
}
