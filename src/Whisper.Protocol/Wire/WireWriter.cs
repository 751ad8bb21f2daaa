using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Whisper.Protocol.Wire;

/// <summary>Writer into a caller-owned span. Callers measure first; writing past the end is a bug and throws.</summary>
internal ref struct WireWriter
{
    private readonly Span<byte> _buffer;
    private int _pos;

    public WireWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _pos = 0;
    }

    public readonly int Written => _pos;

    public readonly int Remaining => _buffer.Length - _pos;

    public void WriteU8(byte value) => _buffer[_pos++] = value;

    public void WriteU16(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(_pos, 2), value);
        _pos += 2;
    }

    public void WriteU64(ulong value)
    {
        BinaryPrimitives.WriteUInt64BigEndian(_buffer.Slice(_pos, 8), value);
        _pos += 8;
    }

    public void WriteVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _buffer[_pos++] = (byte)(value | 0x80);
            value >>= 7;
        }

        _buffer[_pos++] = (byte)value;
    }

    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_buffer[_pos..]);
        _pos += bytes.Length;
    }

    public void WriteShortString(string value)
    {
        var len = Encoding.UTF8.GetBytes(value, _buffer[(_pos + 1)..]);
        _buffer[_pos] = checked((byte)len);
        _pos += 1 + len;
    }

    public void WriteString(string value)
    {
        var len = Encoding.UTF8.GetBytes(value, _buffer[(_pos + 2)..]);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(_pos, 2), checked((ushort)len));
        _pos += 2 + len;
    }

    public void WriteEndpoint(IPEndPoint endpoint)
    {
        var length = AddressLength(endpoint);
        WriteU8(length == 16 ? (byte)6 : (byte)4);
        if (!endpoint.Address.TryWriteBytes(_buffer[_pos..], out var written) || written != length)
        {
            throw new InvalidOperationException("buffer too small for endpoint");
        }

        _pos += written;
        WriteU16((ushort)endpoint.Port);
    }

    /// <summary>4 for an IPv4 address, 16 for IPv6 (decided by the address bytes, no socket types involved).</summary>
    private static int AddressLength(IPEndPoint endpoint)
    {
        Span<byte> scratch = stackalloc byte[16];
        return endpoint.Address.TryWriteBytes(scratch, out var written) ? written : 16;
    }

    /// <summary>Bytes <see cref="WriteVarint"/> takes: one per started group of 7 significant bits (without a loop: it runs for every clock entry measured).</summary>
    public static int VarintSize(ulong value) => (System.Numerics.BitOperations.Log2(value | 1) / 7) + 1;

    public static int ShortStringSize(string value) => 1 + Encoding.UTF8.GetByteCount(value);

    public static int StringSize(string value) => 2 + Encoding.UTF8.GetByteCount(value);

    public static int EndpointSize(IPEndPoint endpoint) => 1 + AddressLength(endpoint) + 2;
}
