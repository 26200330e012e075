using Portico.Config.Syntax;
using Portico.Routing;

namespace Portico.Pipeline;

/// <summary>
/// Walks a request through nginx's phases: server rewrite → find config → rewrite (→ find config again
/// while the URI changes) → pre-access → access → pre-content → content, then finalizes with error_page
/// or nginx's default page. Internal redirects re-enter at server rewrite (URIs) or rewrite (@named).
/// </summary>
public static class RequestPipeline
{
    private enum Stage
    {
        PostRead,
        ServerRewrite,
        FindConfig,
        Rewrite,
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder))]
    public static async ValueTask RunAsync(RequestContext r)
    {
        var stage = r.Server.PostRead.Length > 0 ? Stage.PostRead : Stage.ServerRewrite;
        while (true)
        {
            Flow flow;
            switch (stage)
            {
                case Stage.PostRead:
                    r.Location = r.Server.ServerLevel;
                    flow = await RunAsync(r.Server.PostRead, r).ConfigureAwait(false);
                    if (flow == Flow.Continue)
                    {
                        stage = Stage.ServerRewrite;
                        continue;
                    }

                    break;

                case Stage.ServerRewrite:
                    r.Location = r.Server.ServerLevel;
                    flow = await RunAsync(r.Server.ServerRewrite, r).ConfigureAwait(false);
                    if (flow == Flow.Continue || flow == Flow.Restart)
                    {
                        stage = Stage.FindConfig;
                        continue;
                    }

                    break;

                case Stage.FindConfig:
                    flow = FindConfig(r);
                    if (flow == Flow.Continue)
                    {
                        stage = Stage.Rewrite;
                        continue;
                    }

                    break;

                default:
                    flow = await RunAsync(r.Location.Rewrite, r).ConfigureAwait(false);
                    if (flow == Flow.Continue)
                    {
                        flow = await RunContentPhasesAsync(r).ConfigureAwait(false);
                    }

                    break;
            }

            switch (flow)
            {
                case Flow.Restart:
                    if (--r.UriChangesLeft == 0)
                    {
                        r.LogError(LogLevel.Error, $"rewrite or internal redirection cycle while processing \"{r.Uri}\"");
                        r.Status = 500;
                        goto case Flow.Finalize;
                    }

                    stage = Stage.FindConfig;
                    continue;

                case Flow.Redirect:
                    if (--r.UriChangesLeft == 0)
                    {
                        r.LogError(LogLevel.Error, r.RedirectNamed is { } cycleNamed
                            ? $"rewrite or internal redirection cycle while redirect to named location \"{cycleNamed.Name}\""
                            : $"rewrite or internal redirection cycle while internally redirecting to \"{r.Uri}\"");
                        r.Status = 500;
                        goto case Flow.Finalize;
                    }

                    if (r.RedirectNamed is { } named)
                    {
                        r.Location = named;
                        r.RedirectNamed = null;
                        stage = Stage.Rewrite;
                    }
                    else
                    {
                        stage = Stage.ServerRewrite;
                    }

                    continue;

                case Flow.Finalize:
                    // 408, 444 and 499 close the connection before error_page is consulted (ngx_http_finalize_request).
                    if (!r.Http.Response.HasStarted && r.Status >= 300 && r.Status is not (408 or 444 or 499) && !r.ErrorPageDone && r.UriChangesLeft > 0
                        && r.Location.ErrorPages is { } pages && pages.TryHandle(r, r.Status, out var next))
                    {
                        if (next == Flow.Redirect)
                        {
                            goto case Flow.Redirect;
                        }

                        if (next != Flow.Finalize)
                        {
                            return;
                        }
                    }

                    await SpecialResponse.SendAsync(r).ConfigureAwait(false);
                    return;

                default:
                    return;
            }
        }
    }

    private static Flow FindConfig(RequestContext r)
    {
        var match = r.Server.Locations.Find(r.Uri, r);
        var location = match.Location ?? r.Server.ServerLevel;
        r.Location = location;
        if (location.Internal && !r.Internal)
        {
            return r.Finish(404);
        }

        if (match.Redirect)
        {
            // nginx's auto redirect: "/dir" to a location "/dir/" that proxies.
            var target = Escape(location.Block!.Pattern);
            r.Http.Response.Headers.Location = r.Args.Length == 0 ? target : target + "?" + r.Args;
            return r.Finish(301);
        }

        return Flow.Continue;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private static async ValueTask<Flow> RunContentPhasesAsync(RequestContext r)
    {
        var location = r.Location;
        var flow = await RunAsync(location.PreAccess, r).ConfigureAwait(false);
        if (flow != Flow.Continue)
        {
            return flow;
        }

        flow = await RunAsync(location.Access, r).ConfigureAwait(false);
        if (flow != Flow.Continue)
        {
            return flow;
        }

        flow = await RunAsync(location.PreContent, r).ConfigureAwait(false);
        if (flow != Flow.Continue)
        {
            return flow;
        }

        var content = r.Location.Content ?? r.Snapshot.DefaultContent;
        if (content is null)
        {
            return r.Finish(404);
        }

        flow = await content.HandleAsync(r).ConfigureAwait(false);
        return flow == Flow.Continue ? Flow.Done : flow;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(Portico.Hosting.PooledValueTaskBuilder<>))]
    private static async ValueTask<Flow> RunAsync(PhaseHandler[] handlers, RequestContext r)
    {
        for (var i = 0; i < handlers.Length; i++)
        {
            var task = handlers[i].InvokeAsync(r);
            var flow = task.IsCompletedSuccessfully ? task.Result : await task.ConfigureAwait(false);
            if (flow != Flow.Continue)
            {
                return flow;
            }
        }

        return Flow.Continue;
    }

    /// <summary>ngx_escape_uri for a location name in a redirect (spaces, controls, "%", "?", "#", non-ASCII).</summary>
    public static string Escape(string uri)
    {
        var needs = false;
        foreach (var c in uri)
        {
            if (c <= ' ' || c >= 0x7F || c is '%' or '?' or '#' or '"')
            {
                needs = true;
                break;
            }
        }

        if (!needs)
        {
            return uri;
        }

        var sb = new System.Text.StringBuilder(uri.Length + 16);
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(uri))
        {
            if (b <= ' ' || b >= 0x7F || b is (byte)'%' or (byte)'?' or (byte)'#' or (byte)'"')
            {
                sb.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append((char)b);
            }
        }

        return sb.ToString();
    }
}
