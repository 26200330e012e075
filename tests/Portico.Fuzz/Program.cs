using Portico.Upstreams.Transport.Http1;
using SharpFuzz;

namespace Portico.Fuzz;

/// <summary>
/// Feeds fuzzer input to Portico's HTTP/1 response reader (the head parser, the framing checks, the chunked
/// decoder and the trailer parser) with several head limits and read sizes. Any exception is a finding:
/// the reader must classify every input. "afl" (default) runs under afl-fuzz through SharpFuzz's
/// out-of-process mode; "libfuzzer" under libfuzzer-dotnet; "replay FILE..." runs files once.
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        var mode = args.Length > 0 ? args[0] : "afl";
        switch (mode)
        {
            case "libfuzzer":
                Fuzzer.LibFuzzer.Run(Target);
                break;
            case "replay":
                foreach (var file in args.Skip(1))
                {
                    var result = Run(File.ReadAllBytes(file));
                    Console.WriteLine($"{Path.GetFileName(file)}: {result.Verdict} {result.Status} {result.Error}");
                }

                break;
            default:
                Fuzzer.OutOfProcess.Run(stream =>
                {
                    using var ms = new MemoryStream();
                    stream.CopyTo(ms);
                    Target(ms.ToArray());
                });
                break;
        }
    }

    private static void Target(ReadOnlySpan<byte> data) => Run(data);

    private static Http1ReadResult Run(ReadOnlySpan<byte> data)
    {
        var whole = Http1ResponseReader.Read(data, maxHead: 4096, head: false, piece: 1 << 20);
        // The same bytes in small reads must give the same verdict: the parser never re-reads a line.
        var pieces = Http1ResponseReader.Read(data, maxHead: 4096);
        if (whole.Verdict != pieces.Verdict && whole.Verdict != "too-big" && pieces.Verdict != "too-big")
        {
            throw new InvalidOperationException($"verdicts differ: {whole.Verdict} / {pieces.Verdict}");
        }

        Http1ResponseReader.Read(data, maxHead: 64, head: true, piece: 3);
        return whole;
    }
}
