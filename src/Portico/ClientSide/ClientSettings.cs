using Portico.Config.Model;

namespace Portico.ClientSide;

/// <summary>client_body_in_file_only: off, on (files are kept), clean (files are removed).</summary>
public enum BodyInFileOnly
{
    Off,
    On,
    Clean,
}

/// <summary>A temp directory with nginx's hashed levels ("path 1 2": /path/7/45/0000000457).</summary>
public sealed record TempPath(string Path, int[] Levels)
{
    public string Signature => Path + "|" + string.Join(',', Levels);
}

/// <summary>ngx_http_core_module settings of a location about the client connection and request body.</summary>
public sealed class ClientSettings : Settings<ClientSettings>
{
    /// <summary>nginx's default client_body_buffer_size on x86-64: two memory pages.</summary>
    public const long DefaultBodyBufferSize = 8 * 1024;

    public long? MaxBodySize { get; set; }
    public long? BodyBufferSize { get; set; }
    public TempPath? BodyTempPath { get; set; }
    public BodyInFileOnly? InFileOnly { get; set; }
    public bool? InSingleBuffer { get; set; }
    public TimeSpan? BodyTimeout { get; set; }
    public TimeSpan? SendTimeout { get; set; }
    public TimeSpan? KeepaliveTimeout { get; set; }

    /// <summary>The optional second keepalive_timeout parameter: the "Keep-Alive: timeout=N" header value.</summary>
    public long? KeepaliveHeader { get; set; }

    public bool KeepaliveSet { get; set; }
    public long? KeepaliveRequests { get; set; }

    public override void MergeFrom(ClientSettings parent)
    {
        MaxBodySize ??= parent.MaxBodySize ?? 1024 * 1024;
        BodyBufferSize ??= parent.BodyBufferSize ?? DefaultBodyBufferSize;
        BodyTempPath ??= parent.BodyTempPath;
        InFileOnly ??= parent.InFileOnly ?? BodyInFileOnly.Off;
        InSingleBuffer ??= parent.InSingleBuffer ?? false;
        BodyTimeout ??= parent.BodyTimeout ?? TimeSpan.FromSeconds(60);
        SendTimeout ??= parent.SendTimeout ?? TimeSpan.FromSeconds(60);
        if (!KeepaliveSet)
        {
            KeepaliveTimeout = parent.KeepaliveTimeout ?? TimeSpan.FromSeconds(75);
            KeepaliveHeader = parent.KeepaliveHeader;
            KeepaliveSet = true;
        }

        KeepaliveRequests ??= parent.KeepaliveRequests ?? 1000;
    }
}

/// <summary>ngx_http_core_module settings of a server block about reading request headers.</summary>
public sealed class ClientServerSettings : Settings<ClientServerSettings>
{
    public TimeSpan? HeaderTimeout { get; set; }
    public bool? UnderscoresInHeaders { get; set; }
    public bool? IgnoreInvalidHeaders { get; set; }

    /// <summary>client_header_buffer_size: the first buffer a request head is read into (see <see cref="HeaderBuffers"/>).</summary>
    public long? HeaderBufferSize { get; set; }

    /// <summary>large_client_header_buffers number size.</summary>
    public (int Number, long Size)? LargeHeaderBuffers { get; set; }

    public override void MergeFrom(ClientServerSettings parent)
    {
        HeaderBufferSize ??= parent.HeaderBufferSize ?? HeaderBuffers.DefaultHeaderBufferSize;
        LargeHeaderBuffers ??= parent.LargeHeaderBuffers ?? HeaderBuffers.DefaultLargeBuffers;
        HeaderTimeout ??= parent.HeaderTimeout ?? TimeSpan.FromSeconds(60);
        UnderscoresInHeaders ??= parent.UnderscoresInHeaders ?? false;
        IgnoreInvalidHeaders ??= parent.IgnoreInvalidHeaders ?? true;
    }
}
