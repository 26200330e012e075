using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Portico.IntegrationTests.Infrastructure;

/// <summary>What an origin saw of one request.</summary>
public sealed record SeenRequest(string Method, string RawTarget, string Protocol, IReadOnlyDictionary<string, string> Headers, byte[] Body, string RemoteAddress);

/// <summary>A small Kestrel origin on loopback that records the requests it receives.</summary>
public sealed class TestOrigin : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestOrigin(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";
    public ConcurrentQueue<SeenRequest> Seen { get; } = new();

    /// <summary>Starts an origin; the handler writes the response (default: 200 "origin:{port} {target}").</summary>
    public static async Task<TestOrigin> StartAsync(Func<HttpContext, Task>? handler = null, int? port = null)
    {
        var p = port ?? TestPorts.GetFree();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, p);
            k.Limits.MaxRequestBodySize = null;
        });
        var app = builder.Build();
        var origin = new TestOrigin(app, p);
        app.Run(async ctx =>
        {
            var req = ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()!;
            var ms = new MemoryStream();
            if (handler is null)
            {
                await ctx.Request.Body.CopyToAsync(ms);
            }

            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var h in ctx.Request.Headers)
            {
                headers[h.Key] = h.Value.ToString();
            }

            origin.Seen.Enqueue(new SeenRequest(req.Method, req.RawTarget, req.Protocol, headers, ms.ToArray(), ctx.Connection.RemoteIpAddress?.ToString() ?? string.Empty));
            if (handler is not null)
            {
                await handler(ctx);
            }
            else
            {
                await ctx.Response.WriteAsync($"origin:{p} {req.RawTarget}");
            }
        });
        await app.StartAsync();
        return origin;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
