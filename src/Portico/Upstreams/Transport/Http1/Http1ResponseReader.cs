namespace Portico.Upstreams.Transport.Http1;

/// <summary>What <see cref="Http1ResponseReader.Read"/> made of a whole response.</summary>
internal readonly record struct Http1ReadResult(
    string Verdict, int Status, int HeaderCount, long BodyLength, int TrailerCount, string? Error);

/// <summary>
/// Reads one complete response from bytes the way <see cref="Http1Connection"/> does (interim responses
/// skipped, the head parsed in pieces as reads would deliver it, then the body by its framing, trailers
/// included), without sockets: the entry point of the fuzzing harness and of the corpus replay test. It
/// must never throw, whatever the bytes.
/// </summary>
internal static class Http1ResponseReader
{
    public static Http1ReadResult Read(ReadOnlySpan<byte> data, int maxHead = 4096, bool head = false, int piece = 0)
    {
        var parser = new Http1HeadParser(trailers: false, new Http1ValueCache());
        var start = 0;
        while (true)
        {
            // The head arrives in pieces of a size the data chooses (as reads split it), then whole.
            var step = HeadParse.Incomplete;
            var available = start;
            var chunk = piece > 0 ? piece : (data.Length > 0 ? (data[0] % 7) + 1 : 1);
            while (available < data.Length)
            {
                available = Math.Min(data.Length, available + chunk);
                step = parser.Parse(data[start..available]);
                if (step != HeadParse.Incomplete)
                {
                    break;
                }

                if (available - start >= maxHead)
                {
                    return new Http1ReadResult("too-big", 0, 0, 0, 0, "upstream sent too big header");
                }
            }

            if (step == HeadParse.Invalid)
            {
                return new Http1ReadResult("invalid-head", 0, 0, 0, 0, parser.Error);
            }

            if (step == HeadParse.Incomplete)
            {
                return new Http1ReadResult("incomplete-head", 0, 0, 0, 0, "upstream prematurely closed connection");
            }

            if (parser.Length > maxHead)
            {
                return new Http1ReadResult("too-big", 0, 0, 0, 0, "upstream sent too big header");
            }

            if (parser.Status < 200 && parser.Status != 101)
            {
                start += parser.Length;
                parser.Reset();
                continue;
            }

            if (!parser.Finish(data.Slice(start, parser.Length)))
            {
                return new Http1ReadResult("invalid-head", parser.Status, 0, 0, 0, parser.Error);
            }

            break;
        }

        var body = data[(start + parser.Length)..];
        var status = parser.Status;
        var count = parser.Headers.Length;
        if (head || status is 204 or 304 or 101)
        {
            return new Http1ReadResult("ok", status, count, 0, 0, null);
        }

        if (!parser.Chunked)
        {
            if (parser.ContentLength < 0)
            {
                return new Http1ReadResult("ok-until-close", status, count, body.Length, 0, null);
            }

            return body.Length < parser.ContentLength
                ? new Http1ReadResult("truncated-body", status, count, body.Length, 0, "upstream prematurely closed connection")
                : new Http1ReadResult(body.Length > parser.ContentLength ? "ok-extra-data" : "ok", status, count, parser.ContentLength, 0, null);
        }

        var decoder = new Http1ChunkedDecoder();
        long length = 0;
        var at = 0;
        while (true)
        {
            var step = decoder.Next(body[at..], out var consumed, out _, out var dataLength);
            if (consumed < 0 || consumed > body.Length - at)
            {
                throw new InvalidOperationException("the chunked decoder consumed more than it was given");
            }

            at += consumed;
            switch (step)
            {
                case ChunkStep.Data:
                    length += dataLength;
                    continue;
                case ChunkStep.Invalid:
                    return new Http1ReadResult("invalid-chunked", status, count, length, 0, "upstream sent invalid chunked response");
                case ChunkStep.NeedMore:
                    return new Http1ReadResult("truncated-body", status, count, length, 0, "upstream prematurely closed connection");
            }

            var trailers = new Http1HeadParser(trailers: true);
            var t = trailers.Parse(body[at..]);
            if (t == HeadParse.Invalid)
            {
                return new Http1ReadResult("invalid-trailer", status, count, length, 0, trailers.Error);
            }

            if (t == HeadParse.Incomplete)
            {
                return new Http1ReadResult("truncated-body", status, count, length, 0, "upstream prematurely closed connection");
            }

            if (trailers.Length > maxHead)
            {
                return new Http1ReadResult("too-big-trailers", status, count, length, 0, "upstream sent too big trailers");
            }

            trailers.Finish(body.Slice(at, trailers.Length));
            var extra = at + trailers.Length < body.Length;
            return new Http1ReadResult(extra ? "ok-extra-data" : "ok", status, count, length, trailers.Headers.Length, null);
        }
    }
}
