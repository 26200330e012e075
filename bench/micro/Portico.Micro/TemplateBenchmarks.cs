using BenchmarkDotNet.Attributes;
using Portico.Logging;
using Portico.Pipeline;
using Portico.Proxy;
using Portico.Variables;

namespace Portico.Micro;

/// <summary>
/// Per-request evaluation of compiled templates: proxy_set_header values as the seeds write them, and one
/// access-log line in nginx's "combined" format. Variable values are cached per request as nginx does, so
/// each evaluation starts from a request whose cache was cleared (what the next request sees).
/// </summary>
[MemoryDiagnoser]
public class TemplateBenchmarks
{
    private RequestContext _r = null!;
    private CompiledTemplate _oneVariable = null!;
    private CompiledTemplate _forwardedFor = null!;
    private CompiledTemplate _url = null!;
    private CompiledTemplate _mixed = null!;
    private CompiledLogFormat _combined = null!;
    private RequestContext _proxied = null!;
    private ProxyLocation _proxy = null!;
    private readonly List<KeyValuePair<string, string>> _headers = [];

    [GlobalSetup]
    public void Setup()
    {
        var snapshot = MicroConfig.Http("server { listen 8080; server_name www.example.com; location / { return 200; } }");
        _r = MicroConfig.Request(snapshot, "/shop/cart?item=42&qty=2");
        var variables = snapshot.Variables;
        _oneVariable = variables.Compile("$remote_addr", "micro", 1);
        _forwardedFor = variables.Compile("$proxy_add_x_forwarded_for", "micro", 1);
        _url = variables.Compile("$scheme://$host$request_uri", "micro", 1);
        _mixed = variables.Compile("id=$request_id; uri=$uri; args=$args; ua=$http_user_agent", "micro", 1);
        _combined = CompiledLogFormat.Compile(LogFormatSpec.Combined, variables);

        // The bench's proxy location: four headers set (Connection "" removes), six of the browser's eight passed.
        var proxySnapshot = MicroConfig.Http("""
            upstream origin { server 127.0.0.1:18100; keepalive 64; }
            server {
                listen 8080;
                server_name www.example.com;
                location / {
                    proxy_pass http://origin;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $host;
                    proxy_set_header X-Real-IP $remote_addr;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
                }
            }
            """);
        _proxied = MicroConfig.Request(proxySnapshot, "/shop/cart?item=42&qty=2");
        _proxy = ((ProxyHandler)_proxied.Location.Content!).Location;
        var sent = ProxyHeaders();
        if (sent != 10)
        {
            throw new InvalidOperationException($"proxy request headers: {sent}, expected 10");
        }

        Expect(_oneVariable, "192.0.2.10");
        Expect(_forwardedFor, "198.51.100.7, 192.0.2.10");
        Expect(_url, "http://www.example.com/shop/cart?item=42&qty=2");
        if (!Combined().Contains("\"GET /shop/cart?item=42&qty=2 HTTP/1.1\" 200", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("combined: " + Combined());
        }
    }

    private void Expect(CompiledTemplate t, string value)
    {
        var got = Fresh(t);
        if (got != value)
        {
            throw new InvalidOperationException($"{t.Source}: \"{got}\", expected \"{value}\"");
        }
    }

    private string Fresh(CompiledTemplate t)
    {
        MicroConfig.ClearVariables(_r);
        return t.Evaluate(_r);
    }

    private string Combined()
    {
        MicroConfig.ClearVariables(_r);
        var line = new LogLineBuilder(256);
        try
        {
            _combined.Render(_r, ref line);
            return System.Text.Encoding.UTF8.GetString(line.Written);
        }
        finally
        {
            line.Dispose();
        }
    }

    /// <summary>proxy_set_header X-Real-IP $remote_addr: one variable, no concatenation.</summary>
    [Benchmark(Baseline = true)]
    public string OneVariable() => Fresh(_oneVariable);

    /// <summary>proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for, the client sent one.</summary>
    [Benchmark]
    public string ForwardedFor() => Fresh(_forwardedFor);

    /// <summary>$scheme://$host$request_uri: literals and three variables.</summary>
    [Benchmark]
    public string Url() => Fresh(_url);

    /// <summary>Eight parts, among them a generated $request_id and a request header.</summary>
    [Benchmark]
    public string Mixed() => Fresh(_mixed);

    /// <summary>
    /// The upstream request's header list for the bench's location and a browser's request: the set headers
    /// evaluated, the client's headers filtered and passed (list reused, as the proxy reuses it).
    /// </summary>
    [Benchmark]
    public int ProxyHeaders()
    {
        MicroConfig.ClearVariables(_proxied);
        return ProxyRequestBuilder.Headers(_proxied, _proxy, _headers).Count;
    }

    /// <summary>One access-log line, "combined" format, into a pooled line buffer.</summary>
    [Benchmark]
    public int CombinedLogLine()
    {
        MicroConfig.ClearVariables(_r);
        var line = new LogLineBuilder(256);
        _combined.Render(_r, ref line);
        var length = line.Length;
        line.Dispose();
        return length;
    }
}
