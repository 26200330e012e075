using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Http;
using Portico.Compilation;
using Portico.Config.Directives;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Pipeline;
using Portico.Variables;

namespace Portico.Rewrite;

/// <summary>return code [text|URL]; return URL.</summary>
public sealed class ReturnSpec : StepSpec
{
    private readonly int _code;
    private readonly ValueTemplate? _text;

    private ReturnSpec(Directive source, int code, ValueTemplate? text) : base(source)
    {
        _code = code;
        _text = text;
    }

    public static bool IsRedirect(int code) => code is 301 or 302 or 303 or 307 or 308;

    /// <summary>ngx_http_rewrite_return's checks, in nginx's words.</summary>
    public static ReturnSpec Bind(DirectiveCall c)
    {
        var first = c[0];
        if (ConfigValues.TryParseNumber(first, out var code))
        {
            if (code > 999)
            {
                throw c.Emerg($"invalid return code \"{first}\"");
            }

            return new ReturnSpec(c.Directive, (int)code, c.Count == 2 ? c.Template(1) : null);
        }

        if (c.Count == 1 && (first.StartsWith("http://", StringComparison.Ordinal) || first.StartsWith("https://", StringComparison.Ordinal)
            || first.StartsWith("$scheme", StringComparison.Ordinal)))
        {
            return new ReturnSpec(c.Directive, 302, c.Template(0));
        }

        throw c.Emerg($"invalid return code \"{first}\"");
    }

    public override ScriptStep Compile(LocationCompiler location) =>
        new ReturnStep(_code, _text is null ? null : location.Compile(_text));
}

public sealed class ReturnStep : ScriptStep
{
    private readonly int _code;
    private readonly CompiledTemplate? _text;

    // A text without variables is encoded once, when the configuration is compiled.
    private readonly byte[]? _constantBody;

    public ReturnStep(int code, CompiledTemplate? text)
    {
        _code = code;
        _text = text;
        if (text is { IsConstant: true } && !ReturnSpec.IsRedirect(code))
        {
            _constantBody = Encoding.UTF8.GetBytes(text.Constant!);
        }
    }

    public override async ValueTask<StepResult> ExecuteAsync(RequestContext r, ScriptState state)
    {
        if (_code == 444)
        {
            return StepResult.With(r.Finish(444));
        }

        if (_text is null && _code >= 400)
        {
            return StepResult.With(r.Finish(_code));
        }

        // ngx_http_send_response sets the status before the text is evaluated ($status sees it).
        r.Status = _code;
        if (_constantBody is { } constant)
        {
            await SendBodyAsync(r, _code, constant).ConfigureAwait(false);
            return StepResult.With(Flow.Done);
        }

        var text = _text?.Evaluate(r) ?? string.Empty;
        if (ReturnSpec.IsRedirect(_code))
        {
            r.Http.Response.Headers.Location = UriEscape.ForHeader(text);
            return StepResult.With(r.Finish(_code));
        }

        await SendTextAsync(r, _code, text).ConfigureAwait(false);
        return StepResult.With(Flow.Done);
    }

    /// <summary>ngx_http_send_response: the text as the body, typed with default_type.</summary>
    public static async ValueTask SendTextAsync(RequestContext r, int status, string text)
    {
        // Encoded into a pooled buffer: the response body writes copy what they are given before they return.
        var buffer = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(text.Length));
        try
        {
            var length = Encoding.UTF8.GetBytes(text, buffer);
            await SendBodyAsync(r, status, buffer.AsMemory(0, length)).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>ngx_http_send_response with the text already encoded.</summary>
    private static async ValueTask SendBodyAsync(RequestContext r, int status, ReadOnlyMemory<byte> body)
    {
        var response = r.Http.Response;
        r.Status = status;
        response.StatusCode = status;
        var noBody = status is 204 or 304 || status < 200;
        if (status is not 204 && status >= 200)
        {
            // nginx keeps the type and length of a 304 (its header filter drops them only for 204).
            response.ContentType = r.Location.Get<HttpCoreSettings>().DefaultType;
            response.ContentLength = body.Length;
        }

        ResponseStart.Apply(r);
        if (!noBody && body.Length > 0 && !HttpMethods.IsHead(r.Http.Request.Method))
        {
            await response.Body.WriteAsync(body, r.Http.RequestAborted).ConfigureAwait(false);
        }
    }
}
