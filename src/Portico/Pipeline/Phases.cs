namespace Portico.Pipeline;

/// <summary>What a phase handler tells the engine to do next.</summary>
public enum Flow
{
    /// <summary>Go on with the next handler, then the next phase.</summary>
    Continue,

    /// <summary>The response is complete; only the log phase remains.</summary>
    Done,

    /// <summary>Respond with <see cref="RequestContext.Status"/>: error_page, or nginx's default page.</summary>
    Finalize,

    /// <summary>The URI changed ("rewrite ... last"): find the location again.</summary>
    Restart,

    /// <summary>An internal redirect was set up (URI or named location): process it from the top.</summary>
    Redirect,
}

/// <summary>nginx's request phases that hold handlers, in order.</summary>
public enum Phase
{
    /// <summary>Once per request, before server rewrite; not run again after internal redirects.</summary>
    PostRead,
    ServerRewrite,
    Rewrite,
    PreAccess,
    Access,
    PreContent,
    Content,
    Log,
}

/// <summary>A step in a phase. Most complete synchronously; the ValueTask costs nothing then.</summary>
public abstract class PhaseHandler
{
    public abstract ValueTask<Flow> InvokeAsync(RequestContext r);
}

/// <summary>The one handler of a location that produces the response (proxy, static, return, api ...).</summary>
public abstract class ContentHandler
{
    public abstract ValueTask<Flow> HandleAsync(RequestContext r);
}

/// <summary>Runs once the request is over (access log, counters); never fails the request.</summary>
public abstract class LogHandler
{
    public abstract void Log(RequestContext r);
}

/// <summary>Turns a final status into an error_page redirect when the location has one.</summary>
public interface IErrorPages
{
    /// <summary>True with <paramref name="flow"/> set when an error_page applies to the status.</summary>
    bool TryHandle(RequestContext r, int status, out Flow flow);

    /// <summary>Whether an error_page names the status (no side effects; proxy_intercept_errors asks this).</summary>
    bool Has(int status) => false;
}

/// <summary>Changes response headers before they are sent, whatever produced the response.</summary>
public abstract class HeaderFilter
{
    public abstract void Apply(RequestContext r);
}
