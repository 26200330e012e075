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
}
