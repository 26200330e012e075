namespace Portico.Upstreams;

/// <summary>CRC-32 (IEEE 802.3, nginx's ngx_crc32_*): hash keys and consistent hash points.</summary>
public static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }

    /// <summary>ngx_crc32_init.</summary>
    public const uint Init = 0xffffffff;

    /// <summary>ngx_crc32_update.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data)
        {
            crc = Table[(crc ^ b) & 0xff] ^ (crc >> 8);
        }

        return crc;
    }

    /// <summary>ngx_crc32_final.</summary>
    public static uint Final(uint crc) => crc ^ 0xffffffff;

    /// <summary>ngx_crc32_long of a string's bytes (Latin-1, as nginx sees them; UTF-8 beyond).</summary>
    public static uint Of(string text)
    {
        var max = System.Text.Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> buffer = max <= 512 ? stackalloc byte[max] : new byte[max];
        var n = System.Text.Encoding.UTF8.GetBytes(text, buffer);
        return Final(Update(Init, buffer[..n]));
    }
}
