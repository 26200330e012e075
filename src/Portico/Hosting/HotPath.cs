using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Portico.Hosting;

/// <summary>
/// The socket-level settings measured in bench/ (issue 8): inline scheduling of socket completions and of
/// Kestrel's request processing, and 64 KiB transport blocks; and, on one CPU, the runtime's tiering delay
/// (<see cref="RestartForSingleCpuTiering"/>). The two socket settings are on by default; the environment
/// variables exist for A/B measurements (bench's "portico-dispatch" row) and for diagnosing a suspected
/// blocking call on the request path.
/// </summary>
public static partial class HotPath
{
    /// <summary>The runtime setting <see cref="RestartForSingleCpuTiering"/> adds.</summary>
    private const string TieringMultiplierVariable = "DOTNET_TC_DelaySingleProcMultiplier";

    /// <summary>PORTICO_INLINE_SCHEDULING=0 turns inline scheduling off.</summary>
    public static bool InlineScheduling { get; } = Environment.GetEnvironmentVariable("PORTICO_INLINE_SCHEDULING") != "0";

    /// <summary>PORTICO_LARGE_BLOCKS=0 keeps Kestrel's 4 KiB blocks.</summary>
    public static bool LargeBlocks { get; } = Environment.GetEnvironmentVariable("PORTICO_LARGE_BLOCKS") != "0";

    /// <summary>
    /// Socket completions run on the epoll thread instead of being queued to the thread pool. .NET reads
    /// DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS once, when the first socket engine starts, so this must run
    /// before any socket is created (Main calls it first).
    /// </summary>
    public static void EnableInlineSocketCompletions()
    {
        if (InlineScheduling && Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
        {
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        }
    }

    /// <summary>
    /// On one CPU (a process pinned to one core, or a container limited to one) .NET waits ten times longer
    /// (one second instead of 100 ms, restarted by every newly called method) before it promotes hot methods
    /// to optimized code. Measured under load (bench/README.md), that keeps Portico at a third to a half of its
    /// speed for about 40 s after every start, against 5–10 s with the multiplier at 1. The runtime reads the
    /// setting from the environment only, when it starts; so on one CPU Portico starts itself again, once, in
    /// the same process (execve: the same PID, program, arguments and open descriptors) with
    /// DOTNET_TC_DelaySingleProcMultiplier=1 added. Setting that variable yourself (any value) keeps your
    /// value and skips the restart; Native AOT builds have no tiers and never restart. Returns only when no
    /// restart happened.
    /// </summary>
    public static void RestartForSingleCpuTiering()
    {
        if (!OperatingSystem.IsLinux() || !RuntimeFeature.IsDynamicCodeSupported || Environment.ProcessorCount != 1
            || Environment.GetEnvironmentVariable(TieringMultiplierVariable) is not null
            || Environment.GetEnvironmentVariable("COMPlus_TC_DelaySingleProcMultiplier") is not null
            || Environment.GetEnvironmentVariable("DOTNET_TieredCompilation") == "0")
        {
            return;
        }

        byte[] cmdline, environ;
        try
        {
            cmdline = File.ReadAllBytes("/proc/self/cmdline");
            environ = File.ReadAllBytes("/proc/self/environ");
        }
        catch (IOException)
        {
            return;
        }
        catch (UnauthorizedAccessException)
        {
            return;
        }

        var argv = SplitNul(cmdline);
        if (argv.Count == 0)
        {
            return;
        }

        var env = SplitNul(environ);
        env.Add(System.Text.Encoding.ASCII.GetBytes(TieringMultiplierVariable + "=1"));
        var allocated = new List<nint>();
        try
        {
            var path = Native(System.Text.Encoding.UTF8.GetBytes(ProgramPath(argv[0])), allocated);
            var args = new nint[argv.Count + 1];
            for (var i = 0; i < argv.Count; i++)
            {
                args[i] = Native(argv[i], allocated);
            }

            var envp = new nint[env.Count + 1];
            for (var i = 0; i < env.Count; i++)
            {
                envp[i] = Native(env[i], allocated);
            }

            // The runtime's diagnostics port (dotnet-counters, dotnet-trace) is a socket file named after the
            // PID and the process's start time, both of which the new image keeps: it could not bind the name
            // while this image's file is still there. (Should execve fail, this process goes on without that
            // file, so without a diagnostics port; a moved file could not be cleaned up after a success.)
            RemoveDiagnosticsSocket();

            // Returns only on failure; Portico then goes on in this process with the runtime's default.
            Execve(path, args, envp);
        }
        finally
        {
            foreach (var p in allocated)
            {
                Marshal.FreeHGlobal(p);
            }
        }
    }

    /// <summary>
    /// The program to execute again: the one running (/proc/self/exe, symbolic links resolved), by the path it
    /// was started with when that names the same file, since the process's name (ps, pgrep, top) is that
    /// path's last part.
    /// </summary>
    private static string ProgramPath(byte[] argv0)
    {
        var running = new FileInfo("/proc/self/exe").ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? "/proc/self/exe";
        var started = System.Text.Encoding.UTF8.GetString(argv0);
        try
        {
            if (started.Contains('/') && File.Exists(started)
                && (new FileInfo(started).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(started)) == running)
            {
                return started;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return running;
    }

    private static void RemoveDiagnosticsSocket()
    {
        try
        {
            foreach (var file in Directory.EnumerateFiles(Path.GetTempPath(), $"dotnet-diagnostic-{Environment.ProcessId}-*-socket"))
            {
                File.Delete(file);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static List<byte[]> SplitNul(byte[] data)
    {
        var parts = new List<byte[]>();
        var start = 0;
        for (var i = 0; i < data.Length; i++)
        {
            if (data[i] == 0)
            {
                parts.Add(data[start..i]);
                start = i + 1;
            }
        }

        if (start < data.Length)
        {
            parts.Add(data[start..]);
        }

        return parts;
    }

    private static nint Native(ReadOnlySpan<byte> text, List<nint> allocated)
    {
        var p = Marshal.AllocHGlobal(text.Length + 1);
        allocated.Add(p);
        unsafe
        {
            var target = new Span<byte>((void*)p, text.Length + 1);
            text.CopyTo(target);
            target[text.Length] = 0;
        }

        return p;
    }

    [LibraryImport("libc", EntryPoint = "execve", SetLastError = true)]
    private static partial int Execve(nint path, nint[] argv, nint[] envp);
}
