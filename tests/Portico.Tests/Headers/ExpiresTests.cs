using Portico.Headers;

namespace Portico.Tests.Headers;

public class ExpiresTests
{
    [Theory]
    [InlineData("1h", ExpiresKind.Access, 3600)]
    [InlineData("+1h", ExpiresKind.Access, 3600)]
    [InlineData("-1", ExpiresKind.Access, -1)]
    [InlineData("0", ExpiresKind.Access, 0)]
    [InlineData("1y", ExpiresKind.Access, 31536000)]
    [InlineData("1d 2h", ExpiresKind.Access, 93600)]
    [InlineData("@15h30m", ExpiresKind.Daily, 55800)]
    [InlineData("@24h", ExpiresKind.Daily, 86400)]
    [InlineData("epoch", ExpiresKind.Epoch, 0)]
    [InlineData("max", ExpiresKind.Max, 0)]
    [InlineData("off", ExpiresKind.Off, 0)]
    public void ParsesLikeNginx(string value, ExpiresKind kind, long seconds)
    {
        var k = ExpiresKind.Access;
        Assert.Null(ExpiresParser.Parse(value, ref k, out var s));
        Assert.Equal(kind, k);
        Assert.Equal(seconds, s);
    }

    [Theory]
    [InlineData("foo", ExpiresKind.Access, "invalid value")]
    [InlineData("epoch", ExpiresKind.Modified, "invalid value")]
    [InlineData("@1h", ExpiresKind.Modified, "daily time cannot be used with \"modified\" parameter")]
    [InlineData("@25h", ExpiresKind.Access, "daily time value must be less than 24 hours")]
    [InlineData("", ExpiresKind.Access, "invalid value")]
    public void Errors(string value, ExpiresKind kind, string error)
    {
        Assert.Equal(error, ExpiresParser.Parse(value, ref kind, out _));
    }

    [Fact]
    public void NextTimeIsTodayOrTomorrow()
    {
        if (TimeZoneInfo.Local.BaseUtcOffset != TimeSpan.Zero)
        {
            // The expected values below are written for UTC (the test machines' zone).
            return;
        }

        var now = new DateTimeOffset(2026, 11, 30, 9, 17, 11, TimeSpan.Zero);
        Assert.Equal(new DateTimeOffset(2026, 11, 30, 15, 30, 0, TimeSpan.Zero).ToUnixTimeSeconds(), HeadersFilter.NextTime(now, 55800));
        Assert.Equal(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds(), HeadersFilter.NextTime(now, 8 * 3600));
    }

    [Theory]
    [InlineData(200, true)]
    [InlineData(201, true)]
    [InlineData(204, true)]
    [InlineData(206, true)]
    [InlineData(301, true)]
    [InlineData(302, true)]
    [InlineData(303, true)]
    [InlineData(304, true)]
    [InlineData(307, true)]
    [InlineData(308, true)]
    [InlineData(404, false)]
    [InlineData(500, false)]
    [InlineData(202, false)]
    public void SafeStatuses(int status, bool safe)
    {
        Assert.Equal(safe, HeadersFilter.IsSafeStatus(status));
    }
}
