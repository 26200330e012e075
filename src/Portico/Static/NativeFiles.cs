using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Portico.Static;

/// <summary>What stat() says about a file: type, owner, size, modification time and identity.</summary>
public readonly record struct FileStat(int Mode, uint Uid, long Size, long MtimeSeconds, ulong Inode, ulong Device)
{
    public bool IsDirectory => (Mode & 0xF000) == 0x4000;
    public bool IsFile => (Mode & 0xF000) == 0x8000;
    public bool IsLink => (Mode & 0xF000) == 0xA000;
}

/// <summary>errno values nginx distinguishes (Linux numbering).</summary>
public static class Errno
{
    public const int ENOENT = 2;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int EACCES = 13;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EMLINK = 31;
    public const int ENAMETOOLONG = 36;
    public const int ELOOP = 40;

    /// <summary>nginx's "(2: No such file or directory)" text for an errno.</summary>
    public static string Describe(int errno) => errno + ": " + Message(errno);

    public static string Message(int errno) => errno switch
    {
        ENOENT => "No such file or directory",
        EACCES => "Permission denied",
        ENOTDIR => "Not a directory",
        ENAMETOOLONG => "File name too long",
        ELOOP => "Too many levels of symbolic links",
        EMLINK => "Too many links",
        EISDIR => "Is a directory",
        _ => Marshal.GetPInvokeErrorMessage(errno),
    };
}

/// <summary>
/// The file system calls the static module needs, as nginx makes them (open with O_NONBLOCK, fstat, stat,
/// openat component by component for disable_symlinks). Linux system calls through libc; a managed
/// fallback elsewhere. Every method here blocks: callers run them off the request thread.
/// </summary>
internal static unsafe partial class NativeFiles
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7ff;
    private const int ORdOnly = 0;
    private const int ONonBlock = 0x800;
    private const int OCloExec = 0x80000;
    private const int OPath = 0x200000;

    private static readonly bool Arm = RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64;
    private static readonly int ONoFollow = Arm ? 0x8000 : 0x20000;
    private static readonly int ODirectory = Arm ? 0x4000 : 0x10000;

    public static readonly bool Supported = OperatingSystem.IsLinux();

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(int dirfd, string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static partial int StatxRaw(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "opendir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint OpenDir(string path);

    [LibraryImport("libc", EntryPoint = "readdir", SetLastError = true)]
    private static partial nint ReadDir(nint dir);

    [LibraryImport("libc", EntryPoint = "closedir")]
    private static partial int CloseDir(nint dir);

    [LibraryImport("libc", EntryPoint = "dirfd")]
    private static partial int DirFd(nint dir);

    /// <summary>One directory entry: the raw name bytes and what stat() (or lstat() for a dangling link) says.</summary>
    public readonly record struct DirEntry(byte[] Name, FileStat Stat);

    /// <summary>
    /// ngx_open_dir/ngx_read_dir/ngx_de_info: the entries of a directory except those starting with ".", each
    /// stat()ed (lstat() when the target is missing or a loop). Returns errno and the failed call.
    /// </summary>
    public static int ReadDirectory(string path, List<DirEntry> entries, out string failed, out string? failedName)
    {
        failedName = null;
        failed = "opendir()";
        if (!Supported)
        {
            return ManagedReadDirectory(path, entries);
        }

        var dir = OpenDir(path);
        if (dir == 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        try
        {
            var fd = DirFd(dir);
            var buffer = stackalloc byte[256];
            while (true)
            {
                var ent = ReadDir(dir);
                if (ent == 0)
                {
                    var err = Marshal.GetLastPInvokeError();
                    failed = "readdir()";
                    return err;
                }

                var name = (byte*)ent + 19;
                if (name[0] == (byte)'.')
                {
                    continue;
                }

                var len = 0;
                while (name[len] != 0)
                {
                    len++;
                }

                var bytes = new ReadOnlySpan<byte>(name, len).ToArray();
                int rc = StatxRaw(fd, name, 0, StatxBasicStats, buffer);
                var e = rc == 0 ? 0 : Marshal.GetLastPInvokeError();
                if (e is Errno.ENOENT or Errno.ELOOP)
                {
                    rc = StatxRaw(fd, name, AtSymlinkNoFollow, StatxBasicStats, buffer);
                    e = rc == 0 ? 0 : Marshal.GetLastPInvokeError();
                    if (e != 0)
                    {
                        failed = "lstat()";
                        failedName = path + "/" + System.Text.Encoding.UTF8.GetString(bytes);
                        return e;
                    }
                }
                else if (e != 0)
                {
                    if (e == Errno.EACCES)
                    {
                        continue;
                    }

                    failed = "stat()";
                    failedName = path + "/" + System.Text.Encoding.UTF8.GetString(bytes);
                    return e;
                }

                entries.Add(new DirEntry(bytes, ReadStatx(buffer)));
            }
        }
        finally
        {
            CloseDir(dir);
        }
    }

    private static int ManagedReadDirectory(string path, List<DirEntry> entries)
    {
        try
        {
            foreach (var info in new DirectoryInfo(path).EnumerateFileSystemInfos())
            {
                if (info.Name.StartsWith('.'))
                {
                    continue;
                }

                if (ManagedStat(info.FullName, true, out var st) != 0)
                {
                    ManagedStat(info.FullName, false, out st);
                }

                entries.Add(new DirEntry(System.Text.Encoding.UTF8.GetBytes(info.Name), st));
            }

            return 0;
        }
        catch (DirectoryNotFoundException)
        {
            return Errno.ENOENT;
        }
        catch (UnauthorizedAccessException)
        {
            return Errno.EACCES;
        }
        catch (IOException)
        {
            return Errno.EIO;
        }
    }

    private static FileStat ReadStatx(byte* buffer) => new(
        Mode: *(ushort*)(buffer + 28),
        Uid: *(uint*)(buffer + 20),
        Size: *(long*)(buffer + 40),
        MtimeSeconds: *(long*)(buffer + 112),
        Inode: *(ulong*)(buffer + 32),
        Device: ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140));

    /// <summary>stat() (follow = true) or lstat(); errno on failure.</summary>
    public static int Stat(string path, bool follow, out FileStat stat) =>
        StatAt(AtFdCwd, path, follow ? 0 : AtSymlinkNoFollow, out stat);

    private static int StatAt(int dirfd, string path, int flags, out FileStat stat)
    {
        if (!Supported)
        {
            return ManagedStat(path, (flags & AtSymlinkNoFollow) == 0, out stat);
        }

        var buffer = stackalloc byte[256];
        if (Statx(dirfd, path, flags, StatxBasicStats, buffer) != 0)
        {
            stat = default;
            return Marshal.GetLastPInvokeError();
        }

        stat = ReadStatx(buffer);
        return 0;
    }

    private static int FdStat(int fd, out FileStat stat) => StatAt(fd, string.Empty, AtEmptyPath, out stat);

    /// <summary>
    /// ngx_open_and_stat_file: opens for reading (not following symlinks as the policy says) and stats the open
    /// file. A directory is reported with no handle. <paramref name="failed"/> names the call that failed.
    /// </summary>
    public static int OpenAndStat(string path, SymlinkPolicy policy, int from, out SafeFileHandle? handle, out FileStat stat, out string failed)
    {
        handle = null;
        if (!Supported)
        {
            return ManagedOpen(path, out handle, out stat, out failed);
        }

        var fd = OpenWrapper(path, policy, from, ORdOnly | ONonBlock, out var err, out failed);
        if (fd < 0)
        {
            stat = default;
            return err;
        }

        err = FdStat(fd, out stat);
        if (err != 0)
        {
            Close(fd);
            failed = "fstat()";
            return err;
        }

        if (stat.IsDirectory)
        {
            Close(fd);
            return 0;
        }

        handle = new SafeFileHandle(fd, ownsHandle: true);
        return 0;
    }

    /// <summary>ngx_file_info_wrapper: stat(), or open/fstat/close when symlinks are restricted.</summary>
    public static int Info(string path, SymlinkPolicy policy, int from, out FileStat stat, out string failed)
    {
        if (policy == SymlinkPolicy.Off || !Supported)
        {
            failed = "stat()";
            return Stat(path, follow: true, out stat);
        }

        var fd = OpenWrapper(path, policy, from, ORdOnly | ONonBlock, out var err, out failed);
        if (fd < 0)
        {
            stat = default;
            return err;
        }

        err = FdStat(fd, out stat);
        Close(fd);
        if (err != 0)
        {
            failed = "fstat()";
        }

        return err;
    }

    /// <summary>
    /// ngx_open_file_wrapper: with symlinks allowed a plain open(); otherwise each component is opened with
    /// openat() relative to the previous one, refusing symlinks (O_NOFOLLOW) or symlinks whose owner differs from
    /// their target's (if_not_owner). The first <paramref name="from"/> characters are opened normally.
    /// </summary>
    private static int OpenWrapper(string path, SymlinkPolicy policy, int from, int mode, out int err, out string failed)
    {
        err = 0;
        failed = "open()";
        var flags = mode | OCloExec;
        if (policy == SymlinkPolicy.Off)
        {
            var plain = OpenAt(AtFdCwd, path, flags, 0);
            if (plain < 0)
            {
                err = Marshal.GetLastPInvokeError();
            }

            return plain;
        }

        var search = OPath | ORdOnly | ODirectory | ONonBlock | OCloExec;
        int atFd;
        int p;
        if (from > 0 && from < path.Length)
        {
            atFd = OpenAt(AtFdCwd, path[..from], search, 0);
            if (atFd < 0)
            {
                err = Marshal.GetLastPInvokeError();
                return -1;
            }

            p = from + 1;
        }
        else if (path.Length > 0 && path[0] == '/')
        {
            atFd = OpenAt(AtFdCwd, "/", search, 0);
            if (atFd < 0)
            {
                err = Marshal.GetLastPInvokeError();
                failed = "openat()";
                return -1;
            }

            p = 1;
        }
        else
        {
            atFd = AtFdCwd;
            p = 0;
        }

        failed = "openat()";
        int fd;
        while (true)
        {
            var slash = path.IndexOf('/', p);
            if (slash < 0)
            {
                break;
            }

            if (slash == p)
            {
                p++;
                continue;
            }

            var component = path[p..slash];
            fd = policy == SymlinkPolicy.IfNotOwner
                ? OpenAtOwner(atFd, component, search, out err)
                : OpenAtChecked(atFd, component, search | ONoFollow, out err);
            if (fd < 0)
            {
                CloseAt(atFd);
                return -1;
            }

            CloseAt(atFd);
            atFd = fd;
            p = slash + 1;
        }

        if (p == path.Length)
        {
            fd = OpenAtChecked(atFd, ".", flags, out err);
        }
        else if (policy == SymlinkPolicy.IfNotOwner)
        {
            fd = OpenAtOwner(atFd, path[p..], flags, out err);
        }
        else
        {
            fd = OpenAtChecked(atFd, path[p..], flags | ONoFollow, out err);
        }

        CloseAt(atFd);
        return fd;
    }

    private static int OpenAtChecked(int atFd, string name, int flags, out int err)
    {
        var fd = OpenAt(atFd, name, flags, 0);
        err = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd;
    }

    /// <summary>ngx_openat_file_owner: open following symlinks, then refuse when the link's owner is not the target's.</summary>
    private static int OpenAtOwner(int atFd, string name, int flags, out int err)
    {
        var fd = OpenAtChecked(atFd, name, flags, out err);
        if (fd < 0)
        {
            return fd;
        }

        err = StatAt(atFd, name, AtSymlinkNoFollow, out var link);
        if (err == 0)
        {
            err = FdStat(fd, out var target);
            if (err == 0 && target.Uid != link.Uid)
            {
                err = Errno.ELOOP;
            }
        }

        if (err != 0)
        {
            Close(fd);
            return -1;
        }

        return fd;
    }

    private static void CloseAt(int fd)
    {
        if (fd >= 0)
        {
            Close(fd);
        }
    }

    // ---- managed fallback (not Linux): coarse errno mapping, symlinks always followed ----

    private static int ManagedStat(string path, bool follow, out FileStat stat)
    {
        stat = default;
        try
        {
            FileSystemInfo info = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
            if (!info.Exists)
            {
                return Errno.ENOENT;
            }

            if (follow && info.LinkTarget is not null && info.ResolveLinkTarget(true) is { } target)
            {
                info = target;
            }

            var mode = info is DirectoryInfo ? 0x4000 : info.LinkTarget is not null && !follow ? 0xA000 : 0x8000;
            stat = new FileStat(mode, 0, info is FileInfo f ? f.Length : 0, new DateTimeOffset(info.LastWriteTimeUtc).ToUnixTimeSeconds(), 0, 0);
            return 0;
        }
        catch (UnauthorizedAccessException)
        {
            return Errno.EACCES;
        }
        catch (IOException)
        {
            return Errno.EIO;
        }
    }

    private static int ManagedOpen(string path, out SafeFileHandle? handle, out FileStat stat, out string failed)
    {
        handle = null;
        failed = "open()";
        var err = ManagedStat(path, true, out stat);
        if (err != 0 || stat.IsDirectory)
        {
            return err;
        }

        try
        {
            handle = File.OpenHandle(path, FileMode.Open, System.IO.FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.Asynchronous);
            return 0;
        }
        catch (UnauthorizedAccessException)
        {
            return Errno.EACCES;
        }
        catch (FileNotFoundException)
        {
            return Errno.ENOENT;
        }
        catch (DirectoryNotFoundException)
        {
            return Errno.ENOENT;
        }
        catch (IOException)
        {
            return Errno.EIO;
        }
    }
}
