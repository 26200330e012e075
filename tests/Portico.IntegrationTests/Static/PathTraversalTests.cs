using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Static;

/// <summary>Traversal encodings sent raw: none may return a file outside the root.</summary>
public class PathTraversalTests
{
    private const string Secret = "TOP-SECRET-8c1f";

    public static TheoryData<string> Targets => new()
    {
        "/../secret.txt",
        "/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2E/secret.txt",
        "/html/..%2fsecret.txt",
        "/a/..%2f..%2f..%2fsecret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/..%5csecret.txt",
        "/..%5c..%5csecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%c0%ae%c0%ae%c0%afsecret.txt",
        "/%252e%252e/secret.txt",
        "/..;/secret.txt",
        "/%00/../secret.txt",
        "/a.txt%00/../../secret.txt",
        "//..//secret.txt",
        "/./.././secret.txt",
        "/\\..\\secret.txt",
        "/i../secret.txt",
        "/i/../../secret.txt",
        "/i..%2fsecret.txt",
        "/dl/..%2f..%2fsecret.txt",
        "/dl/../../secret.txt",
        "http://x/../secret.txt",
    };

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task NeverServesAFileOutsideTheRoot(string target)
    {
        await using var p = await PorticoInstance.StartHttpAsync("""
            server {
                listen 127.0.0.1:{port};
                root {prefix}/site/html;
                location /i { alias {prefix}/site/html/img/; }
                location ~ ^/dl/(.+)$ { alias {prefix}/site/html/files/$1; }
            }
            """);
        p.Dir.Write("site/secret.txt", Secret);
        p.Dir.Write("site/html/a.txt", "public");
        p.Dir.Write("site/html/img/logo.txt", "logo");
        p.Dir.Write("site/html/files/f.txt", "file");

        var response = await p.RawAsync($"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        Assert.DoesNotContain(Secret, response);
        Assert.Matches("^HTTP/1.1 (400|404) ", response);

        // The same server still serves what is inside the root.
        Assert.Equal("logo", await p.Client.GetStringAsync("/i/logo.txt"));
        Assert.Equal("file", await p.Client.GetStringAsync("/dl/f.txt"));
    }

    [Fact]
    public async Task AliasOfALocationWithoutTrailingSlashIsRefusedAndLogged()
    {
        await using var p = await PorticoInstance.StartHttpAsync(
            "server { listen 127.0.0.1:{port}; location /i { alias {prefix}/site/html/img/; } }");
        p.Dir.Write("site/html/secret.txt", Secret);
        var response = await p.RawAsync("GET /i../secret.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 404 ", response);
        Assert.Contains($"\"{p.Dir.Path}/site/html/img/../secret.txt\" is outside the document root, refused", await p.ReadErrorLogAsync());
    }
}
