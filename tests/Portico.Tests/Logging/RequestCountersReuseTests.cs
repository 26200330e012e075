using Microsoft.AspNetCore.Http;
using Portico.Logging;
using Portico.Tests.Pipeline;

namespace Portico.Tests.Logging;

public class RequestCountersReuseTests
{
    [Fact]
    public async Task ReusedCounters_AreLikeNew()
    {
        var first = new DefaultHttpContext();
        var used = RequestCounters.Install(first)!;
        await first.Response.Body.WriteAsync("0123456789"u8.ToArray());
        used.Finish(completed: true);
        ReuseAssert.Dirty(used, "_http", "_inner");

        var second = new DefaultHttpContext();
        var reused = RequestCounters.Install(second, used)!;
        Assert.Same(used, reused);
        var fresh = RequestCounters.Install(new DefaultHttpContext())!;
        // Install wraps each request body anew (_requestBody).
        ReuseAssert.LikeNew(reused, fresh, "_http", "_inner", "_requestBody");
        Assert.False(reused.Finished);
    }
}
