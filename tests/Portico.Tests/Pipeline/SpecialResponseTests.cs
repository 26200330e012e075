using Portico.Pipeline;

namespace Portico.Tests.Pipeline;

/// <summary>nginx's default pages (ngx_http_special_response.c) and its browser detection.</summary>
public class SpecialResponseTests
{
    [Fact]
    public void NotFoundPage()
    {
        Assert.Equal(
            "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n"
            + "<hr><center>portico/" + Product.Version + "</center>\r\n</body>\r\n</html>\r\n",
            SpecialResponse.Body(404, ServerTokens.On, false));
        Assert.EndsWith("<hr><center>portico</center>\r\n</body>\r\n</html>\r\n", SpecialResponse.Body(404, ServerTokens.Off, false));
    }

    [Fact]
    public void CanceledRequestsGetTheNotFoundPage()
    {
        Assert.Equal(SpecialResponse.Body(404, ServerTokens.Off, false), SpecialResponse.Body(498, ServerTokens.Off, false));
    }

    [Fact]
    public void NginxCodesShowBadRequestWithADetail()
    {
        Assert.Equal(
            "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n"
            + "<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port</center>\r\n"
            + "<hr><center>portico</center>\r\n</body>\r\n</html>\r\n",
            SpecialResponse.Body(497, ServerTokens.Off, false));
        Assert.Equal(400, SpecialResponse.WireStatus(497));
    }

    [Fact]
    public void PaddingOnlyForErrors()
    {
        Assert.Contains("a padding to disable MSIE and Chrome friendly error page", SpecialResponse.Body(500, ServerTokens.On, true));
        Assert.DoesNotContain("padding", SpecialResponse.Body(302, ServerTokens.On, true));
    }

    [Fact]
    public void PageBytesAreMadeOnceForEachForm()
    {
        var on = SpecialResponse.BodyBytes(502, ServerTokens.On, false);
        Assert.Equal(System.Text.Encoding.ASCII.GetBytes(SpecialResponse.Body(502, ServerTokens.On, false)!), on);
        Assert.Same(on, SpecialResponse.BodyBytes(502, ServerTokens.On, false));

        // Each server_tokens form and the padding have their own page.
        Assert.Equal(System.Text.Encoding.ASCII.GetBytes(SpecialResponse.Body(502, ServerTokens.Off, false)!), SpecialResponse.BodyBytes(502, ServerTokens.Off, false));
        Assert.Equal(System.Text.Encoding.ASCII.GetBytes(SpecialResponse.Body(502, ServerTokens.On, true)!), SpecialResponse.BodyBytes(502, ServerTokens.On, true));
        Assert.Equal(System.Text.Encoding.ASCII.GetBytes(SpecialResponse.Body(504, ServerTokens.On, false)!), SpecialResponse.BodyBytes(504, ServerTokens.On, false));
        Assert.Null(SpecialResponse.BodyBytes(204, ServerTokens.On, false));
        Assert.Null(SpecialResponse.BodyBytes(204, ServerTokens.On, false)); // a status without a page stays without one once cached
    }

    [Theory]
    [InlineData(201)]
    [InlineData(204)]
    [InlineData(418)]
    [InlineData(506)]
    [InlineData(304)]
    public void CodesWithoutAPage(int status)
    {
        Assert.Null(SpecialResponse.Body(status, ServerTokens.On, false));
    }

    [Theory]
    [InlineData("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)", true, false)]
    [InlineData("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1) Opera 9", false, false)]
    [InlineData("MSIE 6", false, false)]
    [InlineData("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", false, true)]
    [InlineData("Mozilla/5.0 (X11; rv:109.0) Gecko/20100101 Firefox/119.0 Chrome/1", false, false)]
    [InlineData("curl/8.0", false, false)]
    public void BrowserDetection(string userAgent, bool msie, bool chrome)
    {
        Assert.Equal(msie, SpecialResponse.IsMsie(userAgent));
        Assert.Equal(chrome, SpecialResponse.IsChrome(userAgent));
    }

    [Theory]
    [InlineData(302, "Moved Temporarily")]
    [InlineData(503, "Service Temporarily Unavailable")]
    [InlineData(504, "Gateway Time-out")]
    [InlineData(404, null)]
    public void StatusLines(int status, string? reason)
    {
        Assert.Equal(reason, ResponseStart.StatusLine(status));
    }
}
