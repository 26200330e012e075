using Portico.Static;

namespace Portico.Tests.Static;

public class ByteRangesTests
{
    private static (RangeOutcome Outcome, string Ranges) Parse(string spec, long length, int max = int.MaxValue)
    {
        var list = new List<ByteRange>();
        var outcome = ByteRanges.Parse(spec, length, max, list);
        return (outcome, string.Join(",", list.Select(r => $"{r.Start}-{r.End}")));
    }

    [Theory]
    [InlineData("0-4", 12, "0-5")]
    [InlineData("5-", 12, "5-12")]
    [InlineData("-2", 12, "10-12")]
    [InlineData("-100", 12, "0-12")]
    [InlineData("0-100", 12, "0-12")]
    [InlineData(" 1 - 2 ", 12, "1-3")]
    [InlineData("0-1,5-6,-2", 12, "0-2,5-7,10-12")]
    [InlineData("11-11", 12, "11-12")]
    public void SatisfiableRanges(string spec, long length, string expected)
    {
        var (outcome, ranges) = Parse(spec, length);
        Assert.Equal(RangeOutcome.Ok, outcome);
        Assert.Equal(expected, ranges);
    }

    [Theory]
    [InlineData("12-", 12)]
    [InlineData("100-200", 12)]
    [InlineData("abc", 12)]
    [InlineData("1-2-3", 12)]
    [InlineData("-", 12)]
    [InlineData("5-x", 12)]
    [InlineData("99999999999999999999-", 12)]
    [InlineData("12-13,20-30", 12)]
    public void NotSatisfiable(string spec, long length)
    {
        Assert.Equal(RangeOutcome.NotSatisfiable, Parse(spec, length).Outcome);
    }

    [Theory]
    [InlineData("0-1,2-3", 12, 1)]
    [InlineData("0-1,2-3,4-5", 12, 2)]
    public void MoreRangesThanMaxRangesSendTheWholeFile(string spec, long length, int max)
    {
        Assert.Equal(RangeOutcome.Declined, Parse(spec, length, max).Outcome);
    }

    [Fact]
    public void OverlappingRangesLargerThanTheFileSendTheWholeFile()
    {
        Assert.Equal(RangeOutcome.Declined, Parse("0-10,0-10", 12).Outcome);
    }

    [Fact]
    public void EmptyFileWithRangeFromZeroIsDeclined()
    {
        // nginx: start == end == 0 declines instead of answering 416.
        Assert.Equal(RangeOutcome.Declined, Parse("0-", 0).Outcome);
    }

    [Fact]
    public void UnsatisfiableRangeAmongGoodOnesIsSkipped()
    {
        var (outcome, ranges) = Parse("0-1,50-60", 12);
        Assert.Equal(RangeOutcome.Ok, outcome);
        Assert.Equal("0-2", ranges);
    }

    [Fact]
    public void LargeOffsets()
    {
        const long size = 100L * 1024 * 1024;
        var (outcome, ranges) = Parse("104857500-", size);
        Assert.Equal(RangeOutcome.Ok, outcome);
        Assert.Equal("104857500-104857600", ranges);
    }
}
