namespace Portico.Hosting;

/// <summary>
/// The socket-level settings measured in bench/ (issue 8): inline scheduling of socket completions and of
/// Kestrel's request processing, and 64 KiB transport blocks. Both are on by default; the environment
/// variables exist for A/B measurements (bench's "portico-dispatch" row) and for diagnosing a suspected
/// blocking call on the request path.
/// </summary>
public static class HotPath
{
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
}
