using System.Runtime.InteropServices;

namespace Portico.Hosting;

/// <summary>nginx's signals: HUP reload, QUIT graceful stop, TERM/INT fast stop, USR1 reopen logs.</summary>
public static partial class Signals
{
    public const int SigHup = 1;
    public const int SigInt = 2;
    public const int SigQuit = 3;
    public const int SigUsr1 = 10;
    public const int SigTerm = 15;

    /// <summary>Installs the handlers; dispose the result to remove them.</summary>
    public static IDisposable Install(PorticoHost host)
    {
        var registrations = new List<PosixSignalRegistration>
        {
            PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
            {
                c.Cancel = true;
                host.Log.Notice("signal 1 (SIGHUP) received, reconfiguring");
                _ = Task.Run(host.ReloadAsync);
            }),
            PosixSignalRegistration.Create(PosixSignal.SIGQUIT, c =>
            {
                c.Cancel = true;
                host.Log.Notice("signal 3 (SIGQUIT) received, shutting down");
                _ = Task.Run(() => host.StopAsync(graceful: true));
            }),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
            {
                c.Cancel = true;
                host.Log.Notice("signal 15 (SIGTERM) received, exiting");
                _ = Task.Run(() => host.StopAsync(graceful: false));
            }),
            PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
            {
                c.Cancel = true;
                host.Log.Notice("signal 2 (SIGINT) received, exiting");
                _ = Task.Run(() => host.StopAsync(graceful: false));
            }),
            PosixSignalRegistration.Create((PosixSignal)SigUsr1, c =>
            {
                c.Cancel = true;
                _ = Task.Run(host.ReopenLogs);
            }),
        };
        return new Registrations(registrations);
    }

    private sealed class Registrations(List<PosixSignalRegistration> list) : IDisposable
    {
        public void Dispose()
        {
            foreach (var r in list)
            {
                r.Dispose();
            }
        }
    }

    /// <summary>kill(2): used by -s to signal the running instance.</summary>
    public static bool Send(int pid, int signal, out int errno)
    {
        var rc = Kill(pid, signal);
        errno = rc == 0 ? 0 : Marshal.GetLastPInvokeError();
        return rc == 0;
    }

    /// <summary>
    /// A shell starts background jobs with SIGINT and SIGQUIT ignored, and .NET keeps an inherited "ignore".
    /// nginx sets its handlers regardless; Portico puts both back to the default first. This must run before
    /// anything makes .NET install its own signal handling (console output does), so Main calls it first.
    /// </summary>
    public static void ResetInheritedIgnores()
    {
        SetDefault(SigInt);
        SetDefault(SigQuit);
    }

    private static void SetDefault(int signal) => SignalFunction(signal, IntPtr.Zero);

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial IntPtr SignalFunction(int signum, IntPtr handler);

    /// <summary>setrlimit(RLIMIT_NOFILE): worker_rlimit_nofile.</summary>
    public static bool SetOpenFileLimit(long limit, out int errno)
    {
        var value = new RLimit { Current = (ulong)limit, Maximum = (ulong)limit };
        var rc = SetRLimit(RlimitNoFile, ref value);
        errno = rc == 0 ? 0 : Marshal.GetLastPInvokeError();
        return rc == 0;
    }

    private const int RlimitNoFile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, ref RLimit limit);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int sig);
}
