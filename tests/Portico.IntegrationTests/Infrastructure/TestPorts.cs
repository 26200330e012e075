using System.Net;
using System.Net.Sockets;

namespace Portico.IntegrationTests.Infrastructure;

/// <summary>Free loopback ports for tests (bind to 0, read the port, release it).</summary>
public static class TestPorts
{
    private static int s_next = 20000 + (Environment.ProcessId % 2000) * 10;
    private static readonly object Gate = new();

    public static int GetFree()
    {
        lock (Gate)
        {
            for (var attempt = 0; attempt < 2000; attempt++)
            {
                var port = s_next++;
                if (s_next > 60000)
                {
                    s_next = 20000;
                }

                if (IsFree(port))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException("no free port");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var l = new TcpListener(IPAddress.Loopback, port);
            l.Start();
            l.Stop();
            using var l2 = new TcpListener(IPAddress.Any, port);
            l2.Start();
            l2.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

/// <summary>A temporary directory removed when disposed.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "portico-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Write(string name, string content)
    {
        var p = File(name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        System.IO.File.WriteAllText(p, content);
        return p;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
