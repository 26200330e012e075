using System.Runtime.CompilerServices;
using Portico.ClientSide;
using Portico.Proxy;
using Portico.Tests.Logging;
using Portico.Tests.Pipeline;
using Portico.Upstreams;

namespace Portico.Tests.Proxy;

/// <summary>The proxy's per-request objects that a later request reuses start as new ones would.</summary>
public class ProxyReuseTests
{
    [Fact]
    public void ResponseBuffer_Reset_IsLikeNew()
    {
        var (r, _) = LogFormatTests.Request(_ => { });
        var temp = new TempPath("/tmp", []);
        var used = new ResponseBuffer(r, Stream.Null, 1, 2, temp, 3, 4, ignoreClientAbort: true);
        ReuseAssert.Dirty(used, "_gate", "_queue", "_time", "_r", "_client", "_tempPath");

        var (r2, _) = LogFormatTests.Request(_ => { });
        var client = new MemoryStream();
        used.Reset(r2, client, 10, 20, temp, 0, 0);

        ReuseAssert.LikeNew(used, new ResponseBuffer(r2, client, 10, 20, temp, 0, 0), "_gate", "_queue", "_started");
    }

    [Fact]
    public async Task ResponseBuffer_Reset_CarriesNoBytesOver()
    {
        var (r, _) = LogFormatTests.Request(_ => { });
        var temp = new TempPath("/tmp", []);
        var first = new MemoryStream();
        var buffer = new ResponseBuffer(r, first, 1024, 0, temp, 0, 0);
        await buffer.WriteAsync("first"u8.ToArray());
        buffer.Complete();
        await buffer.Drained;

        var second = new MemoryStream();
        buffer.Reset(r, second, 1024, 0, temp, 0, 0);
        await buffer.WriteAsync("second"u8.ToArray());
        buffer.Complete();
        await buffer.Drained;

        Assert.Equal("first", System.Text.Encoding.ASCII.GetString(first.ToArray()));
        Assert.Equal("second", System.Text.Encoding.ASCII.GetString(second.ToArray()));
        Assert.Equal(6, buffer.Received);
    }

    [Fact]
    public void ProxyResponse_Begin_IsLikeNew()
    {
        var (r, _) = LogFormatTests.Request(_ => { });
        var loc = (ProxyLocation)RuntimeHelpers.GetUninitializedObject(typeof(ProxyLocation));
        var states = new UpstreamStates();
        var used = new ProxyResponse(r, loc, new UpstreamStates(), null!, "POST", streamedBody: true);
        ReuseAssert.Dirty(used, "_spareBuffer", "_spareSink", "<Buffer>k__BackingField", "_sink");

        used.Begin(r, loc, states, null!, "GET", streamedBody: false);

        ReuseAssert.LikeNew(used, new ProxyResponse(r, loc, states, null!, "GET", streamedBody: false), "_spareBuffer", "_spareSink");
    }

    [Fact]
    public void ProxyRun_Start_OnAReusedRun_IsLikeNew()
    {
        var (r, _) = LogFormatTests.Request(_ => { });
        var url = ProxyUrl.Parse("http://backend/x", out _, runtime: true)!;
        var used = ProxyRun.Start(r, url);
        used.SetLogUpstream(r, "http://", "127.0.0.1:1", "/x");
        Assert.Equal("http://127.0.0.1:1/x", used.ToString());
        ReuseAssert.Dirty(used);

        r.Reuse(r.Http, r.Snapshot, r.Listener, r.Connection);
        var again = ProxyRun.Start(r, url);

        Assert.Same(used, again);
        ReuseAssert.LikeNew(again, new ProxyRun(url));
        Assert.Same(again, ProxyRun.Of(r));
    }

    [Fact]
    public void UpstreamRequest_Release_IsLikeANewEmptyOne()
    {
        var used = new Portico.Upstreams.Transport.UpstreamRequest(empty: true);
        ReuseAssert.Dirty(used);

        used.Release();

        ReuseAssert.LikeNew(used, new Portico.Upstreams.Transport.UpstreamRequest(empty: true));
    }

    [Fact]
    public void TimedResponseBody_OfALaterRequest_IsLikeNew()
    {
        var (r, _) = LogFormatTests.Request(_ => { });
        var used = TimedResponseBodyFeature.Install(r, TimeSpan.FromSeconds(1));
        _ = used.Writer;
        ReuseAssert.Dirty(used, "_stream", "_inner", "_r");

        r.Reuse(r.Http, r.Snapshot, r.Listener, r.Connection);
        var again = TimedResponseBodyFeature.Install(r, TimeSpan.FromSeconds(60));

        var (other, _) = LogFormatTests.Request(_ => { });
        Assert.Same(used, again);
        ReuseAssert.LikeNew(again, TimedResponseBodyFeature.Install(other, TimeSpan.FromSeconds(60)), "_stream", "_inner", "_r");
        Assert.Same(r, typeof(TimedResponseBodyFeature).GetField("_r", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!.GetValue(again));
    }

    [Fact]
    public void UpstreamAttemptState_Reset_IsLikeNew()
    {
        var used = new UpstreamAttemptState { Peer = "a" };
        ReuseAssert.Dirty(used);

        used.Reset("b");

        ReuseAssert.LikeNew(used, new UpstreamAttemptState { Peer = "b" });
    }

    [Fact]
    public void UpstreamStates_Reset_ForgetsTheAttemptsAndHeaders()
    {
        var states = new UpstreamStates();
        states.Add("127.0.0.1:1").Status = 502;
        states.BeginExchange();
        states.Add("127.0.0.1:2").Status = 200;
        states.ResponseHeaders = [new("X", "1")];
        states.ResponseTrailers = [new("T", "1")];

        states.Reset();
        var again = states.Add("127.0.0.1:3");

        Assert.Single(states.Attempts);
        Assert.Equal("127.0.0.1:3", again.Peer);
        Assert.Equal(0, again.Status);
        Assert.Equal(-1, again.ResponseTime);
        Assert.Null(states.ResponseHeaders);
        Assert.Null(states.ResponseTrailers);
        Assert.Equal("127.0.0.1:3", states.Format(a => a.Peer ?? "?"));
    }
}
