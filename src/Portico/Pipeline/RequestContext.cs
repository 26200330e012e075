using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portico.Compilation;
using Portico.Config.Model;
using Portico.Logging;
using Portico.Routing;
using Portico.Variables;

namespace Portico.Pipeline;

/// <summary>
/// A key for per-request module state: each key owns one slot of the request's small item array. Declare
/// keys as static fields (<c>private static readonly RequestKey Key = new();</c>).
/// </summary>
public sealed class RequestKey
{
    private static int s_count;

    public int Index { get; } = Interlocked.Increment(ref s_count) - 1;

    internal static int Count => Volatile.Read(ref s_count);
}

/// <summary>
/// Request-lifetime module state (kept in a <see cref="RequestKey"/> slot) that a later request started from
/// the same RequestContext may take again with <see cref="RequestContext.TakeReusable{T}"/> once this request has ended.
/// </summary>
public interface IReusableState
{
}

/// <summary>
/// One request as Portico sees it: the snapshot it started with, the server and location chosen, the
/// normalized URI, regex captures, variable values and the final status. Handlers read and change it.
/// </summary>
public sealed class RequestContext
{
    /// <summary>nginx's NGX_HTTP_MAX_URI_CHANGES + 1: rewrite cycles and internal redirects left.</summary>
    public const int MaxUriChanges = 11;

    private string?[]? _values;
    private Match? _captures;
    private string? _capturesSubject;
    private int _captureCount;
    private Dictionary<object, object?>? _items;
    private object?[]? _slots;
    private string? _requestLine;
    private string _uri = "/";
    private bool _uriSet;
    private string _args = string.Empty;
    private bool _argsSet;
    private object?[]? _reusable;

    public RequestContext(HttpContext http, RuntimeSnapshot snapshot, ListenerRuntime listener, ClientConnection connection)
    {
        Begin(http, snapshot, listener, connection);
    }

    /// <summary>
    /// Starts another request with this object (after its last request ended): everything is as a new
    /// RequestContext would have it, except the arrays it keeps (cleared) and what earlier requests left for reuse.
    /// </summary>
    public RequestContext Reuse(HttpContext http, RuntimeSnapshot snapshot, ListenerRuntime listener, ClientConnection connection)
    {
        if (_values is { } values)
        {
            Array.Clear(values);
        }

        _captures = null;
        _capturesSubject = null;
        _captureCount = 0;
        _items?.Clear();
        if (_slots is { } slots)
        {
            // Request-lifetime module state that can serve again goes back to the connection.
            for (var i = 0; i < slots.Length; i++)
            {
                if (slots[i] is IReusableState state)
                {
                    _reusable ??= new object?[Math.Max(RequestKey.Count, slots.Length)];
                    if (i < _reusable.Length)
                    {
                        _reusable[i] ??= state;
                    }
                }
            }

            Array.Clear(slots);
        }

        _requestLine = null;
        _uri = "/";
        _uriSet = false;
        _args = string.Empty;
        _argsSet = false;
        _unslotted?.Clear();
        Address = null!;
        Server = null!;
        Location = null!;
        ValidUnparsedUri = true;
        PassRawLocation = false;
        Host = null;
        Status = 0;
        UriChangesLeft = MaxUriChanges;
        Internal = false;
        ErrorPageDone = false;
        StatusOverride = 0;
        RedirectNamed = null;
        CloseConnection = false;
        HeadersFiltered = false;
        Counters = null;
        Begin(http, snapshot, listener, connection);
        return this;
    }

    private void Begin(HttpContext http, RuntimeSnapshot snapshot, ListenerRuntime listener, ClientConnection connection)
    {
        Http = http;
        Snapshot = snapshot;
        Listener = listener;
        Connection = connection;
        StartTimestamp = Stopwatch.GetTimestamp();
        var req = http.Features.GetRequiredFeature<IHttpRequestFeature>();
        RawTarget = req.RawTarget;
        Method = req.Method;
        // nginx names HTTP/2 "HTTP/2.0" in $server_protocol and $request.
        Protocol = req.Protocol == "HTTP/2" ? "HTTP/2.0" : req.Protocol;
    }

    public HttpContext Http { get; private set; } = null!;
    public RuntimeSnapshot Snapshot { get; private set; } = null!;
    public ListenerRuntime Listener { get; private set; } = null!;
    public ClientConnection Connection { get; private set; } = null!;
    public AddressRuntime Address { get; set; } = null!;
    public ServerRuntime Server { get; set; } = null!;
    public LocationRuntime Location { get; set; } = null!;

    public long StartTimestamp { get; private set; }

    /// <summary>The request target as sent ($request_uri).</summary>
    public string RawTarget { get; private set; } = null!;

    /// <summary>The method as sent; error_page redirects turn it into GET ($request_method follows).</summary>
    public string Method { get; set; } = null!;

    /// <summary>"HTTP/1.1", "HTTP/2.0" ($server_protocol).</summary>
    public string Protocol { get; private set; } = null!;

    /// <summary>The normalized, percent-decoded path ($uri), changed by rewrites and redirects.</summary>
    public string Uri
    {
        get => _uri;
        set
        {
            if (_uriSet && !string.Equals(value, _uri, StringComparison.Ordinal))
            {
                ValidUnparsedUri = false;
            }

            _uri = value;
            _uriSet = true;
        }
    }

    /// <summary>The query string without "?" ($args); empty when none.</summary>
    public string Args
    {
        get => _args;
        set
        {
            if (_argsSet && !string.Equals(value, _args, StringComparison.Ordinal))
            {
                ValidUnparsedUri = false;
            }

            _args = value;
            _argsSet = true;
        }
    }

    /// <summary>
    /// nginx's r->valid_unparsed_uri: the request target as received still describes the request. Changing
    /// $uri or $args after they were first set, or an internal redirect, clears it (proxy_pass without a URI
    /// part then sends the URI as it is now).
    /// </summary>
    public bool ValidUnparsedUri { get; set; } = true;

    /// <summary>
    /// The Location header was passed from an upstream unchanged: nginx leaves such a relative redirect
    /// relative (only a Location the proxy rewrote, or Portico produced, is made absolute).
    /// </summary>
    public bool PassRawLocation { get; set; }

    /// <summary>Host without port, lower case, from the request line or Host header; null when absent.</summary>
    public string? Host { get; set; }

    /// <summary>The response status (nginx's r->headers_out.status / err_status).</summary>
    public int Status { get; set; }

    /// <summary>Rewrite cycles and internal redirects left before nginx's 500.</summary>
    public int UriChangesLeft { get; set; } = MaxUriChanges;

    /// <summary>Set after an internal redirect; "internal" locations accept only such requests.</summary>
    public bool Internal { get; set; }

    /// <summary>An error_page redirect already happened (recursive_error_pages off stops the next).</summary>
    public bool ErrorPageDone { get; set; }

    /// <summary>
    /// nginx's r->err_status as error_page sets it: the status the response is sent with whatever the
    /// redirected request produces (0: none, the response's own status is sent).
    /// </summary>
    public int StatusOverride { get; set; }

    /// <summary>The named location an internal redirect targets, if any.</summary>
    public LocationRuntime? RedirectNamed { get; set; }

    /// <summary>Close the client connection after this response (nginx's keepalive = 0).</summary>
    public bool CloseConnection { get; set; }

    /// <summary>Header filters have been applied to this response.</summary>
    public bool HeadersFiltered { get; set; }

    /// <summary>Bytes sent and received for the log ($bytes_sent, $request_length ...); null outside the host.</summary>
    public RequestCounters? Counters { get; set; }

    /// <summary>The request line as received ($request); set for requests the server rejected before parsing them.</summary>
    public string RequestLine
    {
        get => _requestLine ??= $"{OriginalMethod} {RawTarget} {Protocol}";
        set => _requestLine = value;
    }

    public string OriginalMethod => Http.Features.GetRequiredFeature<IHttpRequestFeature>().Method;

    public ErrorLog ErrorLog => Location?.ErrorLog ?? Snapshot.ErrorLog;

    // ---- variables ----

    public string? GetVariable(Variable v)
    {
        var slot = v.Slot;
        var values = _values;
        if (slot >= 0 && values is not null && slot < values.Length && values[slot] is { } cached)
        {
            return ReferenceEquals(cached, NotFound) ? null : cached;
        }

        var getter = v.Getter;
        string? value;
        if (getter is null)
        {
            if (slot < 0 && _unslotted is not null && _unslotted.TryGetValue(v, out var stored))
            {
                return stored;
            }

            // A declared but never-set variable: nginx's uninitialized value.
            value = v.UserDeclared ? string.Empty : null;
        }
        else
        {
            value = getter(this);
        }

        if (v.Cacheable && slot >= 0)
        {
            Store(slot, value);
        }

        return value;
    }

    /// <summary>Stores a value ("set", named captures, map results).</summary>
    public void SetVariable(Variable v, string? value)
    {
        if (v.Setter is not null && value is not null)
        {
            v.Setter(this, value);
            return;
        }

        if (v.Slot >= 0)
        {
            Store(v.Slot, value);
        }
        else
        {
            // A variable found at run time has no cache slot: keep its value aside.
            (_unslotted ??= new Dictionary<Variable, string?>(ReferenceEqualityComparer.Instance))[v] = value;
        }
    }

    /// <summary>Drops the cached value of a variable (after what it depends on changed).</summary>
    public void InvalidateVariable(Variable v)
    {
        if (v.Slot >= 0 && _values is { } values && v.Slot < values.Length)
        {
            values[v.Slot] = null;
        }

        _unslotted?.Remove(v);
    }

    /// <summary>Marks "computed, not found" in the cache (null there means "not computed yet").</summary>
    private static readonly string NotFound = new('\0', 1);

    private Dictionary<Variable, string?>? _unslotted;

    private void Store(int slot, string? value)
    {
        var values = _values;
        if (values is null || slot >= values.Length)
        {
            Array.Resize(ref _values, Math.Max(Snapshot.Variables.SlotCount, slot + 1));
            values = _values;
        }

        values[slot] = value ?? NotFound;
    }

    /// <summary>Makes a regex match the source of $1..$9 and sets its named captures as variables (nginx's ngx_http_regex_exec).</summary>
    public void SetCaptures(Regex regex, Match match, string subject)
    {
        _captures = match;
        _capturesSubject = subject;
        _captureCount = regex is PcreRegex pcre ? pcre.CaptureCount + 1 : match.Groups.Count;
        if (regex is PcreRegex { Names.Count: > 0 } named)
        {
            foreach (var (name, number) in named.Names)
            {
                var v = Snapshot.Variables.Find(name);
                if (v is not null)
                {
                    var g = match.Groups[number];
                    SetVariable(v, g.Success ? g.Value : string.Empty);
                }
            }
        }
    }

    /// <summary>A regex that did not match forgets the captures (nginx's r->ncaptures = 0).</summary>
    public void ClearCaptures()
    {
        _captures = null;
        _capturesSubject = null;
    }

    /// <summary>nginx's quoted_uri || plus_in_uri: the request path held "%" or "+" (captures are then escaped by rewrite scripts).</summary>
    public bool QuotedOrPlusUri
    {
        get
        {
            var target = RawTarget;
            var end = target.IndexOf('?', StringComparison.Ordinal);
            var path = end < 0 ? target.AsSpan() : target.AsSpan(0, end);
            return path.IndexOfAny('%', '+') >= 0;
        }
    }

    public string? GetCapture(int n)
    {
        if (_captures is null || n >= _captureCount)
        {
            return null;
        }

        var g = _captures.Groups[n];
        return g.Success ? g.Value : string.Empty;
    }

    public int CaptureCount => _captures is null ? 0 : _captureCount;

    public string? CapturesSubject => _capturesSubject;

    // ---- per-request module state ----

    /// <summary>Module state for this request, keyed by an object the module owns.</summary>
    public T? GetItem<T>(object key) where T : class =>
        _items is not null && _items.TryGetValue(key, out var v) ? v as T : null;

    public void SetItem(object key, object? value) => (_items ??= [])[key] = value;

    /// <summary>Module state for this request in a slot of a small array (no dictionary on the hot path).</summary>
    public T? GetItem<T>(RequestKey key) where T : class =>
        _slots is { } slots && key.Index < slots.Length ? slots[key.Index] as T : null;

    public void SetItem(RequestKey key, object? value)
    {
        var slots = _slots;
        if (slots is null || key.Index >= slots.Length)
        {
            Array.Resize(ref _slots, Math.Max(RequestKey.Count, key.Index + 1));
            slots = _slots;
        }

        slots[key.Index] = value;
    }

    // ---- objects kept for the next request run on this context ----

    /// <summary>
    /// Takes the object an earlier request run on this RequestContext left under the key (null when none). The
    /// caller initialises it again; it is the caller's alone until it gives it back.
    /// </summary>
    public T? TakeReusable<T>(RequestKey key) where T : class
    {
        if (_reusable is { } reusable && key.Index < reusable.Length && reusable[key.Index] is T value)
        {
            reusable[key.Index] = null;
            return value;
        }

        return null;
    }

    /// <summary>
    /// Leaves an object for a later user of this RequestContext: only give back what nothing of this request
    /// touches any more, or request state a later module of this same request may initialise again.
    /// </summary>
    public void ReturnReusable(RequestKey key, object value)
    {
        var reusable = _reusable;
        if (reusable is null || key.Index >= reusable.Length)
        {
            Array.Resize(ref _reusable, Math.Max(RequestKey.Count, key.Index + 1));
            reusable = _reusable;
        }

        reusable[key.Index] = value;
    }

    // ---- internal redirects ----

    /// <summary>ngx_http_internal_redirect: new URI and args, processed again from the server rewrite phase.</summary>
    public Flow InternalRedirect(string uri, string? args)
    {
        Uri = uri;
        if (args is not null)
        {
            Args = args;
        }

        Internal = true;
        ValidUnparsedUri = false;
        RedirectNamed = null;
        return Flow.Redirect;
    }

    /// <summary>ngx_http_named_location: continue in a named location from its rewrite phase.</summary>
    public Flow NamedRedirect(LocationRuntime named)
    {
        Internal = true;
        RedirectNamed = named;
        return Flow.Redirect;
    }

    /// <summary>Finalize with a status (nginx returning an HTTP code from a handler).</summary>
    public Flow Finish(int status)
    {
        Status = status;
        return Flow.Finalize;
    }

    public double ElapsedSeconds => Stopwatch.GetElapsedTime(StartTimestamp).TotalSeconds;

    /// <summary>Writes to the location's error log with nginx's request context suffix.</summary>
    public void LogError(Config.Syntax.LogLevel level, string message)
    {
        var log = ErrorLog;
        if (!log.IsEnabled(level))
        {
            return;
        }

        log.Write(level, RequestLogFormat.Format(this, message));
    }
}
