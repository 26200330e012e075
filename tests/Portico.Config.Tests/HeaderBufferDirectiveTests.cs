namespace Portico.Config.Tests;

/// <summary>client_header_buffer_size and large_client_header_buffers: nginx's messages (checked against nginx -t).</summary>
public class HeaderBufferDirectiveTests
{
    private const string F = ConfigHarness.Main;

    private static string Server(string body) => ConfigHarness.Http("server {\n" + body + "\n}");

    [Theory]
    [InlineData("large_client_header_buffers 0 8k;", "[emerg] \"large_client_header_buffers\" directive invalid value in " + F + ":4")]
    [InlineData("large_client_header_buffers 4 x;", "[emerg] \"large_client_header_buffers\" directive invalid value in " + F + ":4")]
    [InlineData("large_client_header_buffers 4;", "[emerg] invalid number of arguments in \"large_client_header_buffers\" directive in " + F + ":4")]
    [InlineData("large_client_header_buffers 4 8k; large_client_header_buffers 4 8k;", "[emerg] \"large_client_header_buffers\" directive is duplicate in " + F + ":4")]
    [InlineData("large_client_header_buffers 4 511;", "[emerg] the \"large_client_header_buffers\" size must be equal to or greater than \"connection_pool_size\" in " + F + ":4")]
    [InlineData("client_header_buffer_size x;", "[emerg] \"client_header_buffer_size\" directive invalid value in " + F + ":4")]
    [InlineData("location / { client_header_buffer_size 1k; }", "[emerg] \"client_header_buffer_size\" directive is not allowed here in " + F + ":4")]
    [InlineData("location / { large_client_header_buffers 4 8k; }", "[emerg] \"large_client_header_buffers\" directive is not allowed here in " + F + ":4")]
    public void ReportsNginxMessage(string body, string expected)
    {
        Assert.Equal(expected, ConfigHarness.FirstError(Server(body)));
    }

    [Fact]
    public void AcceptsWhatNginxAccepts()
    {
        var result = ConfigHarness.Load(ConfigHarness.Http("client_header_buffer_size 0;\nlarge_client_header_buffers 8 16k;\nserver {\nclient_header_buffer_size 4k;\nlarge_client_header_buffers 2 512;\n}"));
        Assert.True(result.Success, string.Join("\n", result.Errors));
    }
}
