namespace Portico.Static;

/// <summary>One satisfiable byte range: [Start, End) of the representation.</summary>
public readonly record struct ByteRange(long Start, long End)
{
    public long Length => End - Start;
}

public enum RangeOutcome
{
    /// <summary>The ranges apply: 206.</summary>
    Ok,

    /// <summary>416 with "Content-Range: bytes */length".</summary>
    NotSatisfiable,

    /// <summary>Ignore the header and send the whole representation (too many ranges, overlaps that add up to
    /// more than the whole, a range starting at 0 that is empty).</summary>
    Declined,
}

/// <summary>nginx's ngx_http_range_parse: "bytes=" ranges, with its leniency and its limits.</summary>
public static class ByteRanges
{
    /// <summary>
    /// Parses the value after "bytes=" (the caller checked the unit, case-insensitively, and a length of at
    /// least 7). <paramref name="maxRanges"/> is max_ranges (1 for responses that allow a single range).
    /// </summary>
    public static RangeOutcome Parse(ReadOnlySpan<char> spec, long contentLength, int maxRanges, List<ByteRange> ranges)
    {
        ranges.Clear();
        long size = 0;
        long remaining = maxRanges;
        var p = 0;
        const long cutoff = long.MaxValue / 10;
        const long cutlim = long.MaxValue % 10;

        while (true)
        {
            long start = 0, end = 0;
            var suffix = false;
            SkipSpaces(spec, ref p);
            if (At(spec, p) != '-')
            {
                if (!IsDigit(At(spec, p)))
                {
                    return RangeOutcome.NotSatisfiable;
                }

                while (IsDigit(At(spec, p)))
                {
                    var d = spec[p] - '0';
                    if (start >= cutoff && (start > cutoff || d > cutlim))
                    {
                        return RangeOutcome.NotSatisfiable;
                    }

                    start = start * 10 + d;
                    p++;
                }

                SkipSpaces(spec, ref p);
                if (At(spec, p++) != '-')
                {
                    return RangeOutcome.NotSatisfiable;
                }

                SkipSpaces(spec, ref p);
                if (At(spec, p) is ',' or '\0')
                {
                    end = contentLength;
                    goto Found;
                }
            }
            else
            {
                suffix = true;
                p++;
            }

            if (!IsDigit(At(spec, p)))
            {
                return RangeOutcome.NotSatisfiable;
            }

            while (IsDigit(At(spec, p)))
            {
                var d = spec[p] - '0';
                if (end >= cutoff && (end > cutoff || d > cutlim))
                {
                    return RangeOutcome.NotSatisfiable;
                }

                end = end * 10 + d;
                p++;
            }

            SkipSpaces(spec, ref p);
            if (At(spec, p) is not (',' or '\0'))
            {
                return RangeOutcome.NotSatisfiable;
            }

            if (suffix)
            {
                start = end < contentLength ? contentLength - end : 0;
                end = contentLength - 1;
            }

            end = end >= contentLength ? contentLength : end + 1;

        Found:
            if (start < end)
            {
                ranges.Add(new ByteRange(start, end));
                if (size > long.MaxValue - (end - start))
                {
                    return RangeOutcome.NotSatisfiable;
                }

                size += end - start;
                if (remaining-- == 0)
                {
                    return RangeOutcome.Declined;
                }
            }
            else if (start == 0)
            {
                return RangeOutcome.Declined;
            }

            if (At(spec, p++) != ',')
            {
                break;
            }
        }

        if (ranges.Count == 0)
        {
            return RangeOutcome.NotSatisfiable;
        }

        return size > contentLength ? RangeOutcome.Declined : RangeOutcome.Ok;
    }

    private static char At(ReadOnlySpan<char> s, int i) => i < s.Length ? s[i] : '\0';

    private static bool IsDigit(char c) => c is >= '0' and <= '9';

    private static void SkipSpaces(ReadOnlySpan<char> s, ref int p)
    {
        while (At(s, p) == ' ')
        {
            p++;
        }
    }
}
