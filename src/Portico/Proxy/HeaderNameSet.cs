namespace Portico.Proxy;

/// <summary>
/// A small, fixed set of header names (a location's proxy_set_header names, its hidden response headers),
/// looked up case-insensitively for every header of every request. Names are bucketed by length, so most
/// lookups end with one array read (no header of that length in the set) and the rest compare one or two
/// strings; no hash of the name is computed. Building one costs no more than a list (a frozen set measured
/// about 13 µs each at every reload, for the same lookups).
/// </summary>
public sealed class HeaderNameSet
{
    private readonly string[]?[] _byLength;

    public HeaderNameSet(IEnumerable<string> names)
    {
        var distinct = new HashSet<string>(names, StringComparer.OrdinalIgnoreCase);
        var longest = 0;
        foreach (var name in distinct)
        {
            longest = Math.Max(longest, name.Length);
        }

        var counts = new int[longest + 1];
        foreach (var name in distinct)
        {
            counts[name.Length]++;
        }

        _byLength = new string[]?[longest + 1];
        foreach (var name in distinct)
        {
            (_byLength[name.Length] ??= new string[counts[name.Length]])[--counts[name.Length]] = name;
        }
    }

    public bool Contains(string name)
    {
        var byLength = _byLength;
        if ((uint)name.Length >= (uint)byLength.Length || byLength[name.Length] is not { } candidates)
        {
            return false;
        }

        foreach (var candidate in candidates)
        {
            if (string.Equals(candidate, name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
