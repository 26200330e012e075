using System.Net;
using Microsoft.AspNetCore.Http;
using Portico.Pipeline;
using Portico.Tests.Logging;

namespace Portico.Tests.Pipeline;

public class RequestContextReuseTests
{
    private static readonly RequestKey StateKey = new();
    private static readonly RequestKey PlainKey = new();

    private sealed class State : IReusableState
    {
    }

    [Fact]
    public void ReusedContext_IsLikeANewOneForTheNextRequest()
    {
        var (used, _) = LogFormatTests.Request(_ => { });
        ReuseAssert.Dirty(used, "_reusable");

        var (fresh, _) = LogFormatTests.Request(h => h.Request.Method = "POST");
        var connection = new ClientConnection(IPAddress.Loopback, 1, IPAddress.Loopback, 2);
        used.Reuse(fresh.Http, fresh.Snapshot, fresh.Listener, connection);

        ReuseAssert.LikeNew(used, new RequestContext(fresh.Http, fresh.Snapshot, fresh.Listener, connection), "_reusable", "StartTimestamp");
        Assert.Equal("POST", used.Method);
    }

    [Fact]
    public void ReusableState_PassesToTheNextRequestOnce_PlainStateDoesNot()
    {
        var (r, _) = LogFormatTests.Request(_ => { });
        var state = new State();
        r.SetItem(StateKey, state);
        r.SetItem(PlainKey, new object());
        Assert.Null(r.TakeReusable<State>(StateKey));

        r.Reuse(r.Http, r.Snapshot, r.Listener, r.Connection);

        Assert.Null(r.GetItem<State>(StateKey));
        Assert.Same(state, r.TakeReusable<State>(StateKey));
        Assert.Null(r.TakeReusable<State>(StateKey));
        Assert.Null(r.TakeReusable<object>(PlainKey));
    }
}
