using System.Text.RegularExpressions;

namespace Portico.Variables;

/// <summary>Why a key could not be added (nginx's ngx_hash_add_key results).</summary>
public enum MapKeyResult
{
    Ok,

    /// <summary>NGX_BUSY: "conflicting parameter".</summary>
    Conflict,

    /// <summary>NGX_DECLINED: "invalid hostname or wildcard".</summary>
    InvalidWildcard,
}

/// <summary>
/// The lookup structure of one map: exact strings (case-insensitive), and with "hostnames" leading
/// ("*.example.com", ".example.com") and trailing ("www.example.*") wildcards, then regexes in order.
/// nginx's precedence: exact, longest leading wildcard, longest trailing wildcard, first regex.
/// </summary>
public sealed class MapTable<T> where T : class
{
    private readonly Dictionary<string, T> _exact = new(StringComparer.OrdinalIgnoreCase);

    // Names ".example.com" makes exact for conflict checks (nginx keeps them in keys_hash only).
    private readonly HashSet<string> _exactNames = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, (T Value, bool Bare)> _head = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, T> _tail = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<(Regex Regex, T Value)> _regexes = [];

    public MapTable(bool hostnames)
    {
        Hostnames = hostnames;
    }

    /// <summary>Set by the "hostnames" parameter: keys after it may be wildcards.</summary>
    public bool Hostnames { get; set; }

    public int Count => _exact.Count + _head.Count + _tail.Count + _regexes.Count;

    /// <summary>Adds a string key as ngx_hash_add_key does (with NGX_HASH_WILDCARD_KEY under "hostnames").</summary>
    public MapKeyResult Add(string key, T value)
    {
        if (Hostnames)
        {
            var stars = 0;
            for (var i = 0; i < key.Length; i++)
            {
                var c = key[i];
                if (c == '*' && ++stars > 1)
                {
                    return MapKeyResult.InvalidWildcard;
                }

                if (c == '.' && i + 1 < key.Length && key[i + 1] == '.')
                {
                    return MapKeyResult.InvalidWildcard;
                }

                if (c == '\0')
                {
                    return MapKeyResult.InvalidWildcard;
                }
            }

            if (key.Length > 1 && key[0] == '.')
            {
                var name = key[1..];
                if (_exactNames.Contains(name) || _head.ContainsKey(name))
                {
                    return MapKeyResult.Conflict;
                }

                _exactNames.Add(name);
                _head.Add(name, (value, true));
                return MapKeyResult.Ok;
            }

            if (key.Length > 2)
            {
                if (key[0] == '*' && key[1] == '.')
                {
                    var name = key[2..];
                    if (_head.ContainsKey(name))
                    {
                        return MapKeyResult.Conflict;
                    }

                    _head.Add(name, (value, false));
                    return MapKeyResult.Ok;
                }

                if (key[^2] == '.' && key[^1] == '*')
                {
                    var name = key[..^2];
                    if (!_tail.TryAdd(name, value))
                    {
                        return MapKeyResult.Conflict;
                    }

                    return MapKeyResult.Ok;
                }
            }

            if (stars > 0)
            {
                return MapKeyResult.InvalidWildcard;
            }
        }

        if (!_exactNames.Add(key))
        {
            return MapKeyResult.Conflict;
        }

        _exact.Add(key, value);
        return MapKeyResult.Ok;
    }

    public void AddRegex(Regex regex, T value) => _regexes.Add((regex, value));

    /// <summary>The same table with every value converted (configuration values compiled for the runtime).</summary>
    public MapTable<TOut> Convert<TOut>(Func<T, TOut> convert) where TOut : class
    {
        var table = new MapTable<TOut>(Hostnames);
        foreach (var (k, v) in _exact)
        {
            table._exact.Add(k, convert(v));
        }

        table._exactNames.UnionWith(_exactNames);
        foreach (var (k, v) in _head)
        {
            table._head.Add(k, (convert(v.Value), v.Bare));
        }

        foreach (var (k, v) in _tail)
        {
            table._tail.Add(k, convert(v));
        }

        foreach (var (regex, v) in _regexes)
        {
            table._regexes.Add((regex, convert(v)));
        }

        return table;
    }

    /// <summary>Finds the value for a source value; a matching regex is returned so its captures can be used.</summary>
    public T? Find(string source, out Match? match, out Regex? regex)
    {
        match = null;
        regex = null;
        if (_exact.Count > 0 && _exact.TryGetValue(source, out var exact))
        {
            return exact;
        }

        if (_head.Count > 0 && source.Length > 0)
        {
            var lookup = _head.GetAlternateLookup<ReadOnlySpan<char>>();
            if (lookup.TryGetValue(source, out var bare) && bare.Bare)
            {
                return bare.Value;
            }

            var dot = source.IndexOf('.', StringComparison.Ordinal);
            while (dot >= 0)
            {
                if (lookup.TryGetValue(source.AsSpan(dot + 1), out var entry))
                {
                    return entry.Value;
                }

                dot = source.IndexOf('.', dot + 1);
            }
        }

        if (_tail.Count > 0 && source.Length > 0)
        {
            var lookup = _tail.GetAlternateLookup<ReadOnlySpan<char>>();
            var dot = source.LastIndexOf('.');
            while (dot > 0)
            {
                if (dot < source.Length - 1 && lookup.TryGetValue(source.AsSpan(0, dot), out var value))
                {
                    return value;
                }

                dot = source.LastIndexOf('.', dot - 1);
            }
        }

        if (source.Length > 0)
        {
            foreach (var (candidate, value) in _regexes)
            {
                var m = candidate.Match(source);
                if (m.Success)
                {
                    match = m;
                    regex = candidate;
                    return value;
                }
            }
        }

        return null;
    }
}
