using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Portico.Compilation;
using Portico.Config.Model;
using Portico.Config.Syntax;
using Portico.Logging;

namespace Portico.Upstreams.Health;

/// <summary>
/// Active health checks (nginx Plus's health_check and match): compiled from the locations that have
/// them, run in the background while their snapshot is current, never on the request path.
/// </summary>
internal static class HealthChecks
{
    public static void CompileLocation(LocationCompiler lc)
    {
        if (lc.Block is null || lc.Block.Kind is LocationKind.If or LocationKind.LimitExcept)
        {
            return;
        }

        var checks = lc.Level.Find<HealthCheckSettings>()?.Checks;
        if (checks is null || checks.Count == 0)
        {
            return;
        }

        var snapshot = lc.Snapshot;
        var registry = snapshot.Snapshot.Feature<UpstreamRegistry>()!;
        var proxy = lc.Settings<Proxy.ProxySettings>();
        var url = proxy.Pass?.Url;
        var group = url is null || url.UnixPath is not null ? null : registry.Find(url.Host, url.Port, url.NoPort);
        var matches = snapshot.HttpMain<UpstreamSettings>()?.Matches;
        foreach (var spec in checks)
        {
            if (group is null || group.Implicit)
            {
                snapshot.Error("\"health_check\" requires \"proxy_pass\" to an upstream group", spec.Source);
                continue;
            }

            MatchSpec? match = null;
            if (spec.MatchName is { } name && (matches is null || !matches.TryGetValue(name, out match)))
            {
                snapshot.Error($"match \"{name}\" not found", spec.Source);
                continue;
            }

            spec.Upstream = group.Name;
            spec.HostHeader = url!.NoPort ? url.Host : url.Host + ":" + url.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            spec.Https = url.Https;
            spec.ConnectTimeout = proxy.ConnectTimeout ?? TimeSpan.FromSeconds(60);
            spec.ReadTimeout = proxy.ReadTimeout ?? TimeSpan.FromSeconds(60);
            group.Spec!.HealthChecks.Add(spec);
            group.HealthChecked = true;
            registry.AddBackground(new HealthChecker(group, spec, match));
        }
    }

    /// <summary>Peers of a mandatory check that were never checked start "checking" (no requests until they pass).</summary>
    public static void Complete(SnapshotBuilder snapshot)
    {
        if (snapshot.Snapshot.Feature<UpstreamRegistry>() is not { } registry)
        {
            return;
        }

        foreach (var group in registry.Explicit.Values)
        {
            var mandatory = false;
            foreach (var spec in group.Spec!.HealthChecks)
            {
                mandatory |= spec.Mandatory;
            }

            if (mandatory)
            {
                foreach (var peer in group.Peers)
                {
                    peer.State.StartChecking();
                }
            }
        }
    }
}

/// <summary>Probes every peer of one group for one health_check line, at its interval plus jitter.</summary>
public sealed class HealthChecker : IBackgroundWork
{
    private readonly UpstreamGroup _group;
    private readonly HealthCheckSpec _spec;
    private readonly MatchSpec? _match;

    public HealthChecker(UpstreamGroup group, HealthCheckSpec spec, MatchSpec? match)
    {
        _group = group;
        _spec = spec;
        _match = match;
    }

    public UpstreamGroup Group => _group;
    public HealthCheckSpec Spec => _spec;

    public void Start(RuntimeSnapshot snapshot, CancellationToken stop) => _ = Task.Run(() => RunAsync(snapshot, stop), CancellationToken.None);

    private async Task RunAsync(RuntimeSnapshot snapshot, CancellationToken stop)
    {
        var time = snapshot.Services.Time;
        var random = new Random();
        while (!stop.IsCancellationRequested)
        {
            var peers = _group.Current.All;
            var tasks = new List<Task>(peers.Count);
            foreach (var peer in peers)
            {
                if (!peer.IsDown)
                {
                    tasks.Add(CheckAsync(peer, snapshot.ErrorLog, time, stop));
                }
            }

            try
            {
                await Task.WhenAll(tasks).ConfigureAwait(false);
                var delay = _spec.Interval + TimeSpan.FromMilliseconds(_spec.Jitter.TotalMilliseconds * random.NextDouble());
                await Task.Delay(delay, time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One check of one peer; records the result in the peer's state and logs state changes.</summary>
    public async Task CheckAsync(UpstreamPeer peer, ErrorLog log, TimeProvider time, CancellationToken stop)
    {
        var (passed, reason) = await ProbeAsync(peer, stop).ConfigureAwait(false);
        if (stop.IsCancellationRequested)
        {
            return;
        }

        var before = peer.State.Health;
        var after = peer.State.Check(passed, _spec.Fails, _spec.Passes, time.GetUtcNow().ToUnixTimeMilliseconds());
        if (before != after)
        {
            var what = $"health check \"{_spec.MatchName ?? string.Empty}\" of peer {peer.Name} in upstream \"{_group.Name}\"";
            if (after == HealthState.Unhealthy)
            {
                log.Write(LogLevel.Warn, $"peer is unhealthy while {reason}, {what}");
            }
            else if (after == HealthState.Healthy)
            {
                log.Write(LogLevel.Notice, $"peer is healthy while checking status code, {what}");
            }
        }
    }

    private async Task<(bool Passed, string Reason)> ProbeAsync(UpstreamPeer peer, CancellationToken stop)
    {
        var endPoint = peer.EndPoint;
        if (_spec.Port is { } port && endPoint is IPEndPoint ip)
        {
            endPoint = new IPEndPoint(ip.Address, port);
        }

        using var socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var connect = CancellationTokenSource.CreateLinkedTokenSource(stop);
        connect.CancelAfter(_spec.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(endPoint, connect.Token).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            return (false, $"connect() failed ({Errno(e)}) while connecting to upstream");
        }
        catch (OperationCanceledException)
        {
            return (false, "connecting to upstream (110: Connection timed out)");
        }

        using var read = CancellationTokenSource.CreateLinkedTokenSource(stop);
        read.CancelAfter(_spec.ReadTimeout);
        Stream stream = new NetworkStream(socket, ownsSocket: false);
        try
        {
            if (_spec.Https)
            {
                var ssl = new SslStream(stream, false, (_, _, _, _) => true);
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = _spec.HostHeader }, read.Token).ConfigureAwait(false);
                stream = ssl;
            }

            var request = Encoding.ASCII.GetBytes($"GET {_spec.Uri} HTTP/1.0\r\nHost: {_spec.HostHeader}\r\nConnection: close\r\n\r\n");
            await stream.WriteAsync(request, read.Token).ConfigureAwait(false);
            var buffer = new MemoryStream();
            var chunk = new byte[8192];
            while (buffer.Length < 256 * 1024)
            {
                var n = await stream.ReadAsync(chunk, read.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                buffer.Write(chunk, 0, n);
            }

            return Evaluate(Encoding.Latin1.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        }
        catch (OperationCanceledException)
        {
            return (false, "reading response header from upstream (110: Connection timed out)");
        }
        catch (Exception e) when (e is IOException or SocketException or System.Security.Authentication.AuthenticationException)
        {
            return (false, "reading response header from upstream (104: Connection reset by peer)");
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static string Errno(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "111: Connection refused",
        SocketError.TimedOut => "110: Connection timed out",
        SocketError.HostUnreachable => "113: No route to host",
        SocketError.NetworkUnreachable => "101: Network is unreachable",
        _ => $"{e.ErrorCode}: {e.Message}",
    };

    /// <summary>Parses the response and applies the match block (or the 2xx/3xx default).</summary>
    public (bool Passed, string Reason) Evaluate(string response)
    {
        var headEnd = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var head = headEnd < 0 ? response : response[..headEnd];
        var body = headEnd < 0 ? string.Empty : response[(headEnd + 4)..];
        var lines = head.Split("\r\n");
        if (lines.Length == 0 || !lines[0].StartsWith("HTTP/", StringComparison.Ordinal) || lines[0].Length < 12
            || !int.TryParse(lines[0].AsSpan(9, 3), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var status))
        {
            return (false, "reading response header from upstream (upstream sent no valid HTTP/1.0 header)");
        }

        var headers = new List<KeyValuePair<string, string>>();
        for (var i = 1; i < lines.Length; i++)
        {
            var colon = lines[i].IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                headers.Add(new(lines[i][..colon].Trim(), lines[i][(colon + 1)..].Trim()));
            }
        }

        if (_match is null)
        {
            return MatchSpec.DefaultMatches(status) ? (true, string.Empty) : (false, "checking status code");
        }

        return _match.Matches(status, headers, body) ? (true, string.Empty) : (false, "checking response");
    }
}
