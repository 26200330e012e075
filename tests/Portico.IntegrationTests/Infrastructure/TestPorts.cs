using System.Net;
using System.Net.Sockets;

namespace Portico.IntegrationTests.Infrastructure;

/// <summary>
/// Free loopback ports for tests: checked free, then released for the server under test to bind. They are
/// taken below the kernel's ephemeral range (ip_local_port_range, 32768 and up by default): a port in that
/// range can be given to any outgoing connection between the check and the bind, which made a test fail
/// with "Address already in use" once under load.
/// </summary>
public static class TestPorts
{
    private const int First = 10000;
    private static readonly int End = EphemeralStart();
    private static int s_next = First + (Environment.ProcessId % ((End - First) / 10)) * 10;
    private static readonly object Gate = new();

    private static int EphemeralStart()
    {
        try
        {
            var low = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
            return low > First + 2000 ? low : 32768;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32768;
        }
    }

    public static int GetFree()
    {
        lock (Gate)
        {
            for (var attempt = 0; attempt < 2000; attempt++)
            {
                var port = s_next++;
                if (s_next >= End)
                {
                    s_next = First;
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
