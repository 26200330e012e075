using System.Net;

namespace Portico.Upstreams.Transport;

/// <summary>
/// The last step before the connection pool: applies nginx's timeouts around the exchange
/// (proxy_read_timeout for the response head once the request is sent, per-operation timers on the
/// bodies) and puts back the Connection/Upgrade headers the configuration chose.
/// </summary>
internal sealed class ExchangeHandler : DelegatingHandler
{
    public ExchangeHandler(HttpMessageHandler inner) : base(inner)
    {
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var attempt = AttemptContext.Of(request);
        if (attempt is null)
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var upstream = attempt.Request;
        if (attempt.CloseConnection)
        {
            request.Headers.ConnectionClose = true;
        }

        if (upstream.Upgrade)
        {
            RestoreUpgradeHeaders(request, upstream.Headers);
        }

        // The response head must arrive within proxy_read_timeout once the whole request was sent.
        using var headerTimer = new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, headerTimer.Token);
        var readTimeout = upstream.Timeouts.Read;
        void ArmHeaderTimer()
        {
            if (readTimeout > TimeSpan.Zero && readTimeout < TimeSpan.FromDays(24) && !upstream.Upgrade)
            {
                try
                {
                    headerTimer.CancelAfter(readTimeout);
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }

        if (request.Content is { } content)
        {
            request.Content = new TimedRequestContent(content, attempt, flushEachWrite: upstream.BodyLength is null || upstream.Version == UpstreamHttpVersion.Http2, ArmHeaderTimer);
        }
        else
        {
            attempt.BodySent = true;
            ArmHeaderTimer();
        }

        HttpResponseMessage response;
        try
        {
            response = await base.SendAsync(request, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (headerTimer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            var timeout = new UpstreamTimeoutException("reading response header from upstream");
            attempt.Timeout ??= timeout;
            throw timeout;
        }

        if (response.StatusCode != HttpStatusCode.SwitchingProtocols)
        {
            response.Content = new TimedResponseContent(response.Content, attempt);
        }

        return response;
    }

    private static void RestoreUpgradeHeaders(HttpRequestMessage request, IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        request.Headers.Remove("Connection");
        request.Headers.Remove("Upgrade");
        foreach (var (name, value) in headers)
        {
            if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase) || name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }
    }
}
