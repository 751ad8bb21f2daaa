using System.Globalization;
using System.Text;
using Whisper.Protocol.Engine;

namespace Whisper.Simulation;

/// <summary>Identity of a workload message: its sender's node index and that sender's send counter.</summary>
public readonly record struct MessageKey(int Sender, int Counter)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"n{Sender}#{Counter}");
}

/// <summary>
/// Workload payloads. Each is unique and self-describing, so checkers identify a delivered message from its bytes
/// alone and detect corruption, truncation or chunks of two messages glued together:
/// <c>B3.17.-1.120|</c> (kind, sender, counter, recipient, total length) followed by filler derived from the key.
/// </summary>
public static class TestPayload
{
    /// <summary>Shorter requested lengths are raised to this, so the header always fits.</summary>
    public const int MinLength = 48;

    public static byte[] Create(MessageKey key, MessageKind kind, int recipient, int length)
    {
        var total = Math.Max(length, MinLength);
        var header = Header(key, kind, recipient, total);
        if (header.Length > total)
        {
            throw new ArgumentOutOfRangeException(nameof(key), key, "key too long for a workload payload");
        }

        var bytes = new byte[total];
        Encoding.ASCII.GetBytes(header, bytes);
        Fill(key, bytes.AsSpan(header.Length));
        return bytes;
    }

    /// <summary>Parses the header and verifies the whole payload; <paramref name="problem"/> says what is wrong.</summary>
    public static bool TryParse(ReadOnlySpan<byte> payload, out MessageKey key, out MessageKind kind, out int recipient, out string? problem)
    {
        key = default;
        kind = default;
        recipient = -1;
        var bar = payload.IndexOf((byte)'|');
        if (bar < 2 || bar > 64)
        {
            problem = "payload has no workload header";
            return false;
        }

        var header = Encoding.ASCII.GetString(payload[..bar]);
        var parts = header[1..].Split('.');
        if ((header[0] != 'B' && header[0] != 'P') || parts.Length != 4
            || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var sender)
            || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var counter)
            || !int.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out recipient)
            || !int.TryParse(parts[3], NumberStyles.Integer, CultureInfo.InvariantCulture, out var length))
        {
            problem = $"payload header '{header}' is malformed";
            return false;
        }

        key = new MessageKey(sender, counter);
        kind = header[0] == 'B' ? MessageKind.Broadcast : MessageKind.Private;
        if (payload.Length != length)
        {
            problem = string.Create(CultureInfo.InvariantCulture, $"payload of {key} has {payload.Length} bytes, sent {length}");
            return true;
        }

        var filler = payload[(bar + 1)..];
        var buffer = filler.Length <= 1024 ? stackalloc byte[filler.Length] : new byte[filler.Length];
        Fill(key, buffer);
        if (!filler.SequenceEqual(buffer))
        {
            var at = filler.CommonPrefixLength(buffer) + bar + 1;
            problem = string.Create(CultureInfo.InvariantCulture, $"payload of {key} differs from what was sent at byte {at}");
            return true;
        }

        problem = null;
        return true;
    }

    private static string Header(MessageKey key, MessageKind kind, int recipient, int length) =>
        string.Create(CultureInfo.InvariantCulture, $"{(kind == MessageKind.Broadcast ? 'B' : 'P')}{key.Sender}.{key.Counter}.{recipient}.{length}|");

    private static void Fill(MessageKey key, Span<byte> destination)
    {
        var state = SimRandom.Mix(((ulong)(uint)key.Sender << 32) | (uint)key.Counter);
        for (var i = 0; i < destination.Length; i++)
        {
            state = (state * 6364136223846793005UL) + 1442695040888963407UL;
            destination[i] = (byte)('a' + (int)((state >> 33) % 26));
        }
    }
}
