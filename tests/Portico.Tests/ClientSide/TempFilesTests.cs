using Portico.ClientSide;

namespace Portico.Tests.ClientSide;

public class TempFilesTests
{
    [Fact]
    public void Create_MakesTheLevelDirectories_AndAgainWhenTheyWereRemoved()
    {
        var root = Path.Combine(Path.GetTempPath(), "portico-temp-" + Guid.NewGuid().ToString("N"));
        try
        {
            var path = new TempPath(root, [1, 2]);
            using (var first = TempFiles.Create(path, out var name))
            {
                // nginx's levels: the last digit, then the two before it, name the directories.
                var file = Path.GetFileName(name);
                Assert.Equal(Path.Combine(root, file[^1..], file[^3..^1], file), name);
                Assert.True(File.Exists(name));
            }

            // The directories made are remembered; one removed meanwhile is made again.
            var flat = new TempPath(Path.Combine(root, "flat"), []);
            using (TempFiles.Create(flat, out _))
            {
            }

            Directory.Delete(root, recursive: true);
            using var second = TempFiles.Create(flat, out var again);
            Assert.True(File.Exists(again));
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    [Fact]
    public async Task AnonymousFiles_AreUnlinkedAndReused_AndALargeOneIsEmptiedFirst()
    {
        var root = Path.Combine(Path.GetTempPath(), "portico-temp-" + Guid.NewGuid().ToString("N"));
        try
        {
            var path = new TempPath(root, []);
            var first = TempFiles.RentAnonymous(path, out var name1);
            Assert.False(File.Exists(name1));
            await first.WriteAsync(new byte[TempFiles.IdleSizeLimit + 1]);
            Assert.Equal(TempFiles.IdleSizeLimit + 1, RandomAccess.GetLength(first.Handle));
            TempFiles.Release(first);

            // The same open file serves again, emptied (it held more than the idle limit), under a new name.
            var second = TempFiles.RentAnonymous(path, out var name2);
            Assert.Same(first.Handle, second.Handle);
            Assert.Equal(0, RandomAccess.GetLength(second.Handle));
            Assert.NotEqual(name1, name2);
            Assert.Empty(Directory.GetFiles(root));

            // Beyond the idle limit, released files are closed.
            var many = Enumerable.Range(0, TempFiles.IdleLimit).Select(i => TempFiles.RentAnonymous(path, out _)).Append(second).ToList();
            foreach (var f in many)
            {
                TempFiles.Release(f);
            }

            Assert.Equal(1, many.Count(f => f.Handle.IsClosed));
            var kept = Enumerable.Range(0, TempFiles.IdleLimit).Select(i => TempFiles.RentAnonymous(path, out _)).ToList();
            Assert.All(kept, f => Assert.False(f.Handle.IsClosed));
            Assert.Empty(Directory.GetFiles(root));
            kept.ForEach(f => TempFiles.Release(f));
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }
}
