using System.Buffers;
using System.IO.Compression;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Portico.Config.Syntax;
using Portico.Logging;

namespace Portico.Tests.Logging;

public sealed class LogWriterTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "portico-logwriter-" + Guid.NewGuid().ToString("N")[..12]);

    public LogWriterTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string File(string name) => Path.Combine(_dir, name);

    private static void Access(LogWriter w, LogSink sink, string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line);
        var pooled = ArrayPool<byte>.Shared.Rent(bytes.Length);
        bytes.CopyTo(pooled, 0);
        w.EnqueueAccess(sink, pooled, bytes.Length);
    }

    private static string Read(string path) => System.IO.File.Exists(path) ? System.IO.File.ReadAllText(path) : string.Empty;

    [Fact]
    public async Task UnbufferedLinesAreWrittenInOrder()
    {
        await using var w = new LogWriter();
        var sink = w.GetSink(File("a.log"));
        for (var i = 0; i < 100; i++)
        {
            Access(w, sink, $"line {i}\n");
        }

        await w.WhenIdleAsync();
        var lines = Read(File("a.log")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"line {i}"), lines);
    }

    [Fact]
    public async Task BufferHoldsLinesUntilItIsFull()
    {
        await using var w = new LogWriter(time: new FakeTimeProvider());
        var sink = w.GetSink(File("b.log"));
        w.Configure(sink, new LogBufferSpec(32, null, 0));
        Access(w, sink, "0123456789\n"); // 11
        Access(w, sink, "0123456789\n"); // 22
        await w.WhenIdleAsync();
        Assert.Equal(string.Empty, Read(File("b.log")));

        Access(w, sink, "0123456789\n"); // 33 > 32: the first two go out, the third waits
        await w.WhenIdleAsync();
        Assert.Equal("0123456789\n0123456789\n", Read(File("b.log")));

        // A line longer than the buffer is written at once, after what was buffered.
        Access(w, sink, new string('x', 40) + "\n");
        await w.WhenIdleAsync();
        Assert.Equal("0123456789\n0123456789\n0123456789\n" + new string('x', 40) + "\n", Read(File("b.log")));
    }

    [Fact]
    public async Task FlushTimeWritesTheBuffer()
    {
        var time = new FakeTimeProvider();
        await using var w = new LogWriter(time: time);
        var sink = w.GetSink(File("f.log"));
        w.Configure(sink, new LogBufferSpec(64 * 1024, TimeSpan.FromSeconds(5), 0));
        Access(w, sink, "first\n");
        await w.WhenIdleAsync();
        time.Advance(TimeSpan.FromSeconds(4));
        await w.WhenIdleAsync();
        Assert.Equal(string.Empty, Read(File("f.log")));

        time.Advance(TimeSpan.FromSeconds(1));
        await w.WhenIdleAsync();
        Assert.Equal("first\n", Read(File("f.log")));
    }

    [Fact]
    public async Task ShutdownAndDrainFlushBuffers()
    {
        var w = new LogWriter(time: new FakeTimeProvider());
        var sink = w.GetSink(File("s.log"));
        w.Configure(sink, new LogBufferSpec(64 * 1024, null, 0));
        Access(w, sink, "one\n");
        await w.DrainAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("one\n", Read(File("s.log")));

        Access(w, sink, "two\n");
        await w.DisposeAsync();
        Assert.Equal("one\ntwo\n", Read(File("s.log")));
    }

    [Fact]
    public async Task GzipWritesOneMemberPerFlush()
    {
        await using var w = new LogWriter(time: new FakeTimeProvider());
        var sink = w.GetSink(File("g.log.gz"));
        w.Configure(sink, new LogBufferSpec(64 * 1024, null, 9));
        Access(w, sink, "alpha\n");
        Access(w, sink, "beta\n");
        await w.DrainAsync(TimeSpan.FromSeconds(10));
        Access(w, sink, "gamma\n");
        await w.DrainAsync(TimeSpan.FromSeconds(10));

        var raw = System.IO.File.ReadAllBytes(File("g.log.gz"));
        // Two gzip members (each starts with 1f 8b), which gunzip reads as one stream.
        var members = 0;
        for (var i = 0; i + 2 < raw.Length; i++)
        {
            if (raw[i] == 0x1f && raw[i + 1] == 0x8b && raw[i + 2] == 0x08)
            {
                members++;
            }
        }

        Assert.Equal(2, members);
        using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        Assert.Equal("alpha\nbeta\ngamma\n", await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task DroppedLinesAreCountedAndReportedOncePerSecond()
    {
        var time = new FakeTimeProvider();
        var errorPath = File("error.log");
        var w = new LogWriter(capacity: 4, time: time, start: false);
        await using var _ = w;
        var errorSink = w.GetSink(errorPath);
        w.AlertLog = new ErrorLog(w, [(errorSink, LogLevel.Error)]);
        var sink = w.GetSink(File("d.log"));
        for (var i = 0; i < 10; i++)
        {
            Access(w, sink, $"line {i}\n");
        }

        Assert.Equal(6, w.Dropped);
        w.Start();
        await w.WhenIdleAsync();
        Assert.Equal("line 0\nline 1\nline 2\nline 3\n", Read(File("d.log")));
        var alerts = Read(errorPath).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(alerts);
        Assert.Matches(@"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[alert\] \d+#\d+: 6 log lines dropped: the log writer's queue of 4 lines was full$", alerts[0]);

        // More drops within the same second wait for the next report.
        var release = new TaskCompletionSource();
        await w.HoldAsync(release.Task);
        for (var i = 0; i < 7; i++)
        {
            Access(w, sink, "x\n");
        }

        release.SetResult();
        await w.WhenIdleAsync();
        Assert.Equal(9, w.Dropped);
        Assert.Single(Read(errorPath).Split('\n', StringSplitOptions.RemoveEmptyEntries));

        time.Advance(TimeSpan.FromSeconds(1));
        await w.WhenIdleAsync();
        var after = Read(errorPath).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, after.Length);
        Assert.Contains(": 3 log lines dropped", after[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReopenFollowsARotatedFile()
    {
        await using var w = new LogWriter();
        var path = File("r.log");
        var sink = w.GetSink(path);
        sink.EnsureOpen();
        Access(w, sink, "before\n");
        await w.WhenIdleAsync();

        // logrotate: rename, then tell the server to reopen.
        System.IO.File.Move(path, path + ".1");
        Access(w, sink, "still old\n");
        await w.WhenIdleAsync();
        w.ReopenAll();
        Access(w, sink, "after\n");
        await w.WhenIdleAsync();

        Assert.Equal("before\nstill old\n", Read(path + ".1"));
        Assert.Equal("after\n", Read(path));
    }

    [Fact]
    public async Task FilesAreAppendedEvenAfterATruncation()
    {
        // logrotate's copytruncate: the next line starts the file again, without a hole of zero bytes.
        await using var w = new LogWriter();
        var path = File("t.log");
        var sink = w.GetSink(path);
        Access(w, sink, "a long first line\n");
        await w.WhenIdleAsync();
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            f.SetLength(0);
        }

        Access(w, sink, "second\n");
        await w.WhenIdleAsync();
        Assert.Equal("second\n", Read(path));
    }

    [Fact]
    public async Task ReopenWritesBuffersToTheOldFileFirst()
    {
        await using var w = new LogWriter(time: new FakeTimeProvider());
        var path = File("rb.log");
        var sink = w.GetSink(path);
        sink.EnsureOpen();
        w.Configure(sink, new LogBufferSpec(4096, null, 0));
        Access(w, sink, "buffered\n");
        await w.WhenIdleAsync();
        System.IO.File.Move(path, path + ".1");
        w.ReopenAll();
        Access(w, sink, "new\n");
        await w.DrainAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("buffered\n", Read(path + ".1"));
        Assert.Equal("new\n", Read(path));
    }

    [Fact]
    public async Task FileCacheKeepsAtMostMaxFilesOpen()
    {
        var time = new FakeTimeProvider();
        await using var w = new LogWriter(time: time);
        var cache = w.GetFileCache(new OpenLogFileCacheSpec(2, TimeSpan.FromSeconds(10), 1, TimeSpan.FromSeconds(60)));
        var log = ErrorLog.Stderr();
        var context = new RequestErrorContext(1, ", client: x");
        foreach (var name in new[] { "1", "2", "3", "1" })
        {
            var bytes = Encoding.UTF8.GetBytes(name + "\n");
            var pooled = ArrayPool<byte>.Shared.Rent(bytes.Length);
            bytes.CopyTo(pooled, 0);
            w.EnqueueDynamic(File(name + ".log"), cache, pooled, bytes.Length, log, context);
        }

        await w.WhenIdleAsync();
        Assert.Equal(2, cache.OpenCount);
        Assert.Equal("1\n1\n", Read(File("1.log")));
        Assert.Equal("3\n", Read(File("3.log")));

        time.Advance(TimeSpan.FromSeconds(11));
        await w.WhenIdleAsync();
        Assert.Equal(0, cache.OpenCount);
    }

    [Fact]
    public async Task DynamicFileThatCannotBeOpenedIsReportedWithTheRequestContext()
    {
        await using var w = new LogWriter();
        var errorPath = File("err.log");
        var errorLog = new ErrorLog(w, [(w.GetSink(errorPath), LogLevel.Error)]);
        var cache = w.GetFileCache(OpenLogFileCacheSpec.Off);
        var bytes = ArrayPool<byte>.Shared.Rent(4);
        w.EnqueueDynamic(File("missing/dir/x.log"), cache, bytes, 2, errorLog, new RequestErrorContext(9, ", client: 127.0.0.1, server: a, request: \"GET / HTTP/1.1\", host: \"a\""));
        await w.DrainAsync(TimeSpan.FromSeconds(10));
        var line = Read(errorPath);
        Assert.Matches(
            "\\[crit\\] \\d+#\\d+: \\*9 open\\(\\) \"" + System.Text.RegularExpressions.Regex.Escape(File("missing/dir/x.log")) +
            "\" failed \\(2: No such file or directory\\) while logging request, client: 127.0.0.1, server: a, request: \"GET / HTTP/1.1\", host: \"a\"\n$",
            line);
    }
}
