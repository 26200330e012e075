namespace Portico.Routing;

/// <summary>
/// A radix tree of location prefixes: each node may hold an exact ("=") and an inclusive (prefix)
/// location for the string that leads to it. One walk finds the exact match, the longest prefix, and
/// nginx's auto-redirect candidate, without allocating.
/// </summary>
public sealed class PrefixTree<T> where T : class
{
    private sealed class Node
    {
        public string Edge = string.Empty;
        public Node[] Children = [];
        public T? Exact;
        public T? Inclusive;
    }

    private readonly Node _root = new();

    public bool IsEmpty { get; private set; } = true;

    public void Add(string key, T value, bool exact)
    {
        IsEmpty = false;
        var node = _root;
        var rest = key;
        while (true)
        {
            if (rest.Length == 0)
            {
                if (exact)
                {
                    node.Exact ??= value;
                }
                else
                {
                    node.Inclusive ??= value;
                }

                return;
            }

            Node? child = null;
            var index = -1;
            for (var i = 0; i < node.Children.Length; i++)
            {
                if (node.Children[i].Edge[0] == rest[0])
                {
                    child = node.Children[i];
                    index = i;
                    break;
                }
            }

            if (child is null)
            {
                var leaf = new Node { Edge = rest };
                if (exact)
                {
                    leaf.Exact = value;
                }
                else
                {
                    leaf.Inclusive = value;
                }

                node.Children = [.. node.Children, leaf];
                return;
            }

            var common = CommonPrefix(child.Edge, rest);
            if (common < child.Edge.Length)
            {
                // Split the edge.
                var split = new Node { Edge = child.Edge[..common], Children = [child] };
                child.Edge = child.Edge[common..];
                node.Children[index] = split;
                child = split;
            }

            node = child;
            rest = rest[common..];
        }
    }

    /// <summary>
    /// Looks up a URI. <paramref name="exact"/>: a "=" location equal to it. <paramref name="equalPrefix"/>:
    /// a prefix location equal to it. <paramref name="longest"/>: the longest prefix location it starts with.
    /// <paramref name="slashChild"/>: a location named uri + "/" (for nginx's auto redirect).
    /// </summary>
    public void Find(ReadOnlySpan<char> uri, out T? exact, out T? longest, out bool equalPrefix, out T? slashChildExact, out T? slashChildInclusive)
    {
        exact = null;
        longest = null;
        equalPrefix = false;
        slashChildExact = null;
        slashChildInclusive = null;
        var node = _root;
        var rest = uri;
        if (node.Inclusive is not null)
        {
            longest = node.Inclusive;
        }

        while (true)
        {
            if (rest.IsEmpty)
            {
                exact = node.Exact;
                equalPrefix = node.Inclusive is not null;
                // The child whose edge is exactly "/" (or starts with "/" and is just "/").
                foreach (var c in node.Children)
                {
                    if (c.Edge == "/")
                    {
                        slashChildExact = c.Exact;
                        slashChildInclusive = c.Inclusive;
                    }
                }

                return;
            }

            Node? next = null;
            foreach (var c in node.Children)
            {
                if (c.Edge[0] == rest[0])
                {
                    next = c;
                    break;
                }
            }

            if (next is null)
            {
                return;
            }

            var edge = next.Edge.AsSpan();
            if (rest.Length < edge.Length)
            {
                // The URI ends inside this edge: only the auto-redirect case ("/dir" vs "/dir/") can match.
                if (edge.Length == rest.Length + 1 && edge[^1] == '/' && edge[..^1].SequenceEqual(rest))
                {
                    slashChildExact = next.Exact;
                    slashChildInclusive = next.Inclusive;
                }

                return;
            }

            if (!rest[..edge.Length].SequenceEqual(edge))
            {
                return;
            }

            rest = rest[edge.Length..];
            node = next;
            if (node.Inclusive is not null)
            {
                longest = node.Inclusive;
            }
        }
    }

    private static int CommonPrefix(string a, string b)
    {
        var n = Math.Min(a.Length, b.Length);
        var i = 0;
        while (i < n && a[i] == b[i])
        {
            i++;
        }

        return i;
    }
}
