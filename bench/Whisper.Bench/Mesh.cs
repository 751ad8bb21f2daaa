using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Globalization;

namespace Whisper.Bench;

/// <summary>
/// N nodes in this process on 127.0.0.1 that broadcast to each other. A mesh reports every delivery at a
/// node other than the sender through <see cref="Delivered"/> (receiver, origin, per-origin sequence).
/// </summary>
public interface IMesh : IAsyncDisposable
{
    string Name { get; }

    int Nodes { get; }

    /// <summary>Called for each delivery at a receiver other than the origin. May run on any thread.</summary>
    Action<int, int, long>? Delivered { get; set; }

    /// <summary>Broadcasts message number <paramref name="seq"/> of node <paramref name="origin"/>; false when flow control refused it now.</summary>
    ValueTask<bool> BroadcastAsync(int origin, long seq, CancellationToken ct);

    /// <summary>Turns on receive-side loss (a seeded drop decision per received datagram).</summary>
    void SetLoss(double probability);

    /// <summary>Datagrams and bytes all nodes have sent so far.</summary>
    (long Datagrams, long Bytes) WireCounters();

    /// <summary>Order violations seen so far (only meshes that promise order check it); -1 when not checked.</summary>
    long OrderViolations { get; }
}

/// <summary>The payload layout shared by all meshes: origin (2 bytes) and sequence (8 bytes), then padding to the size.</summary>
public static class Payload
{
    public const int HeaderBytes = 10;

    public static void Write(Span<byte> buffer, int origin, long seq)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(buffer, (ushort)origin);
        BinaryPrimitives.WriteInt64LittleEndian(buffer[2..], seq);
        buffer[HeaderBytes..].Fill((byte)'x');
    }

    public static (int Origin, long Seq) Read(ReadOnlySpan<byte> buffer) =>
        (BinaryPrimitives.ReadUInt16LittleEndian(buffer), BinaryPrimitives.ReadInt64LittleEndian(buffer[2..]));

    /// <summary>Text form for Whisper (its API carries strings): "OO SSSSSSSSSSSSSSSS " then 'x' padding.</summary>
    public static string Text(int origin, long seq, int size) =>
        string.Create(CultureInfo.InvariantCulture, $"{origin:D2} {seq:D16} ").PadRight(Math.Max(size, 20), 'x');

    /// <summary>The same text as <see cref="Text"/>, written as UTF-8 (ASCII) into <paramref name="buffer"/> without allocating; returns its length.</summary>
    public static int WriteUtf8Text(Span<byte> buffer, int origin, long seq, int size)
    {
        var length = Math.Max(size, 20);
        var text = buffer[..length];
        if (!Utf8Formatter.TryFormat(origin, text, out _, new StandardFormat('D', 2))
            || !Utf8Formatter.TryFormat(seq, text[3..], out _, new StandardFormat('D', 16)))
        {
            throw new ArgumentOutOfRangeException(nameof(seq), "origin or sequence too large for the text layout");
        }

        text[2] = (byte)' ';
        text[19] = (byte)' ';
        text[20..].Fill((byte)'x');
        return length;
    }

    public static bool TryReadUtf8Text(ReadOnlySpan<byte> text, out int origin, out long seq)
    {
        seq = 0;
        origin = 0;
        return text.Length >= 19
            && Utf8Parser.TryParse(text[..2], out origin, out var n1) && n1 == 2
            && Utf8Parser.TryParse(text.Slice(3, 16), out seq, out var n2) && n2 == 16;
    }

    public static bool TryReadText(ReadOnlySpan<char> text, out int origin, out long seq)
    {
        seq = 0;
        origin = 0;
        return text.Length >= 19
            && int.TryParse(text[..2], NumberStyles.None, CultureInfo.InvariantCulture, out origin)
            && long.TryParse(text.Slice(3, 16), NumberStyles.None, CultureInfo.InvariantCulture, out seq);
    }
}
