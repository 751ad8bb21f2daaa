using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Whisper.Protocol.Wire;

/// <summary>
/// Bounded reader over untrusted bytes. Every read checks what remains; a failed read returns false and
/// never throws. All integers are big-endian; varints are unsigned LEB128 of at most 10 bytes.
/// </summary>
internal ref struct WireReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _pos;

    public WireReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _pos = 0;
    }

    public readonly int Remaining => _data.Length - _pos;

    public readonly int Position => _pos;

    public bool TryReadU8(out byte value)
    {
        if (Remaining < 1)
        {
            value = 0;
            return false;
        }

        value = _data[_pos++];
        return true;
    }

    public bool TryReadU16(out ushort value)
    {
        if (Remaining < 2)
        {
            value = 0;
            return false;
        }

        value = BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(_pos, 2));
        _pos += 2;
        return true;
    }

    public bool TryReadU64(out ulong value)
    {
        if (Remaining < 8)
        {
            value = 0;
            return false;
        }

        value = BinaryPrimitives.ReadUInt64BigEndian(_data.Slice(_pos, 8));
        _pos += 8;
        return true;
    }

    /// <summary>Unsigned LEB128; rejects encodings longer than 10 bytes, overflow and non-minimal forms.</summary>
    public bool TryReadVarint(out ulong value)
    {
        value = 0;
        var shift = 0;
        for (var i = 0; i < 10; i++)
        {
            if (!TryReadU8(out var b))
            {
                return false;
            }

            var part = (ulong)(b & 0x7F);
            if (i == 9 && part > 1)
            {
                return false; // overflow beyond 64 bits
            }

            value |= part << shift;
            if ((b & 0x80) == 0)
            {
                return i == 0 || b != 0; // a trailing zero byte is a non-minimal encoding
            }

            shift += 7;
        }

        return false;
    }

    public bool TryReadVarint(ulong max, out ulong value) => TryReadVarint(out value) && value <= max;

    public bool TryReadBytes(int length, out ReadOnlySpan<byte> bytes)
    {
        if (length < 0 || Remaining < length)
        {
            bytes = default;
            return false;
        }

        bytes = _data.Slice(_pos, length);
        _pos += length;
        return true;
    }

    /// <summary>A u8-length-prefixed UTF-8 string of at most <paramref name="maxBytes"/> bytes.</summary>
    public bool TryReadShortString(int maxBytes, out string value)
    {
        value = string.Empty;
        if (!TryReadU8(out var len) || len > maxBytes || !TryReadBytes(len, out var bytes))
        {
            return false;
        }

        return TryDecodeUtf8(bytes, out value);
    }

    /// <summary>A u16-length-prefixed UTF-8 string of at most <paramref name="maxBytes"/> bytes.</summary>
    public bool TryReadString(int maxBytes, out string value)
    {
        value = string.Empty;
        if (!TryReadU16(out var len) || len > maxBytes || !TryReadBytes(len, out var bytes))
        {
            return false;
        }

        return TryDecodeUtf8(bytes, out value);
    }

    /// <summary>Endpoint: family (4 or 6), address bytes, port (u16).</summary>
    public bool TryReadEndpoint(out IPEndPoint? endpoint)
    {
        endpoint = null;
        if (!TryReadU8(out var family))
        {
            return false;
        }

        var addressLength = family switch
        {
            4 => 4,
            6 => 16,
            _ => -1,
        };
        if (addressLength < 0 || !TryReadBytes(addressLength, out var address) || !TryReadU16(out var port))
        {
            return false;
        }

        endpoint = new IPEndPoint(new IPAddress(address), port);
        return true;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    private static bool TryDecodeUtf8(ReadOnlySpan<byte> bytes, out string value)
    {
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            value = string.Empty;
            return false;
        }

        value = StrictUtf8.GetString(bytes);
        return true;
    }
}
