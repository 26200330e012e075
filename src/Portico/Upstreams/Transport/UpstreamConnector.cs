using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Portico.Config.Syntax;

namespace Portico.Upstreams.Transport;

/// <summary>
/// A failure while connecting to a peer, already in nginx's words: "connect() failed (111: Connection
/// refused)", "upstream timed out (110: Connection timed out)", "upstream SSL certificate verify error: ...".
/// </summary>
public sealed class UpstreamConnectException : Exception
{
    public UpstreamConnectException(string message, string action, UpstreamFailure failure, LogLevel level, int? finalStatus = null, Exception? inner = null)
        : base(message, inner)
    {
        Action = action;
        Failure = failure;
        Level = level;
        FinalStatus = finalStatus;
    }

    public UpstreamConnectException() : this("connect failed", "connecting to upstream", UpstreamFailure.Error, LogLevel.Error) { }

    public UpstreamConnectException(string message) : this(message, "connecting to upstream", UpstreamFailure.Error, LogLevel.Error) { }

    public UpstreamConnectException(string message, Exception inner)
        : this(message, "connecting to upstream", UpstreamFailure.Error, LogLevel.Error, null, inner) { }

    public string Action { get; }
    public UpstreamFailure Failure { get; }
    public LogLevel Level { get; }

    /// <summary>Set when nginx finalizes with this status instead of trying another peer (a failed bind is 500).</summary>
    public int? FinalStatus { get; }
}

/// <summary>
/// Opens connections to one peer the way nginx's ngx_event_connect_peer and the upstream SSL code do:
/// proxy_bind, SO_KEEPALIVE, the connect timeout, unix sockets, and TLS with nginx's verification rules.
/// </summary>
internal sealed class UpstreamConnector
{
    private const int SolIp = 0;
    private const int IpTransparent = 19;

    private readonly UpstreamPeer _peer;
    private readonly UpstreamConnectionOptions _options;

    public UpstreamConnector(UpstreamPeer peer, UpstreamConnectionOptions options)
    {
        _peer = peer;
        _options = options;
    }

    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var attempt = AttemptContext.Of(context.InitialRequestMessage);
        var (stream, _) = await ConnectAsync(attempt?.Request, cancellationToken).ConfigureAwait(false);
        if (attempt is not null)
        {
            attempt.Connected = true;
        }

        return stream;
    }

    /// <summary>
    /// Opens a connection for one attempt (SocketsHttpHandler's callback and Portico's HTTP/1 transport both
    /// come here): the stream to speak HTTP on (TLS when configured) and the socket under it. Records
    /// $upstream_connect_time; failures are <see cref="UpstreamConnectException"/> in nginx's words.
    /// </summary>
    internal async ValueTask<(Stream Stream, Socket Socket)> ConnectAsync(UpstreamRequest? request, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var timeout = request?.Timeouts.Connect ?? TimeSpan.FromSeconds(60);
        using var timeoutCts = new CancellationTokenSource(timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutCts.Token);
        var socket = CreateSocket(request);
        try
        {
            try
            {
                await socket.ConnectAsync(_peer.EndPoint, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeoutCts.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new UpstreamConnectException("upstream timed out (110: Connection timed out)", "connecting to upstream", UpstreamFailure.Timeout, LogLevel.Error);
            }
            catch (SocketException e)
            {
                throw ConnectError(e);
            }

            if (socket.ProtocolType == ProtocolType.Tcp)
            {
                socket.NoDelay = true;
            }

            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (_options.Tls is { } tls)
            {
                stream = await HandshakeAsync(stream, tls, request, timeoutCts, linked.Token, cancellationToken).ConfigureAwait(false);
            }

            if (request is not null)
            {
                request.State.ConnectTime = (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }

            return (stream, socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private Socket CreateSocket(UpstreamRequest? request)
    {
        Socket socket;
        if (_peer.EndPoint is UnixDomainSocketEndPoint)
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            return socket;
        }

        socket = new Socket(_peer.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (_options.SocketKeepalive)
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            }

            if (request?.BindAddress is { } bind)
            {
                if (_options.BindTransparent)
                {
                    socket.SetRawSocketOption(SolIp, IpTransparent, BitConverter.GetBytes(1));
                }

                try
                {
                    socket.Bind(new IPEndPoint(bind, 0));
                }
                catch (SocketException e)
                {
                    // ngx_event_connect_peer: a failed bind() is NGX_ERROR, which the upstream finalizes with 500.
                    throw new UpstreamConnectException($"bind({bind}) failed ({Errno(e)})", "connecting to upstream", UpstreamFailure.Error, LogLevel.Crit, 500, e);
                }
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return socket;
    }

    private UpstreamConnectException ConnectError(SocketException e)
    {
        if (_peer.EndPoint is UnixDomainSocketEndPoint unix)
        {
            var path = unix.ToString();
            var errno = File.Exists(path) || Directory.Exists(path) ? Errno(e) : "2: No such file or directory";
            var level = e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.TryAgain ? LogLevel.Error : LogLevel.Crit;
            return new UpstreamConnectException($"connect() to {_peer.Name} failed ({errno})", "connecting to upstream", UpstreamFailure.Error, level, null, e);
        }

        if (e.SocketErrorCode is SocketError.NetworkUnreachable or SocketError.AddressNotAvailable or SocketError.AccessDenied)
        {
            // Errors connect() reports at once name the peer, as ngx_event_connect_peer logs them.
            var level = e.SocketErrorCode == SocketError.NetworkUnreachable ? LogLevel.Error : LogLevel.Crit;
            return new UpstreamConnectException($"connect() to {_peer.Name} failed ({Errno(e)})", "connecting to upstream", UpstreamFailure.Error, level, null, e);
        }

        return new UpstreamConnectException($"connect() failed ({Errno(e)})", "connecting to upstream", UpstreamFailure.Error, LogLevel.Error, null, e);
    }

    /// <summary>"111: Connection refused": the errno and its text, as nginx prints system errors.</summary>
    public static string Errno(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "111: Connection refused",
        SocketError.ConnectionReset => "104: Connection reset by peer",
        SocketError.TimedOut => "110: Connection timed out",
        SocketError.HostUnreachable => "113: No route to host",
        SocketError.NetworkUnreachable => "101: Network is unreachable",
        SocketError.AddressNotAvailable => "99: Cannot assign requested address",
        SocketError.AddressAlreadyInUse => "98: Address already in use",
        SocketError.AccessDenied => "13: Permission denied",
        SocketError.Shutdown => "32: Broken pipe",
        _ => $"{e.NativeErrorCode}: {e.Message}",
    };

    private async ValueTask<Stream> HandshakeAsync(Stream stream, UpstreamTlsOptions tls, UpstreamRequest? request, CancellationTokenSource timeoutCts,
        CancellationToken linked, CancellationToken requestToken)
    {
        string? verifyError = null;
        var verifyName = request?.SslVerifyName;
        var options = new SslClientAuthenticationOptions
        {
            // No SNI unless proxy_ssl_server_name is on: an empty target host sends none.
            TargetHost = tls.ServerName ? request?.SslServerName ?? string.Empty : string.Empty,
            EnabledSslProtocols = tls.Protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                if (!tls.Verify)
                {
                    return true;
                }

                verifyError = UpstreamCertificates.Verify(certificate as X509Certificate2 ?? (certificate is null ? null : new X509Certificate2(certificate)),
                    chain, tls, verifyName);
                return verifyError is null;
            },
        };
        if (request?.Version == UpstreamHttpVersion.Http2)
        {
            options.ApplicationProtocols = [SslApplicationProtocol.Http2];
        }

        if (tls.ClientCertificate is { } client)
        {
            options.ClientCertificates = [client];
            options.LocalCertificateSelectionCallback = (_, _, _, _, _) => client;
        }

        var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsClientAsync(options, linked).ConfigureAwait(false);
            return ssl;
        }
        catch (OperationCanceledException) when (timeoutCts.IsCancellationRequested && !requestToken.IsCancellationRequested)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new UpstreamConnectException("upstream timed out (110: Connection timed out)", "SSL handshaking to upstream", UpstreamFailure.Timeout, LogLevel.Error);
        }
        catch (AuthenticationException e) when (verifyError is not null)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new UpstreamConnectException(verifyError, "SSL handshaking to upstream", UpstreamFailure.Error, LogLevel.Error, null, e);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            var reason = e.InnerException?.Message ?? e.Message;
            throw new UpstreamConnectException($"SSL_do_handshake() failed (SSL: {reason.TrimEnd('.')})", "SSL handshaking to upstream", UpstreamFailure.Error, LogLevel.Crit, null, e);
        }
    }
}

/// <summary>nginx's checks of an origin certificate with proxy_ssl_verify on.</summary>
internal static class UpstreamCertificates
{
    /// <summary>Null when the certificate is acceptable, else nginx's message.</summary>
    public static string? Verify(X509Certificate2? certificate, X509Chain? presented, UpstreamTlsOptions tls, string? name)
    {
        if (certificate is null)
        {
            return "upstream SSL certificate verify error: (50:application verification failure)";
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        if (tls.Trusted is { } trusted)
        {
            foreach (var c in trusted)
            {
                // An intermediate in the trusted file completes chains, as OpenSSL's store does.
                if (IsSelfIssued(c))
                {
                    chain.ChainPolicy.CustomTrustStore.Add(c);
                }
                else
                {
                    chain.ChainPolicy.ExtraStore.Add(c);
                }
            }
        }

        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                if (!element.Certificate.Equals(certificate))
                {
                    chain.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }
        }

        var ok = chain.Build(certificate);
        if (!ok)
        {
            return "upstream SSL certificate verify error: " + OpenSslReason(chain, certificate, tls.Trusted);
        }

        // proxy_ssl_verify_depth: the number of certificates above the leaf that may be looked at.
        if (chain.ChainElements.Count - 1 > tls.VerifyDepth)
        {
            return "upstream SSL certificate verify error: (22:certificate chain too long)";
        }

        if (name is not null && !MatchesName(certificate, name))
        {
            return $"upstream SSL certificate does not match \"{name}\"";
        }

        return null;
    }

    private static bool IsSelfIssued(X509Certificate2 c) => c.SubjectName.RawData.AsSpan().SequenceEqual(c.IssuerName.RawData);

    private static string OpenSslReason(X509Chain chain, X509Certificate2 leaf, X509Certificate2Collection? trusted)
    {
        foreach (var status in chain.ChainStatus)
        {
            switch (status.Status)
            {
                case X509ChainStatusFlags.NotTimeValid:
                    return leaf.NotAfter < DateTime.Now ? "(10:certificate has expired)" : "(9:certificate is not yet valid)";
                case X509ChainStatusFlags.NotSignatureValid:
                    return "(7:certificate signature failure)";
            }
        }

        if (IsSelfIssued(leaf))
        {
            return "(18:self-signed certificate)";
        }

        return trusted is null || trusted.Count == 0 || chain.ChainElements.Count <= 1
            ? "(20:unable to get local issuer certificate)"
            : "(2:unable to get issuer certificate)";
    }

    /// <summary>ngx_ssl_check_host: subjectAltName DNS/IP entries (with a leading "*." wildcard), else the CN.</summary>
    public static bool MatchesName(X509Certificate2 certificate, string name)
    {
        var host = name;
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        var isIp = IPAddress.TryParse(host, out var ip);
        var sawDns = false;
        foreach (var ext in certificate.Extensions)
        {
            if (ext is not X509SubjectAlternativeNameExtension san)
            {
                continue;
            }

            if (isIp)
            {
                foreach (var a in san.EnumerateIPAddresses())
                {
                    if (a.Equals(ip))
                    {
                        return true;
                    }
                }

                return false;
            }

            foreach (var dns in san.EnumerateDnsNames())
            {
                sawDns = true;
                if (DnsMatches(dns, host))
                {
                    return true;
                }
            }
        }

        if (sawDns || isIp)
        {
            return false;
        }

        var cn = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        return cn.Length > 0 && DnsMatches(cn, host);
    }

    private static bool DnsMatches(string pattern, string host)
    {
        if (pattern.Equals(host, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        if (pattern.StartsWith("*.", StringComparison.Ordinal))
        {
            var dot = host.IndexOf('.', StringComparison.Ordinal);
            return dot > 0 && host.AsSpan(dot).Equals(pattern.AsSpan(1), StringComparison.OrdinalIgnoreCase);
        }

        return false;
    }
}
