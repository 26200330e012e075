using Portico.Routing;
using Portico.Static;

namespace Portico.Tests.Routing;

/// <summary>Path traversal encodings against the URI normalizer: each is refused (400) or stays inside the root.</summary>
public class UriTraversalTests
{
    [Theory]
    [InlineData("/../etc/passwd")]
    [InlineData("/%2e%2e/etc/passwd")]
    [InlineData("/%2E%2E/%2E%2E/etc/passwd")]
    [InlineData("/a/..%2f..%2fetc/passwd")]
    [InlineData("/a/%2e%2e%2f%2e%2e%2fetc/passwd")]
    [InlineData("/.%2e/etc/passwd")]
    [InlineData("/%2e./etc/passwd")]
    [InlineData("/a/./../../etc/passwd")]
    [InlineData("//..//etc/passwd")]
    [InlineData("/a/b/../../../etc/passwd")]
    [InlineData("/%00/etc/passwd")]
    [InlineData("/a%00.txt")]
    [InlineData("/..")]
    public void ClimbingAboveTheRootIsRejected(string raw)
    {
        Assert.False(UriNormalizer.TryNormalize(raw, mergeSlashes: true, out _));
    }

    [Theory]
    [InlineData("/%zz")]
    [InlineData("/a%")]
    [InlineData("/a%2")]
    [InlineData("/a%2g")]
    [InlineData("/a.txt%")]
    [InlineData("/%%2e%2e/etc/passwd")]
    public void InvalidPercentEscapesAreRejectedAsNginxDoes(string raw)
    {
        // nginx 1.22 answers each of these with 400 Bad Request.
        Assert.False(UriNormalizer.TryNormalize(raw, mergeSlashes: true, out _));
    }

    [Theory]
    [InlineData("/..%5c..%5cetc/passwd", "/..\\..\\etc/passwd")]
    [InlineData("/%c0%ae%c0%ae/etc/passwd", "/\u00c0\u00ae\u00c0\u00ae/etc/passwd")]
    [InlineData("/%252e%252e/etc/passwd", "/%2e%2e/etc/passwd")]
    [InlineData("/static/..;/etc/passwd", "/static/..;/etc/passwd")]
    [InlineData("/a/b/../c", "/a/c")]
    [InlineData("/a/%2e%2e/c", "/c")]
    [InlineData("/a/...", "/a/...")]
    public void OtherEncodingsStayLiteral(string raw, string expected)
    {
        Assert.True(UriNormalizer.TryNormalize(raw, mergeSlashes: true, out var uri));
        Assert.Equal(expected, uri);
        Assert.False(DocumentRoot.HasDotDotSegment("/srv/www" + uri, "/srv/www".Length));
    }

    [Theory]
    [InlineData("/data/images/../secret", 13, true)]
    [InlineData("/data/images../secret", 12, false)]
    [InlineData("/srv/../www/a.txt", 11, false)]
    [InlineData("/srv/www/..", 8, true)]
    [InlineData("/srv/www/a..b/..c", 8, false)]
    public void DotDotSegmentsAfterTheRootAreDetected(string path, int literal, bool escapes)
    {
        Assert.Equal(escapes, DocumentRoot.HasDotDotSegment(path, literal));
    }
}
