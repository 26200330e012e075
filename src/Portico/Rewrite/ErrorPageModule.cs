using Microsoft.AspNetCore.Http;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Rewrite;

/// <summary>One status of an error_page directive: what to do when a request ends with it.</summary>
public sealed class ErrorPageSpec
{
    public ErrorPageSpec(int status, int overwrite, ValueTemplate value, string? args, Directive source)
    {
        Status = status;
        Overwrite = overwrite;
        Value = value;
        Args = args;
        Source = source;
    }

    public int Status { get; }

    /// <summary>-1: keep the status; 0: "=" (the redirected request's status); otherwise "=code".</summary>
    public int Overwrite { get; }

    /// <summary>The URI (before "?" when constant), "@name" or URL.</summary>
    public ValueTemplate Value { get; }

    /// <summary>The arguments of a constant URI ("/err?x=1"), split at configuration time as nginx does.</summary>
    public string? Args { get; }

    public Directive Source { get; }
}

/// <summary>error_page and recursive_error_pages of one level; the list is replaced, not merged, per level.</summary>
public sealed class ErrorPageSettings : Settings<ErrorPageSettings>
{
    public List<ErrorPageSpec>? Pages { get; set; }
    public bool? Recursive { get; set; }

    public override void MergeFrom(ErrorPageSettings parent)
    {
        Pages ??= parent.Pages;
        Recursive ??= parent.Recursive ?? false;
    }
}

/// <summary>
/// nginx's error_page and recursive_error_pages (ngx_http_core_module): a final status becomes an internal
/// redirect to a URI (the method becomes GET, HEAD stays), a redirect to a named location, or a 302 (or
/// "=30x") to a URL.
/// </summary>
public sealed class ErrorPageModule : PorticoModule
{
    public override string Name => "error_page";

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<ErrorPageSettings>(SettingsScope.Location);
        r.Add(new DirectiveSpec("error_page", Ctx.HttpServerLocation | Ctx.LocationIf, Arity.TwoOrMore, Bind)
        {
            Repeatable = true,
            Module = "http_core",
        });
        r.Add(new DirectiveSpec("recursive_error_pages", Ctx.HttpServerLocation, Arity.Flag,
            c => c.Loc<ErrorPageSettings>().Recursive = c.Flag(0)) { Module = "http_core" });
    }

    /// <summary>ngx_http_core_error_page's parsing, in nginx's order and words.</summary>
    public static void Bind(DirectiveCall c)
    {
        var settings = c.Loc<ErrorPageSettings>();
        settings.Pages ??= [];

        var overwrite = -1;
        var codes = c.Count - 1;
        var candidate = c[c.Count - 2];
        if (candidate.Length > 0 && candidate[0] == '=')
        {
            if (c.Count == 2)
            {
                throw c.Emerg($"invalid value \"{candidate}\"");
            }

            if (candidate.Length > 1)
            {
                if (!ConfigValues.TryParseNumber(candidate[1..], out var code) || code > int.MaxValue)
                {
                    throw c.Emerg($"invalid value \"{candidate}\"");
                }

                overwrite = (int)code;
            }
            else
            {
                overwrite = 0;
            }

            codes--;
        }

        var uri = c[c.Count - 1];
        var value = c.Template(c.Count - 1);
        string? args = null;
        if (value.IsConstant && uri.Length > 0 && uri[0] == '/')
        {
            var question = uri.IndexOf('?', StringComparison.Ordinal);
            if (question >= 0)
            {
                value = ValueTemplate.Constant(uri[..question], c.Directive.File, c.Directive.Line);
                args = uri[(question + 1)..];
            }
        }

        for (var i = 0; i < codes; i++)
        {
            var text = c[i];
            if (!ConfigValues.TryParseNumber(text, out var status) || status == 499)
            {
                throw c.Emerg($"invalid value \"{text}\"");
            }

            if (status < 300 || status > 599)
            {
                throw c.Emerg($"value \"{text}\" must be between 300 and 599");
            }

            var own = overwrite;
            if (own == -1 && status is 494 or 495 or 496 or 497)
            {
                own = 400;
            }

            settings.Pages.Add(new ErrorPageSpec((int)status, own, value, args, c.Directive));
        }
    }

    public override void CompileLocation(LocationCompiler location)
    {
        var settings = location.Settings<ErrorPageSettings>();
        if (settings.Pages is not { Count: > 0 } pages)
        {
            return;
        }

        var cache = location.Snapshot.Snapshot.Feature<CompiledPages>();
        if (cache is null)
        {
            cache = new CompiledPages();
            location.Snapshot.Snapshot.SetFeature(cache);
        }

        if (!cache.Lists.TryGetValue(pages, out var entries))
        {
            entries = new Dictionary<int, ErrorPage>();
            foreach (var spec in pages)
            {
                // The first error_page for a status wins, as nginx's linear search does.
                entries.TryAdd(spec.Status, new ErrorPage(spec.Overwrite, location.Compile(spec.Value), spec.Args, !spec.Value.IsConstant));
            }

            cache.Lists.Add(pages, entries);
        }

        location.SetErrorPages(new ErrorPages(entries, settings.Recursive == true));
    }

    /// <summary>Compiled error_page lists of a snapshot, shared by the levels that inherit them.</summary>
    private sealed class CompiledPages
    {
        public Dictionary<List<ErrorPageSpec>, Dictionary<int, ErrorPage>> Lists { get; } = new(ReferenceEqualityComparer.Instance);
    }
}

/// <summary>A compiled error_page entry.</summary>
public sealed record ErrorPage(int Overwrite, CompiledTemplate Value, string? Args, bool HasVariables);

/// <summary>The error pages of a location (nginx's ngx_http_send_error_page).</summary>
public sealed class ErrorPages : IErrorPages
{
    private readonly Dictionary<int, ErrorPage> _pages;
    private readonly bool _recursive;

    public ErrorPages(Dictionary<int, ErrorPage> pages, bool recursive)
    {
        _pages = pages;
        _recursive = recursive;
    }

    public bool Has(int status) => _pages.ContainsKey(status);

    public bool TryHandle(RequestContext r, int status, out Flow flow)
    {
        flow = Flow.Finalize;
        if (!_recursive)
        {
            r.ErrorPageDone = true;
        }

        if (!_pages.TryGetValue(status, out var page))
        {
            return false;
        }

        r.StatusOverride = page.Overwrite >= 0 ? page.Overwrite : status;
        var uri = page.Value.Evaluate(r);
        if (uri.Length > 0 && uri[0] == '/')
        {
            var args = page.Args ?? string.Empty;
            if (page.HasVariables)
            {
                var question = uri.IndexOf('?', StringComparison.Ordinal);
                if (question >= 0)
                {
                    args = uri[(question + 1)..];
                    uri = uri[..question];
                }
            }

            if (!HttpMethods.IsHead(r.Method))
            {
                r.Method = HttpMethods.Get;
            }

            r.Status = 0;
            flow = r.InternalRedirect(uri, args);
            return true;
        }

        if (uri.Length > 0 && uri[0] == '@')
        {
            r.Status = 0;
            if (r.Server.Named.TryGetValue(uri, out var named))
            {
                flow = r.NamedRedirect(named);
                return true;
            }

            // ngx_http_named_location counts the redirect before it looks the name up.
            if (--r.UriChangesLeft == 0)
            {
                r.LogError(LogLevel.Error, $"rewrite or internal redirection cycle while redirect to named location \"{uri}\"");
            }
            else
            {
                r.LogError(LogLevel.Error, $"could not find named location \"{uri}\"");
            }

            r.StatusOverride = 0;
            flow = r.Finish(500);
            return true;
        }

        // A URL: nginx answers with a redirect (302 unless "=301/302/303/307/308" was given).
        var code = page.Overwrite is 301 or 302 or 303 or 307 or 308 ? page.Overwrite : 302;
        r.StatusOverride = 0;
        r.Http.Response.Headers.Location = UriEscape.ForHeader(uri);
        if (r.Location.Get<HttpCoreSettings>().MsieRefresh == true && SpecialResponse.IsMsie(r.Http.Request.Headers.UserAgent.ToString()))
        {
            r.SetItem(SpecialResponse.RefreshKey, SpecialResponse.RefreshKey);
        }

        flow = r.Finish(code);
        return true;
    }
}
