namespace Portico.Config.Tests;

/// <summary>Golden tests for grpc_pass and the grpc_* directives: nginx's messages (checked against nginx -t).</summary>
public class GrpcDirectiveTests
{
    private const string F = ConfigHarness.Main;

    private static string Location(string body) => ConfigHarness.Http("server {\nlocation / {\n" + body + "\n}\n}");

    [Theory]
    [InlineData("grpc_pass grpc://127.0.0.1:9000/x;", "[emerg] invalid host in upstream \"127.0.0.1:9000/x\" in " + F + ":5")]
    [InlineData("grpc_pass http://127.0.0.1:9000;", "[emerg] invalid host in upstream \"http://127.0.0.1:9000\" in " + F + ":5")]
    [InlineData("grpc_pass grpc://127.0.0.1:0;", "[emerg] invalid port in upstream \"127.0.0.1:0\" in " + F + ":5")]
    [InlineData("grpc_pass grpc://;", "[emerg] no host in upstream \"\" in " + F + ":5")]
    [InlineData("grpc_pass grpcs://unix:;", "[emerg] no path in the unix domain socket in upstream \"unix:\" in " + F + ":5")]
    [InlineData("grpc_pass grpc://[::1;", "[emerg] invalid host in upstream \"[::1\" in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_pass 127.0.0.1:2;", "[emerg] \"grpc_pass\" directive is duplicate in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_next_upstream error foo;", "[emerg] invalid value \"foo\" in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_next_upstream updating;", "[emerg] invalid value \"updating\" in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_ignore_headers X-Foo;", "[emerg] invalid value \"X-Foo\" in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_next_upstream_tries x;", "[emerg] \"grpc_next_upstream_tries\" directive invalid number in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_next_upstream_timeout 1s; grpc_next_upstream_timeout 2s;", "[emerg] \"grpc_next_upstream_timeout\" directive is duplicate in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_set_header X;", "[emerg] invalid number of arguments in \"grpc_set_header\" directive in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_hide_header;", "[emerg] invalid number of arguments in \"grpc_hide_header\" directive in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_buffer_size abc;", "[emerg] \"grpc_buffer_size\" directive invalid value in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_read_timeout 5x;", "[emerg] \"grpc_read_timeout\" directive invalid value in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_intercept_errors maybe;", "[emerg] invalid value \"maybe\" in \"grpc_intercept_errors\" directive, it must be \"on\" or \"off\" in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_bind 1.2.3.4 magic;", "[emerg] invalid parameter \"magic\" in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_bind not-an-ip;", "[emerg] invalid address \"not-an-ip\" in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_ssl_protocols TLSv9;", "[emerg] invalid value \"TLSv9\" in " + F + ":5")]
    [InlineData("grpc_pass 127.0.0.1:1; grpc_ssl_ciphers HIGH;", "[emerg] \"grpc_ssl_ciphers\" directive is not supported by Portico: the TLS client to origins uses the platform's cipher suites in " + F + ":5")]
    public void ReportsNginxMessage(string body, string expected)
    {
        Assert.Equal(expected, ConfigHarness.FirstError(Location(body)));
    }

    [Fact]
    public void GrpcPassIsNotAllowedAtServerLevel()
    {
        Assert.Equal("[emerg] \"grpc_pass\" directive is not allowed here in " + F + ":4",
            ConfigHarness.FirstError(ConfigHarness.Http("server {\ngrpc_pass 127.0.0.1:1;\n}")));
    }

    [Fact]
    public void BitmaskDirectivesAddUpAndWarnOnDuplicates()
    {
        var result = ConfigHarness.Load(Location("grpc_pass 127.0.0.1:1; grpc_next_upstream error error; grpc_next_upstream timeout; grpc_ignore_headers Vary; grpc_ignore_headers vary;"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        Assert.Equal(
            ["[warn] duplicate value \"error\" in " + F + ":5", "[warn] duplicate value \"vary\" in " + F + ":5"],
            result.Warnings.Select(w => w.ToString()));
    }

    [Theory]
    [InlineData("grpc_pass 127.0.0.1;", "[emerg] no port in upstream \"127.0.0.1\" in " + F + ":6")]
    [InlineData("grpc_pass grpc://nosuchhost.invalid:80;", "[emerg] host not found in upstream \"nosuchhost.invalid\" in " + F + ":6")]
    [InlineData("grpc_pass grpcs://127.0.0.1:1; grpc_ssl_verify on;", "[emerg] no grpc_ssl_trusted_certificate for grpc_ssl_verify in " + F + ":6")]
    [InlineData("grpc_pass grpcs://127.0.0.1:1; grpc_ssl_certificate /x.pem;", "[emerg] no \"grpc_ssl_certificate_key\" is defined for certificate \"/x.pem\" in " + F + ":6")]
    public async Task ReportsNginxMessageWhenCompiled(string body, string expected)
    {
        Assert.Equal(expected, await CompileHarness.FirstErrorAsync(CompileHarness.Http("server {\nlocation / {\n" + body + "\n}\n}")));
    }

    [Fact]
    public async Task TheUsualGrpcBlocksCompile()
    {
        Assert.Empty(await CompileHarness.ErrorsAsync(CompileHarness.Http("""
            grpc_set_header X-Real-IP $remote_addr;
            grpc_read_timeout 1h;
            server {
                listen 127.0.0.1:1 http2;
                location / {
                    grpc_pass grpc://127.0.0.1:50051;
                    grpc_set_header Host $host;
                    grpc_connect_timeout 5s;
                    grpc_send_timeout 1h;
                    grpc_buffer_size 16k;
                    grpc_next_upstream error timeout http_502;
                    grpc_next_upstream_tries 3;
                    grpc_next_upstream_timeout 10s;
                    grpc_socket_keepalive on;
                    grpc_hide_header X-Internal;
                    grpc_pass_header Server;
                    grpc_ignore_headers X-Accel-Redirect;
                    grpc_intercept_errors on;
                    error_page 502 = /error502grpc;
                }
                location /tls/ {
                    grpc_pass grpcs://localhost:50052;
                    grpc_ssl_server_name on;
                    grpc_ssl_name backend.internal;
                    grpc_ssl_protocols TLSv1.2 TLSv1.3;
                    grpc_ssl_session_reuse off;
                }
                location /vars/ {
                    grpc_pass grpc://$host:50051;
                }
                location = /error502grpc {
                    internal;
                    default_type application/grpc;
                    add_header grpc-status 14;
                    add_header grpc-message "unavailable";
                    return 204;
                }
            }
            """)));
    }
}
