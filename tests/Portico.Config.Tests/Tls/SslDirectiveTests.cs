namespace Portico.Config.Tests.Tls;

/// <summary>Golden tests for ngx_http_ssl_module and ngx_http_v2_module directives: nginx's messages at bind time.</summary>
public class SslDirectiveTests
{
    private const string F = ConfigHarness.Main;

    private static string Server(string body) => ConfigHarness.Http("server {\nlisten 443 ssl;\n" + body + "\n}");

    [Theory]
    [InlineData("ssl_protocols TLSv1.4;", "[emerg] invalid value \"TLSv1.4\" in " + F + ":5")]
    [InlineData("ssl_protocols TLSv1 TLSv1.1;", "[emerg] \"ssl_protocols\" enables no protocol Portico supports (TLSv1.2, TLSv1.3) in " + F + ":5")]
    [InlineData("ssl_verify_client maybe;", "[emerg] invalid value \"maybe\" in " + F + ":5")]
    [InlineData("ssl_session_cache foo;", "[emerg] invalid session cache \"foo\" in " + F + ":5")]
    [InlineData("ssl_session_cache shared:SSL:1k;", "[emerg] session cache \"shared:SSL:1k\" is too small in " + F + ":5")]
    [InlineData("ssl_early_data on;", "[emerg] \"ssl_early_data\" is not supported by Portico: .NET's SslStream does not accept TLS 1.3 early data in " + F + ":5")]
    [InlineData("ssl_conf_command Options PrioritizeChaCha;", "[emerg] \"ssl_conf_command\" is not supported by Portico: .NET's SslStream takes no OpenSSL configuration commands in " + F + ":5")]
    [InlineData("ssl_verify_depth x;", "[emerg] \"ssl_verify_depth\" directive invalid number in " + F + ":5")]
    [InlineData("ssl_password_file /nonexistent/pw;", "[emerg] open() \"/nonexistent/pw\" failed (2: No such file or directory) in " + F + ":5")]
    [InlineData("ssl_password_file /a;\nssl_password_file /b;", "[emerg] open() \"/a\" failed (2: No such file or directory) in " + F + ":5")]
    [InlineData("http2_chunk_size 0;", "[emerg] the http2 chunk size cannot be zero in " + F + ":5")]
    [InlineData("http2 maybe;", "[emerg] invalid value \"maybe\" in \"http2\" directive, it must be \"on\" or \"off\" in " + F + ":5")]
    [InlineData("http2_streams_index_size 3;", "[emerg] \"http2_streams_index_size\" directive must be a power of two in " + F + ":5")]
    public void ReportsNginxMessage(string body, string expected)
    {
        Assert.Equal(expected, ConfigHarness.FirstError(Server(body)));
    }

    [Fact]
    public void Http2RecvBufferSizeIsHttpLevelOnly()
    {
        Assert.Equal("[emerg] \"http2_recv_buffer_size\" directive is not allowed here in " + F + ":5",
            ConfigHarness.FirstError(Server("http2_recv_buffer_size 512k;")));
    }

    [Theory]
    [InlineData("http2_idle_timeout 3m;", "the \"http2_idle_timeout\" directive is obsolete, use the \"keepalive_timeout\" directive instead")]
    [InlineData("http2_max_field_size 4k;", "the \"http2_max_field_size\" directive is obsolete, use the \"large_client_header_buffers\" directive instead")]
    [InlineData("http2_push /style.css;", "the \"http2_push\" directive is obsolete, ignored")]
    [InlineData("ssl_protocols TLSv1 TLSv1.1 TLSv1.2;", "\"ssl_protocols\" TLSv1 TLSv1.1 ignored: Portico serves TLSv1.2 and TLSv1.3 only")]
    [InlineData("ssl_prefer_server_ciphers off;", "\"ssl_prefer_server_ciphers off\" cannot be applied: .NET's SslStream always prefers the server's cipher order")]
    [InlineData("ssl_stapling_file /x.der;", "\"ssl_stapling_file\" is not supported by Portico: .NET fetches OCSP responses itself, ignored")]
    public void WarnsAndAccepts(string body, string warning)
    {
        var result = ConfigHarness.Load(Server(body));
        Assert.True(result.Success, string.Join("\n", result.Errors));
        Assert.Contains(result.Warnings, w => w.Level == Syntax.LogLevel.Warn && w.Message == warning && w.Line == 5);
    }
}
