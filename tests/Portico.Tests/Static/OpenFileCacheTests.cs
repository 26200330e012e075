using Portico.Static;

namespace Portico.Tests.Static;

public sealed class OpenFileCacheTests : IDisposable
{
    private sealed class ManualTime : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private readonly string _dir = Directory.CreateTempSubdirectory("portico-ofc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private FileProbe Open(string path)
    {
        var err = NativeFiles.OpenAndStat(path, SymlinkPolicy.Off, 0, out var handle, out var stat, out var failed);
        return new FileProbe(err, failed, stat, handle);
    }

    [Fact]
    public void HitWithinValidityNeedsNoSystemCall()
    {
        var time = new ManualTime();
        using var cache = new OpenFileCache(10, 60, time);
        var path = Path.Combine(_dir, "a.txt");
        File.WriteAllText(path, "hello");

        Assert.False(cache.TryGet(path, SymlinkPolicy.Off, 0, 30, needHandle: true, out _));
        using (var stored = cache.Store(path, SymlinkPolicy.Off, 0, Open(path), minUses: 1, cacheErrors: false))
        {
            Assert.NotNull(stored.Probe.Handle);
        }

        File.Delete(path); // the cached handle still reads the file, as nginx's cached descriptor would
        Assert.True(cache.TryGet(path, SymlinkPolicy.Off, 0, 30, needHandle: true, out var hit));
        using (hit)
        {
            var buffer = new byte[5];
            Assert.Equal(5, RandomAccess.Read(hit.Probe.Handle!, buffer, 0));
            Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buffer));
        }

        time.Now += TimeSpan.FromSeconds(31);
        Assert.False(cache.TryGet(path, SymlinkPolicy.Off, 0, 30, needHandle: true, out _));
    }

    [Fact]
    public void ErrorsAreCachedOnlyWhenAsked()
    {
        var time = new ManualTime();
        using var cache = new OpenFileCache(10, 60, time);
        var path = Path.Combine(_dir, "missing");
        cache.Store(path, SymlinkPolicy.Off, 0, Open(path), 1, cacheErrors: false).Dispose();
        Assert.False(cache.TryGet(path, SymlinkPolicy.Off, 0, 60, needHandle: false, out _));

        cache.Store(path, SymlinkPolicy.Off, 0, Open(path), 1, cacheErrors: true).Dispose();
        Assert.True(cache.TryGet(path, SymlinkPolicy.Off, 0, 60, needHandle: false, out var hit));
        Assert.Equal(Errno.ENOENT, hit.Probe.Error);
        Assert.Equal("open()", hit.Probe.Failed);
    }

    [Fact]
    public void HandleIsKeptOnlyAfterMinUses()
    {
        var time = new ManualTime();
        using var cache = new OpenFileCache(10, 60, time);
        var path = Path.Combine(_dir, "b.txt");
        File.WriteAllText(path, "x");
        using (var first = cache.Store(path, SymlinkPolicy.Off, 0, Open(path), minUses: 2, cacheErrors: false))
        {
            Assert.NotNull(first.Probe.Handle);
        }

        // The metadata is there, the handle is not yet: a request that needs the file opens it again.
        Assert.True(cache.TryGet(path, SymlinkPolicy.Off, 0, 60, needHandle: false, out _));
        Assert.False(cache.TryGet(path, SymlinkPolicy.Off, 0, 60, needHandle: true, out _));
        cache.Store(path, SymlinkPolicy.Off, 0, Open(path), minUses: 2, cacheErrors: false).Dispose();
        Assert.True(cache.TryGet(path, SymlinkPolicy.Off, 0, 60, needHandle: true, out var hit));
        hit.Dispose();
    }

    [Fact]
    public void InactiveEntriesAndTheLeastRecentlyUsedAreEvicted()
    {
        var time = new ManualTime();
        using var cache = new OpenFileCache(2, 20, time);
        var paths = new string[3];
        for (var i = 0; i < 3; i++)
        {
            paths[i] = Path.Combine(_dir, i + ".txt");
            File.WriteAllText(paths[i], "x");
            cache.Store(paths[i], SymlinkPolicy.Off, 0, Open(paths[i]), 1, false).Dispose();
            time.Now += TimeSpan.FromSeconds(1);
        }

        cache.Sweep();
        Assert.Equal(2, cache.Count);
        Assert.False(cache.TryGet(paths[0], SymlinkPolicy.Off, 0, 60, needHandle: false, out _));

        time.Now += TimeSpan.FromSeconds(30);
        cache.Sweep();
        Assert.Equal(0, cache.Count);
    }
}
