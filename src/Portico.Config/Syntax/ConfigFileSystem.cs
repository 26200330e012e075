namespace Portico.Config.Syntax;

/// <summary>Where configuration files come from; tests substitute an in-memory tree.</summary>
public interface IConfigFileSystem
{
    bool FileExists(string path);
    string ReadAllText(string path);

    /// <summary>Files matching a pattern whose last segments may contain *, ? and [..], sorted as nginx's glob(3).</summary>
    IReadOnlyList<string> Glob(string pattern);
}

public sealed class PhysicalFileSystem : IConfigFileSystem
{
    public static readonly PhysicalFileSystem Instance = new();

    public bool FileExists(string path) => File.Exists(path);

    public string ReadAllText(string path) => File.ReadAllText(path);

    public IReadOnlyList<string> Glob(string pattern)
    {
        var results = new List<string>();
        var full = Path.GetFullPath(pattern);
        var root = Path.GetPathRoot(full) ?? "/";
        var segments = full[root.Length..].Split('/', StringSplitOptions.RemoveEmptyEntries);
        Expand(root, segments, 0, results);
        results.Sort(StringComparer.Ordinal);
        return results;
    }

    private static void Expand(string dir, string[] segments, int index, List<string> results)
    {
        if (index == segments.Length)
        {
            return;
        }

        var segment = segments[index];
        var last = index == segments.Length - 1;
        if (!GlobPattern.HasWildcards(segment))
        {
            var next = Path.Combine(dir, segment);
            if (last)
            {
                if (File.Exists(next))
                {
                    results.Add(next);
                }
            }
            else if (Directory.Exists(next))
            {
                Expand(next, segments, index + 1, results);
            }

            return;
        }

        if (!Directory.Exists(dir))
        {
            return;
        }

        IEnumerable<string> entries = last ? Directory.EnumerateFiles(dir) : Directory.EnumerateDirectories(dir);
        foreach (var entry in entries)
        {
            var name = Path.GetFileName(entry);
            // glob(3) skips hidden entries unless the pattern starts with a dot.
            if (name.StartsWith('.') && !segment.StartsWith('.'))
            {
                continue;
            }

            if (GlobPattern.Match(segment, name))
            {
                if (last)
                {
                    results.Add(entry);
                }
                else
                {
                    Expand(entry, segments, index + 1, results);
                }
            }
        }
    }
}

/// <summary>An in-memory file tree, for golden tests.</summary>
public sealed class MemoryFileSystem : IConfigFileSystem
{
    private readonly Dictionary<string, string> _files = new(StringComparer.Ordinal);

    public MemoryFileSystem Add(string path, string content)
    {
        _files[path] = content;
        return this;
    }

    public bool FileExists(string path) => _files.ContainsKey(path);

    public string ReadAllText(string path) =>
        _files.TryGetValue(path, out var text) ? text : throw new FileNotFoundException(path);

    public IReadOnlyList<string> Glob(string pattern)
    {
        var list = new List<string>();
        var patternSegments = pattern.Split('/');
        foreach (var path in _files.Keys)
        {
            var segments = path.Split('/');
            if (segments.Length != patternSegments.Length)
            {
                continue;
            }

            var ok = true;
            for (var i = 0; i < segments.Length && ok; i++)
            {
                ok = GlobPattern.Match(patternSegments[i], segments[i]);
            }

            if (ok)
            {
                list.Add(path);
            }
        }

        list.Sort(StringComparer.Ordinal);
        return list;
    }
}

/// <summary>fnmatch-style matching of one path segment: *, ? and [set] / [!set].</summary>
public static class GlobPattern
{
    public static bool HasWildcards(string s) => s.AsSpan().IndexOfAny("*?[") >= 0;

    public static bool Match(string pattern, string text) => Match(pattern.AsSpan(), text.AsSpan());

    private static bool Match(ReadOnlySpan<char> p, ReadOnlySpan<char> t)
    {
        while (!p.IsEmpty)
        {
            switch (p[0])
            {
                case '*':
                    p = p[1..];
                    if (p.IsEmpty)
                    {
                        return true;
                    }

                    for (var i = 0; i <= t.Length; i++)
                    {
                        if (Match(p, t[i..]))
                        {
                            return true;
                        }
                    }

                    return false;
                case '?':
                    if (t.IsEmpty)
                    {
                        return false;
                    }

                    p = p[1..];
                    t = t[1..];
                    break;
                case '[':
                    {
                        var close = p[1..].IndexOf(']');
                        if (close < 0 || t.IsEmpty)
                        {
                            if (t.IsEmpty || t[0] != '[')
                            {
                                return false;
                            }

                            p = p[1..];
                            t = t[1..];
                            break;
                        }

                        var set = p.Slice(1, close);
                        var negate = set.Length > 0 && (set[0] == '!' || set[0] == '^');
                        if (negate)
                        {
                            set = set[1..];
                        }

                        var hit = false;
                        for (var i = 0; i < set.Length; i++)
                        {
                            if (i + 2 < set.Length && set[i + 1] == '-')
                            {
                                if (t[0] >= set[i] && t[0] <= set[i + 2])
                                {
                                    hit = true;
                                }

                                i += 2;
                            }
                            else if (set[i] == t[0])
                            {
                                hit = true;
                            }
                        }

                        if (hit == negate)
                        {
                            return false;
                        }

                        p = p[(close + 2)..];
                        t = t[1..];
                        break;
                    }

                default:
                    if (t.IsEmpty || t[0] != p[0])
                    {
                        return false;
                    }

                    p = p[1..];
                    t = t[1..];
                    break;
            }
        }

        return t.IsEmpty;
    }
}
