using System.Globalization;

namespace Portico.Config.Directives;

/// <summary>nginx's argument value parsers: sizes, offsets, times, numbers and flags.</summary>
public static class ConfigValues
{
    /// <summary>ngx_parse_size: bytes with optional k/K or m/M.</summary>
    public static bool TryParseSize(string s, out long size)
    {
        size = 0;
        if (s.Length == 0)
        {
            return false;
        }

        long scale = 1;
        var digits = s.AsSpan();
        switch (s[^1])
        {
            case 'k':
            case 'K':
                scale = 1024;
                digits = digits[..^1];
                break;
            case 'm':
            case 'M':
                scale = 1024 * 1024;
                digits = digits[..^1];
                break;
        }

        if (!TryParseDigits(digits, out var n) || n > long.MaxValue / scale)
        {
            return false;
        }

        size = n * scale;
        return true;
    }

    /// <summary>ngx_parse_offset: like a size, also with g/G.</summary>
    public static bool TryParseOffset(string s, out long size)
    {
        if (s.Length > 0 && (s[^1] == 'g' || s[^1] == 'G'))
        {
            if (!TryParseDigits(s.AsSpan(0, s.Length - 1), out var n) || n > long.MaxValue / (1024L * 1024 * 1024))
            {
                size = 0;
                return false;
            }

            size = n * 1024L * 1024 * 1024;
            return true;
        }

        return TryParseSize(s, out size);
    }

    /// <summary>ngx_parse_time with is_sec=0: milliseconds ("ms", "s", "m", "h", "d", "w", "M"; plain number = seconds).</summary>
    public static bool TryParseMilliseconds(string s, out long ms) => TryParseTime(s, false, out ms);

    /// <summary>ngx_parse_time with is_sec=1: seconds ("s" .. "y"; no "ms").</summary>
    public static bool TryParseSeconds(string s, out long seconds) => TryParseTime(s, true, out seconds);

    public static bool TryParseTimeSpan(string s, out TimeSpan span)
    {
        if (TryParseMilliseconds(s, out var ms))
        {
            span = TimeSpan.FromMilliseconds(ms);
            return true;
        }

        span = default;
        return false;
    }

    private enum Step { Start, Year, Month, Week, Day, Hour, Min, Sec, Msec, Last }

    private static bool TryParseTime(string s, bool isSec, out long result)
    {
        result = 0;
        long value = 0, total = 0;
        var valid = false;
        var step = isSec ? Step.Start : Step.Month;
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (c is >= '0' and <= '9')
            {
                if (value > (long.MaxValue - (c - '0')) / 10)
                {
                    return false;
                }

                value = value * 10 + (c - '0');
                valid = true;
                i++;
                continue;
            }

            i++;
            long scale;
            switch (c)
            {
                case 'y':
                    if (step > Step.Start)
                    {
                        return false;
                    }

                    step = Step.Year;
                    scale = 60L * 60 * 24 * 365;
                    break;
                case 'M':
                    if (step >= Step.Month)
                    {
                        return false;
                    }

                    step = Step.Month;
                    scale = 60L * 60 * 24 * 30;
                    break;
                case 'w':
                    if (step >= Step.Week)
                    {
                        return false;
                    }

                    step = Step.Week;
                    scale = 60L * 60 * 24 * 7;
                    break;
                case 'd':
                    if (step >= Step.Day)
                    {
                        return false;
                    }

                    step = Step.Day;
                    scale = 60L * 60 * 24;
                    break;
                case 'h':
                    if (step >= Step.Hour)
                    {
                        return false;
                    }

                    step = Step.Hour;
                    scale = 60L * 60;
                    break;
                case 'm':
                    if (i < s.Length && s[i] == 's')
                    {
                        if (isSec || step >= Step.Msec)
                        {
                            return false;
                        }

                        i++;
                        step = Step.Msec;
                        scale = 1;
                        break;
                    }

                    if (step >= Step.Min)
                    {
                        return false;
                    }

                    step = Step.Min;
                    scale = 60;
                    break;
                case 's':
                    if (step >= Step.Sec)
                    {
                        return false;
                    }

                    step = Step.Sec;
                    scale = 1;
                    break;
                case ' ':
                    if (step >= Step.Sec)
                    {
                        return false;
                    }

                    step = Step.Last;
                    scale = 1;
                    break;
                default:
                    return false;
            }

            if (step != Step.Msec && !isSec)
            {
                scale *= 1000;
            }

            if (value > long.MaxValue / scale)
            {
                return false;
            }

            value *= scale;
            if (total > long.MaxValue - value)
            {
                return false;
            }

            total += value;
            value = 0;
            while (i < s.Length && s[i] == ' ')
            {
                i++;
            }
        }

        if (!valid)
        {
            return false;
        }

        if (!isSec)
        {
            if (value > long.MaxValue / 1000)
            {
                return false;
            }

            value *= 1000;
        }

        if (total > long.MaxValue - value)
        {
            return false;
        }

        result = total + value;
        return true;
    }

    /// <summary>ngx_atoi: a non-negative decimal number.</summary>
    public static bool TryParseNumber(string s, out long n) => TryParseDigits(s.AsSpan(), out n);

    private static bool TryParseDigits(ReadOnlySpan<char> s, out long n)
    {
        n = 0;
        if (s.IsEmpty)
        {
            return false;
        }

        foreach (var c in s)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }

            if (n > (long.MaxValue - (c - '0')) / 10)
            {
                return false;
            }

            n = n * 10 + (c - '0');
        }

        return true;
    }

    /// <summary>Formats a millisecond time the way nginx's docs write it (for -T style output and docs).</summary>
    public static string FormatMilliseconds(long ms) =>
        ms % 1000 == 0 ? (ms / 1000).ToString(CultureInfo.InvariantCulture) + "s" : ms.ToString(CultureInfo.InvariantCulture) + "ms";
}
