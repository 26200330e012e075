using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Variables;

namespace Portico.Headers;

/// <summary>
/// ngx_http_headers_filter_module: add_header and expires as a header filter of every location, so they apply
/// to whatever produced the response (static files, return, error pages, proxied responses).
/// </summary>
public sealed class HeadersModule : PorticoModule
{
    public override string Name => "headers";

    public override void Register(DirectiveRegistry r)
    {
        r.AddSettings<HeadersSettings>(SettingsScope.Location);
        const Ctx ctx = Ctx.HttpServerLocation | Ctx.LocationIf;
        r.Add(new DirectiveSpec("expires", ctx, Arity.Range(1, 2), Expires) { Module = Name });
        r.Add(new DirectiveSpec("add_header", ctx, Arity.Range(2, 3), AddHeader) { Module = Name, Repeatable = true });
        r.Add(new DirectiveSpec("add_trailer", ctx, Arity.Range(2, 3), AddTrailer) { Module = Name, Repeatable = true });
    }

    /// <summary>ngx_http_headers_expires.</summary>
    private static void Expires(DirectiveCall c)
    {
        var settings = c.Loc<HeadersSettings>();
        ExpiresKind kind;
        string value;
        if (c.Count == 1)
        {
            kind = ExpiresKind.Access;
            value = c[0];
        }
        else
        {
            if (c[0] != "modified")
            {
                throw c.Error("invalid value");
            }

            kind = ExpiresKind.Modified;
            value = c[1];
        }

        var template = ValueTemplate.Parse(value, c.Directive);
        if (!template.IsConstant)
        {
            settings.Expires = new ExpiresSpec(kind, 0, template);
            return;
        }

        var error = ExpiresParser.Parse(value, ref kind, out var seconds);
        if (error is not null)
        {
            throw c.Error(error);
        }

        settings.Expires = new ExpiresSpec(kind, seconds, null);
    }

    /// <summary>
    /// add_trailer is refused: nginx sends trailers at the end of a chunked HTTP/1.1 body, which Kestrel cannot
    /// write (it sends trailers on HTTP/2 only). Accepting it would silently drop the trailers.
    /// </summary>
    private static void AddTrailer(DirectiveCall c) =>
        throw c.Emerg("the \"add_trailer\" directive is not supported by Portico: Kestrel cannot send HTTP/1.1 response trailers");

    /// <summary>ngx_http_headers_add.</summary>
    private static void AddHeader(DirectiveCall c)
    {
        var settings = c.Loc<HeadersSettings>();
        var name = c[0];
        var kind = HeaderKind.Add;
        if (name.Equals("Cache-Control", StringComparison.OrdinalIgnoreCase) || name.Equals("Link", StringComparison.OrdinalIgnoreCase))
        {
            kind = HeaderKind.Multi;
        }
        else if (name.Equals("Last-Modified", StringComparison.OrdinalIgnoreCase))
        {
            kind = HeaderKind.LastModified;
        }
        else if (name.Equals("ETag", StringComparison.OrdinalIgnoreCase))
        {
            kind = HeaderKind.ETag;
        }

        var value = c[1].Length == 0 ? null : c.Template(1);
        var always = false;
        if (c.Count == 3)
        {
            if (c[2] != "always")
            {
                throw c.Emerg($"invalid parameter \"{c[2]}\"");
            }

            always = true;
        }

        (settings.Headers ??= []).Add(new HeaderSpec(name, value, always, kind));
    }

    public override void CompileLocation(LocationCompiler location)
    {
        var settings = location.Settings<HeadersSettings>();
        var expires = settings.Expires ?? ExpiresSpec.Off;
        var headers = settings.Headers;
        if (expires.Kind == ExpiresKind.Off && expires.Value is null && headers is null)
        {
            return;
        }

        var expiresValue = expires.Value is null ? null : location.Compile(expires.Value);
        location.AddHeaderFilter(new HeadersFilter(expires, expiresValue, Compile(location, headers)));
    }

    private static CompiledHeader[] Compile(LocationCompiler location, List<HeaderSpec>? specs)
    {
        if (specs is null)
        {
            return [];
        }

        var result = new CompiledHeader[specs.Count];
        for (var i = 0; i < result.Length; i++)
        {
            var s = specs[i];
            result[i] = new CompiledHeader(s.Name, s.Value is null ? null : location.Compile(s.Value), s.Always, s.Kind);
        }

        return result;
    }
}

/// <summary>An add_header ready for requests.</summary>
public sealed record CompiledHeader(string Name, CompiledTemplate? Value, bool Always, HeaderKind Kind);
