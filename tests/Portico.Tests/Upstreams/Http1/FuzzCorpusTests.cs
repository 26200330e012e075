using Portico.Upstreams.Transport.Http1;

namespace Portico.Tests.Upstreams.Http1;

/// <summary>
/// Replays the SharpFuzz corpus (tests/Portico.Fuzz/corpus) through the response reader, as the fuzzing
/// harness does: every file is classified without an exception, the same whatever the read sizes, and
/// "valid-" files are accepted while "bad-" files are refused.
/// </summary>
public sealed class FuzzCorpusTests
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fuzz-corpus"), "*.http").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(file));
        }

        return data;
    }

    [Fact]
    public void TheCorpusIsThere() => Assert.True(Files().Count >= 40);

    [Theory]
    [MemberData(nameof(Files))]
    public void ReplaysTheCorpus(string name)
    {
        var bytes = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fuzz-corpus", name));
        var whole = Http1ResponseReader.Read(bytes, piece: 1 << 20);
        foreach (var piece in new[] { 1, 2, 5, 64 })
        {
            Assert.Equal(whole, Http1ResponseReader.Read(bytes, piece: piece));
        }

        Http1ResponseReader.Read(bytes, maxHead: 64, head: true, piece: 3);
        if (name.StartsWith("valid-", StringComparison.Ordinal))
        {
            Assert.True(whole.Verdict.StartsWith("ok", StringComparison.Ordinal), $"{whole.Verdict}: {whole.Error}");
        }
        else if (name.StartsWith("bad-", StringComparison.Ordinal))
        {
            Assert.False(whole.Verdict.StartsWith("ok", StringComparison.Ordinal), whole.Verdict);
            Assert.NotNull(whole.Error);
        }
    }
}
