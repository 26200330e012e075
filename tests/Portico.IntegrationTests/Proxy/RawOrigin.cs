using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Portico.IntegrationTests.Infrastructure;

namespace Portico.IntegrationTests.Proxy;

/// <summary>A request head exactly as it arrived at a raw origin.</summary>
public sealed record RawRequest(string RequestLine, IReadOnlyList<KeyValuePair<string, string>> Headers, string RemoteAddress)
{
    public string Method => RequestLine.Split(' ')[0];
    public string Target => RequestLine.Split(' ')[1];
    public string Version => RequestLine.Split(' ')[^1];

    public string? Header(string name)
    {
        string? found = null;
        foreach (var (n, v) in Headers)
        {
            if (n.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                found = found is null ? v : found + ", " + v;
            }
        }

        return found;
    }

    public bool Has(string name) => Header(name) is not null;
}

/// <summary>One accepted connection of a <see cref="RawOrigin"/>: read the head and body, write bytes, close.</summary>
public sealed class RawConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly MemoryStream _pending = new();

    private readonly Action<RawRequest>? _onRequest;

    internal RawConnection(Socket socket, Action<RawRequest>? onRequest = null)
    {
        _socket = socket;
        _onRequest = onRequest;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public Socket Socket => _socket;
    public Stream Stream => _stream;
    public RawRequest? Request { get; private set; }

    /// <summary>Reads up to the end of the request head; null when the peer closed first.</summary>
    public async Task<RawRequest?> ReadHeadAsync(CancellationToken ct = default)
    {
        var buffer = new byte[8192];
        while (true)
        {
            var text = Encoding.Latin1.GetString(_pending.GetBuffer(), 0, (int)_pending.Length);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                var lines = text[..end].Split("\r\n");
                var headers = new List<KeyValuePair<string, string>>();
                foreach (var line in lines.Skip(1))
                {
                    var colon = line.IndexOf(':', StringComparison.Ordinal);
                    headers.Add(new(line[..colon], line[(colon + 1)..].Trim()));
                }

                var rest = _pending.ToArray()[(end + 4)..];
                _pending.SetLength(0);
                _pending.Write(rest);
                var remote = ((IPEndPoint)_socket.RemoteEndPoint!).Address.ToString();
                Request = new RawRequest(lines[0], headers, remote);
                // Recorded as soon as it is read, so a test that got the answer sees the request.
                _onRequest?.Invoke(Request);
                return Request;
            }

            var n = await _stream.ReadAsync(buffer, ct);
            if (n == 0)
            {
                return null;
            }

            _pending.Write(buffer, 0, n);
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> body bytes (after the head).</summary>
    public async Task<byte[]> ReadBytesAsync(long count, CancellationToken ct = default)
    {
        var result = new MemoryStream();
        var take = (int)Math.Min(count, _pending.Length);
        result.Write(_pending.GetBuffer(), 0, take);
        var left = _pending.ToArray()[take..];
        _pending.SetLength(0);
        _pending.Write(left);
        var buffer = new byte[65536];
        while (result.Length < count)
        {
            var n = await _stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count - result.Length)), ct);
            if (n == 0)
            {
                break;
            }

            result.Write(buffer, 0, n);
        }

        return result.ToArray();
    }

    /// <summary>Reads <paramref name="count"/> body bytes into one reused buffer, handing each piece to <paramref name="visit"/>.</summary>
    public async Task<long> DrainAsync(long count, Action<ReadOnlyMemory<byte>, long> visit, CancellationToken ct = default)
    {
        long done = 0;
        if (_pending.Length > 0)
        {
            var take = (int)Math.Min(count, _pending.Length);
            visit(_pending.GetBuffer().AsMemory(0, take), 0);
            done = take;
            var left = _pending.ToArray()[take..];
            _pending.SetLength(0);
            _pending.Write(left);
        }

        var buffer = new byte[256 * 1024];
        while (done < count)
        {
            var n = await _stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count - done)), ct);
            if (n == 0)
            {
                break;
            }

            visit(buffer.AsMemory(0, n), done);
            done += n;
        }

        return done;
    }

    /// <summary>Reads a chunked body and returns the decoded bytes.</summary>
    public async Task<byte[]> ReadChunkedAsync(CancellationToken ct = default)
    {
        var body = new MemoryStream();
        while (true)
        {
            var line = await ReadLineAsync(ct);
            var size = Convert.ToInt32(line.Split(';')[0].Trim(), 16);
            if (size == 0)
            {
                while ((await ReadLineAsync(ct)).Length > 0)
                {
                }

                return body.ToArray();
            }

            body.Write(await ReadBytesAsync(size, ct));
            await ReadLineAsync(ct);
        }
    }

    private async Task<string> ReadLineAsync(CancellationToken ct)
    {
        var buffer = new byte[1];
        while (true)
        {
            var data = _pending.ToArray();
            var idx = Array.IndexOf(data, (byte)'\n');
            if (idx >= 0)
            {
                var line = Encoding.Latin1.GetString(data, 0, idx).TrimEnd('\r');
                _pending.SetLength(0);
                _pending.Write(data[(idx + 1)..]);
                return line;
            }

            var n = await _stream.ReadAsync(buffer, ct);
            if (n == 0)
            {
                throw new IOException("closed while reading a line");
            }

            _pending.Write(buffer, 0, n);
        }
    }

    /// <summary>Reads the body the head announces (Content-Length or chunked); empty when none.</summary>
    public async Task<byte[]> ReadBodyAsync(CancellationToken ct = default)
    {
        if (Request?.Header("Transfer-Encoding")?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true)
        {
            return await ReadChunkedAsync(ct);
        }

        return Request?.Header("Content-Length") is { } cl ? await ReadBytesAsync(long.Parse(cl, System.Globalization.CultureInfo.InvariantCulture), ct) : [];
    }

    public Task WriteAsync(string text) => _stream.WriteAsync(Encoding.Latin1.GetBytes(text)).AsTask();

    public Task WriteAsync(byte[] bytes) => _stream.WriteAsync(bytes).AsTask();

    /// <summary>A complete response with Content-Length.</summary>
    public Task RespondAsync(int status, string body, params string[] headers)
    {
        var sb = new StringBuilder();
        sb.Append("HTTP/1.1 ").Append(status).Append(' ').Append(status == 200 ? "OK" : "Status").Append("\r\n");
        foreach (var h in headers)
        {
            sb.Append(h).Append("\r\n");
        }

        sb.Append("Content-Length: ").Append(Encoding.UTF8.GetByteCount(body)).Append("\r\n\r\n").Append(body);
        return _stream.WriteAsync(Encoding.UTF8.GetBytes(sb.ToString())).AsTask();
    }

    /// <summary>Closes with a TCP reset.</summary>
    public void Reset()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Close();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        await _stream.DisposeAsync();
    }
}

/// <summary>
/// An origin on a raw loopback socket: every connection is handed to the handler, which reads the head
/// and writes whatever bytes the test wants (valid, invalid, slow, truncated). The heads are recorded.
/// </summary>
public sealed class RawOrigin : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<RawConnection, Task> _handler;
    private readonly List<Task> _connections = [];
    private readonly Task _accept;

    private RawOrigin(Socket listener, Func<RawConnection, Task> handler)
    {
        _listener = listener;
        _handler = handler;
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        _accept = Task.Run(AcceptAsync);
    }

    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";
    public ConcurrentQueue<RawRequest> Requests { get; } = new();

    /// <summary>Connections accepted so far.</summary>
    public int Accepted;

    /// <summary>Starts an origin; the default handler answers 200 "ok" to every request head.</summary>
    public static RawOrigin Start(Func<RawConnection, Task>? handler = null, IPAddress? address = null, int port = 0)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address ?? IPAddress.Loopback, port));
        listener.Listen(128);
        return new RawOrigin(listener, handler ?? (async c =>
        {
            if (await c.ReadHeadAsync() is not null)
            {
                await c.ReadBodyAsync();
                await c.RespondAsync(200, "ok", "Connection: close");
            }
        }));
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            Interlocked.Increment(ref Accepted);
            var connection = new RawConnection(socket, Requests.Enqueue);
            lock (_connections)
            {
                _connections.Add(Task.Run(async () =>
                {
                    try
                    {
                        await _handler(connection);
                    }
                    catch (Exception)
                    {
                        // The test decides what the origin does; a broken connection is part of some tests.
                    }
                    finally
                    {
                        await connection.DisposeAsync();
                    }
                }));
            }
        }
    }

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _stop.Cancel();
        _listener.Dispose();
        await _accept;
        Task[] all;
        lock (_connections)
        {
            all = [.. _connections];
        }

        await Task.WhenAny(Task.WhenAll(all), Task.Delay(TimeSpan.FromSeconds(5)));
        _stop.Dispose();
    }
}

/// <summary>Helpers shared by the proxy tests.</summary>
public static class ProxyTest
{
    /// <summary>A server block on the test port with the given body.</summary>
    public static string Server(string body, string extra = "") => $$"""
        {{extra}}
        server {
            listen 127.0.0.1:{port};
            {{body}}
        }
        """;

    /// <summary>
    /// Waits for an asynchronous condition, bounded. Never block on a task inside a condition (".Result"):
    /// with inline socket completions the blocked thread may be the one that must finish the task.
    /// </summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("gave up waiting for " + what);
            }

            await Task.Delay(10);
        }
    }

    /// <summary>Waits for a condition the test caused, bounded so a broken build fails instead of hanging.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("gave up waiting for " + what);
            }

            await Task.Delay(10);
        }
    }

    /// <summary>Sends a raw request to Portico and returns the raw response (until close, Content-Length, or timeout).</summary>
    public static Task<string> RawAsync(PorticoInstance p, string request, int seconds = 10) =>
        RawHttp.SendAsync(p.Port, request, TimeSpan.FromSeconds(seconds));
}
