using System.Buffers;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Microsoft.Win32.SafeHandles;
using Portico.Config.Syntax;
using Portico.Pipeline;

namespace Portico.Static;

/// <summary>
/// Sends an opened regular file the way nginx's static handler and its filters do: Last-Modified, ETag and
/// Content-Type; 304/412 from the conditional headers; a single range (206), several (multipart/byteranges)
/// or 416; the bytes read with positioned asynchronous reads straight from the open handle.
/// </summary>
public static class StaticFileSender
{
    private static long s_boundary;

    public static async ValueTask<Flow> SendAsync(RequestContext r, StaticLocation loc, string path, FileProbe probe)
    {
        var response = r.Http.Response;
        var headers = response.Headers;
        var size = probe.Stat.Size;
        var mtime = probe.Stat.MtimeSeconds;
        var etag = loc.Etag ? Conditional.Etag(mtime, size) : null;
        var contentType = loc.Types.ContentTypeFor(r.Uri, loc.DefaultType);

        response.StatusCode = 200;
        r.Status = 200;
        headers.LastModified = Conditional.FormatHttpTime(mtime);
        if (etag is not null)
        {
            headers.ETag = etag;
        }

        var conditional = Conditional.Evaluate(r.Http.Request.Headers, mtime, etag, loc.IfModifiedSince);
        if (conditional == 412)
        {
            return r.Finish(412);
        }

        if (conditional == 304)
        {
            return StaticContent.NotModified(r);
        }

        response.ContentType = contentType;
        var ranges = new List<ByteRange>(1);
        var outcome = RangeOutcome.Declined;
        if (loc.MaxRanges > 0)
        {
            outcome = Ranges(r, loc, size, mtime, etag, ranges);
            if (outcome == RangeOutcome.NotSatisfiable)
            {
                // nginx's range filter runs after the headers filter: the 200 response's headers are added,
                // then the 416 special response runs the header filters again.
                foreach (var f in r.Location.HeaderFilters)
                {
                    f.Apply(r);
                }

                headers.Append(HeaderNames.ContentRange, "bytes */" + size.ToString(CultureInfo.InvariantCulture));
                response.ContentLength = null;
                return r.Finish(416);
            }

            if (outcome != RangeOutcome.Ok)
            {
                headers.AcceptRanges = "bytes";
            }
        }

        if (outcome != RangeOutcome.Ok)
        {
            response.ContentLength = size;
            ResponseStart.Apply(r);
            if (!HttpMethods.IsHead(r.Http.Request.Method) && size > 0)
            {
                await CopyAsync(r, loc, probe.Handle!, path, 0, size).ConfigureAwait(false);
            }

            return Flow.Done;
        }

        r.Status = 206;
        response.StatusCode = 206;
        if (ranges.Count == 1)
        {
            var range = ranges[0];
            headers.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes {range.Start}-{range.End - 1}/{size}");
            response.ContentLength = range.Length;
            ResponseStart.Apply(r);
            if (!HttpMethods.IsHead(r.Http.Request.Method))
            {
                await CopyAsync(r, loc, probe.Handle!, path, range.Start, range.Length).ConfigureAwait(false);
            }

            return Flow.Done;
        }

        var boundary = Interlocked.Increment(ref s_boundary).ToString("D20", CultureInfo.InvariantCulture);
        var partHeader = "\r\n--" + boundary + "\r\nContent-Type: " + contentType + "\r\nContent-Range: bytes ";
        var parts = new byte[ranges.Count][];
        long length = 0;
        for (var i = 0; i < ranges.Count; i++)
        {
            var range = ranges[i];
            parts[i] = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"{partHeader}{range.Start}-{range.End - 1}/{size}\r\n\r\n"));
            length += parts[i].Length + range.Length;
        }

        var tail = Encoding.ASCII.GetBytes("\r\n--" + boundary + "--\r\n");
        length += tail.Length;
        response.ContentType = "multipart/byteranges; boundary=" + boundary;
        response.ContentLength = length;
        ResponseStart.Apply(r);
        if (!HttpMethods.IsHead(r.Http.Request.Method))
        {
            var body = response.Body;
            for (var i = 0; i < ranges.Count; i++)
            {
                await body.WriteAsync(parts[i], r.Http.RequestAborted).ConfigureAwait(false);
                await CopyAsync(r, loc, probe.Handle!, path, ranges[i].Start, ranges[i].Length).ConfigureAwait(false);
            }

            await body.WriteAsync(tail, r.Http.RequestAborted).ConfigureAwait(false);
        }

        return Flow.Done;
    }

    /// <summary>ngx_http_range_header_filter's decision for a 200 response of known length.</summary>
    private static RangeOutcome Ranges(RequestContext r, StaticLocation loc, long size, long mtime, string? etag, List<ByteRange> ranges)
    {
        var request = r.Http.Request.Headers;
        if (!request.TryGetValue(HeaderNames.Range, out var rangeValues) || rangeValues.Count == 0 || rangeValues[0] is not { } range
            || range.Length < 7 || !range.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase))
        {
            return RangeOutcome.Declined;
        }

        if (request.TryGetValue(HeaderNames.IfRange, out var ifRangeValues) && ifRangeValues.Count > 0 && ifRangeValues[0] is { } ifRange)
        {
            if (ifRange.Length >= 2 && ifRange[^1] == '"')
            {
                if (etag is null || !string.Equals(ifRange, etag, StringComparison.Ordinal))
                {
                    return RangeOutcome.Declined;
                }
            }
            else if (Conditional.ParseHttpTime(ifRange) != mtime)
            {
                return RangeOutcome.Declined;
            }
        }

        return ByteRanges.Parse(range.AsSpan(6), size, loc.MaxRanges, ranges);
    }

    /// <summary>Copies [offset, offset+count) of the file to the response with positioned reads.</summary>
    private static async ValueTask CopyAsync(RequestContext r, StaticLocation loc, SafeFileHandle handle, string path, long offset, long count)
    {
        var chunk = (int)Math.Min(loc.ChunkSize, Math.Max(count, 1));
        var buffer = ArrayPool<byte>.Shared.Rent(chunk);
        try
        {
            var body = r.Http.Response.Body;
            var ct = r.Http.RequestAborted;
            while (count > 0)
            {
                var want = (int)Math.Min(chunk, count);
                var n = await RandomAccess.ReadAsync(handle, buffer.AsMemory(0, want), offset, ct).ConfigureAwait(false);
                if (n <= 0)
                {
                    r.LogError(LogLevel.Alert, $"pread() read only 0 of {want} from \"{path}\"");
                    r.Http.Abort();
                    return;
                }

                await body.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                offset += n;
                count -= n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
