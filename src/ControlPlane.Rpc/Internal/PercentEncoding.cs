using System.Buffers;
using System.Text;

namespace ControlPlane.Rpc.Internal;

/// <summary>Percent-encoding of grpc-message: UTF-8 bytes outside 0x20-0x7E, and '%', become %XX.</summary>
internal static class PercentEncoding
{
    private const string HexDigits = "0123456789ABCDEF";

    /// <summary>Encodes a status detail for the grpc-message header.</summary>
    public static string Encode(string value)
    {
        var needs = false;
        foreach (var c in value)
        {
            if (c < 0x20 || c > 0x7E || c == '%')
            {
                needs = true;
                break;
            }
        }

        if (!needs)
        {
            return value;
        }

        var bytes = Encoding.UTF8.GetBytes(value);
        var sb = new StringBuilder(bytes.Length * 3);
        foreach (var b in bytes)
        {
            if (b < 0x20 || b > 0x7E || b == '%')
            {
                sb.Append('%').Append(HexDigits[b >> 4]).Append(HexDigits[b & 0xF]);
            }
            else
            {
                sb.Append((char)b);
            }
        }

        return sb.ToString();
    }

    /// <summary>Decodes a grpc-message header; malformed %-sequences are kept as they are, per the spec.</summary>
    public static string Decode(string value)
    {
        if (value.IndexOf('%', StringComparison.Ordinal) < 0)
        {
            return value;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(value.Length));
        try
        {
            var n = 0;
            for (var i = 0; i < value.Length; i++)
            {
                var c = value[i];
                if (c == '%' && i + 2 < value.Length + 0 && TryHex(value[i + 1], out var hi) && TryHex(value[i + 2], out var lo))
                {
                    buffer[n++] = (byte)((hi << 4) | lo);
                    i += 2;
                }
                else if (c < 0x80)
                {
                    buffer[n++] = (byte)c;
                }
                else
                {
                    n += Encoding.UTF8.GetBytes(value.AsSpan(i, 1), buffer.AsSpan(n));
                }
            }

            return Encoding.UTF8.GetString(buffer, 0, n);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static bool TryHex(char c, out int value)
    {
        value = c switch
        {
            >= '0' and <= '9' => c - '0',
            >= 'a' and <= 'f' => c - 'a' + 10,
            >= 'A' and <= 'F' => c - 'A' + 10,
            _ => -1,
        };
        return value >= 0;
    }
}
