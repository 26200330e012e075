using Microsoft.AspNetCore.Http;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Upstreams;

/// <summary>Helpers of the upstream tests: load loops, the API over a unix socket, origins that can turn sick.</summary>
public static class UpstreamKit
{
    /// <summary>An HttpClient that talks to a unix socket (curl --unix-socket).</summary>
    public static HttpClient UnixClient(string path) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    })
    {
        BaseAddress = new Uri("http://localhost"),
        Timeout = TimeSpan.FromSeconds(10),
    };

    public static async Task<(int Status, JsonElement Json)> SendJsonAsync(HttpClient client, HttpMethod method, string path, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>Runs GET requests from several workers until stopped; counts every status that is not 200.</summary>
    public sealed class Load : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task[] _workers;
        private int _ok;
        private int _failed;
        private readonly List<string> _failures = [];

        public Load(int port, int workers = 4, string path = "/")
        {
            _workers = new Task[workers];
            for (var i = 0; i < workers; i++)
            {
                _workers[i] = Task.Run(async () =>
                {
                    using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
                    for (var n = 0; n < 20_000 && !_stop.IsCancellationRequested; n++)
                    {
                        try
                        {
                            using var response = await client.GetAsync(path);
                            var body = await response.Content.ReadAsStringAsync();
                            if (response.StatusCode == HttpStatusCode.OK)
                            {
                                Interlocked.Increment(ref _ok);
                            }
                            else
                            {
                                Fail($"{(int)response.StatusCode} {body}");
                            }
                        }
                        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                        {
                            Fail(e.Message);
                        }
                    }
                });
            }
        }

        private void Fail(string what)
        {
            Interlocked.Increment(ref _failed);
            lock (_failures)
            {
                _failures.Add(what);
            }
        }

        public int Ok => Volatile.Read(ref _ok);
        public int Failed => Volatile.Read(ref _failed);
        public string Failures
        {
            get
            {
                lock (_failures)
                {
                    return string.Join("\n", _failures.Take(5));
                }
            }
        }

        /// <summary>Waits until at least this many more requests succeeded (bounded).</summary>
        public Task AtLeastAsync(int more)
        {
            var target = Ok + more;
            return Proxy.ProxyTest.WaitUntilAsync(() => Ok >= target || Failed > 0, $"{more} more requests");
        }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            await Task.WhenAll(_workers);
            _stop.Dispose();
        }
    }

    /// <summary>A Kestrel origin that answers "name" and whose /health (and everything, when sick) answers 500.</summary>
    public sealed class Origin : IAsyncDisposable
    {
        private TestOrigin? _origin;

        private Origin(string name, int port)
        {
            Name = name;
            Port = port;
        }

        public string Name { get; }
        public int Port { get; }
        public string Address => $"127.0.0.1:{Port}";
        public volatile bool Sick;
        private int _served;
        private int _checks;
        public int Served => Volatile.Read(ref _served);
        public int Checks => Volatile.Read(ref _checks);
        public System.Collections.Concurrent.ConcurrentDictionary<string, int> Connections { get; } = new();

        public static async Task<Origin> StartAsync(string name, int? port = null)
        {
            var o = new Origin(name, port ?? TestPorts.GetFree());
            await o.ReviveAsync();
            return o;
        }

        /// <summary>Starts (again) on the same port.</summary>
        public async Task ReviveAsync()
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    _origin = await TestOrigin.StartAsync(async ctx =>
                    {
                        Connections.AddOrUpdate(ctx.Connection.Id, 1, (_, n) => n + 1);
                        if (ctx.Request.Path == "/health")
                        {
                            Interlocked.Increment(ref _checks);
                            ctx.Response.StatusCode = Sick ? 500 : 200;
                            await ctx.Response.WriteAsync(Sick ? "sick" : "healthy");
                            return;
                        }

                        Interlocked.Increment(ref _served);
                        ctx.Response.StatusCode = Sick ? 500 : 200;
                        await ctx.Response.WriteAsync(Name);
                    }, Port);
                    return;
                }
                catch (IOException) when (attempt < 50)
                {
                    await Task.Delay(100);
                }
            }
        }

        /// <summary>Stops listening: connections are refused until <see cref="ReviveAsync"/>.</summary>
        public async Task KillAsync()
        {
            if (_origin is { } o)
            {
                _origin = null;
                await o.DisposeAsync();
            }
        }

        public ValueTask DisposeAsync() => new(KillAsync());
    }
}
