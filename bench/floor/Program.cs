using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Portico.Hosting;

// kestrel-floor PORT: Kestrel answering every request with the 64-byte body of the bench's `return 200`,
// with the socket settings Portico uses (inline scheduling, 64 KiB blocks, the one-CPU tiering restart) and
// nothing of Portico's own: no configuration, no phases, no logs. What it costs a request is the least any
// server built on Kestrel can cost on this machine.
HotPath.RestartForSingleCpuTiering();
HotPath.EnableInlineSocketCompletions();
var port = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 18400;

var kestrel = new KestrelServerOptions { AddServerHeader = false };
kestrel.Listen(IPAddress.Loopback, port);
var transportOptions = new SocketTransportOptions { Backlog = 4096, NoDelay = true, UnsafePreferInlineScheduling = HotPath.InlineScheduling };
if (HotPath.LargeBlocks)
{
    LargeBlockMemoryPoolFactory.TryInstall(transportOptions);
}

using var server = new KestrelServer(Options.Create(kestrel), new SocketTransportFactory(Options.Create(transportOptions), NullLoggerFactory.Instance), NullLoggerFactory.Instance);
await server.StartAsync(new Floor(), CancellationToken.None);
Console.WriteLine($"kestrel-floor listening on 127.0.0.1:{port}");
var stop = new TaskCompletionSource();
using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.TrySetResult(); };
await stop.Task;
await server.StopAsync(CancellationToken.None);

internal sealed class Floor : IHttpApplication<HttpContext>
{
    private static readonly byte[] Body = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"u8.ToArray();

    public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

    public void DisposeContext(HttpContext context, Exception? exception)
    {
    }

    public Task ProcessRequestAsync(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/plain";
        response.ContentLength = Body.Length;
        return response.Body.WriteAsync(Body, 0, Body.Length);
    }
}
