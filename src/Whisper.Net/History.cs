using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Net;

/// <summary>How a delivered broadcast reached this node.</summary>
public enum Arrival
{
    /// <summary>Delivered by the protocol as it was sent (exactly once, causal order).</summary>
    Live,

    /// <summary>Said before this incarnation joined; handed over by a member when it (re)joined.</summary>
    History,

    /// <summary>Said on the other side of a split while the two sides could not talk; handed over when they merged.</summary>
    Late,
}

/// <summary>
/// The application payload inside a private message (docs/protocol.md, "Application payloads"): one content-type
/// byte, then the content. Broadcast payloads are plain UTF-8 text.
/// </summary>
internal static class AppPayload
{
    public const byte Text = 0x00;
    public const byte HistoryRequest = 0x01;
    public const byte HistoryBatch = 0x02;

    public static byte[] PrivateText(string text)
    {
        var bytes = new byte[1 + Encoding.UTF8.GetByteCount(text)];
        bytes[0] = Text;
        Encoding.UTF8.GetBytes(text, bytes.AsSpan(1));
        return bytes;
    }

    /// <summary>A history request: the most recent <paramref name="max"/> broadcasts, please.</summary>
    public static byte[] Request(int max)
    {
        var bytes = new byte[3];
        bytes[0] = HistoryRequest;
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(1), (ushort)Math.Clamp(max, 0, ushort.MaxValue));
        return bytes;
    }

    public static bool TryReadRequest(ReadOnlySpan<byte> payload, out int max)
    {
        max = 0;
        if (payload.Length != 3 || payload[0] != HistoryRequest)
        {
            return false;
        }

        max = BinaryPrimitives.ReadUInt16BigEndian(payload[1..]);
        return true;
    }
}

/// <summary>A broadcast as the history keeps it.</summary>
internal sealed record HistoryEntry(MessageId Id, string From, string Text, DateTimeOffset At);

/// <summary>
/// A batch of history entries: <c>0x02</c>, flags (<c>bit 0</c> last batch of the answer, <c>bit 1</c> late
/// messages of a merge rather than history), <c>u16</c> count, then per entry origin <c>u64</c>, seq <c>u64</c>,
/// time <c>i64</c> (Unix ms), name (<c>u8</c> length + UTF-8, 1-32 bytes), text (<c>u32</c> length + UTF-8). Big-endian.
/// Decoding is bounds-checked and never throws.
/// </summary>
internal static class HistoryBatch
{
    public const byte LastFlag = 1;
    public const byte LateFlag = 2;

    /// <summary>Splits <paramref name="entries"/> into batches of at most <paramref name="maxBytes"/> each (an entry too large for one is left out).</summary>
    public static List<byte[]> Encode(IReadOnlyList<HistoryEntry> entries, bool late, int maxBytes)
    {
        var batches = new List<byte[]>();
        var current = new List<(HistoryEntry Entry, byte[] Name, byte[] Text)>();
        var size = 4;
        foreach (var e in entries)
        {
            var name = Encoding.UTF8.GetBytes(e.From);
            var text = Encoding.UTF8.GetBytes(e.Text);
            var entrySize = 8 + 8 + 8 + 1 + name.Length + 4 + text.Length;
            if (4 + entrySize > maxBytes || name.Length is 0 or > MemberName.MaxLength)
            {
                continue;
            }

            if (size + entrySize > maxBytes || current.Count == ushort.MaxValue)
            {
                batches.Add(Write(current, late, last: false, size));
                current.Clear();
                size = 4;
            }

            current.Add((e, name, text));
            size += entrySize;
        }

        batches.Add(Write(current, late, last: true, size));
        return batches;
    }

    private static byte[] Write(List<(HistoryEntry Entry, byte[] Name, byte[] Text)> entries, bool late, bool last, int size)
    {
        var bytes = new byte[size];
        bytes[0] = AppPayload.HistoryBatch;
        bytes[1] = (byte)((last ? LastFlag : 0) | (late ? LateFlag : 0));
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)entries.Count);
        var at = 4;
        foreach (var (e, name, text) in entries)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(at), e.Id.Origin.Value);
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(at + 8), e.Id.Seq);
            BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(at + 16), e.At.ToUnixTimeMilliseconds());
            at += 24;
            bytes[at++] = (byte)name.Length;
            name.CopyTo(bytes.AsSpan(at));
            at += name.Length;
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(at), (uint)text.Length);
            text.CopyTo(bytes.AsSpan(at + 4));
            at += 4 + text.Length;
        }

        return bytes;
    }

    public static bool TryDecode(ReadOnlySpan<byte> payload, out byte flags, List<HistoryEntry> entries)
    {
        flags = 0;
        entries.Clear();
        if (payload.Length < 4 || payload[0] != AppPayload.HistoryBatch || (payload[1] & ~(LastFlag | LateFlag)) != 0)
        {
            return false;
        }

        flags = payload[1];
        var count = BinaryPrimitives.ReadUInt16BigEndian(payload[2..]);
        var at = 4;
        for (var i = 0; i < count; i++)
        {
            if (payload.Length - at < 25)
            {
                return false;
            }

            var origin = BinaryPrimitives.ReadUInt64BigEndian(payload[at..]);
            var seq = BinaryPrimitives.ReadUInt64BigEndian(payload[(at + 8)..]);
            var millis = BinaryPrimitives.ReadInt64BigEndian(payload[(at + 16)..]);
            int nameLength = payload[at + 24];
            at += 25;
            if (origin == 0 || seq == 0 || nameLength is 0 or > MemberName.MaxLength || payload.Length - at < nameLength + 4
                || millis is < -62_135_596_800_000 or > 253_402_300_799_999)
            {
                return false;
            }

            string name;
            try
            {
                name = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(payload.Slice(at, nameLength));
            }
            catch (DecoderFallbackException)
            {
                return false;
            }

            at += nameLength;
            var textLength = BinaryPrimitives.ReadUInt32BigEndian(payload[at..]);
            at += 4;
            if (textLength > (uint)(payload.Length - at) || !MemberName.IsValid(name))
            {
                return false;
            }

            var text = Encoding.UTF8.GetString(payload.Slice(at, (int)textLength));
            at += (int)textLength;
            entries.Add(new HistoryEntry(
                new MessageId(MessageKind.Broadcast, new MemberId(origin), MemberId.None, seq), name, text, DateTimeOffset.FromUnixTimeMilliseconds(millis)));
        }

        return at == payload.Length;
    }
}

/// <summary>
/// The recent broadcasts a node delivered (any way), to hand to members that join late or rejoin, and the ids it has
/// shown, so nothing handed over twice (or also delivered live) is shown twice. Both bounded. The recent broadcasts
/// are kept as UTF-8 in a ring of reusable buffers, so keeping one costs no allocation once the ring is warm.
/// </summary>
internal sealed class HistoryLog(int depth)
{
    private const int RememberedIds = 8192;
    private readonly Slot[] _ring = new Slot[Math.Max(depth, 0)];
    private int _next;
    private int _count;
    private const int RememberedRuns = 1024;
    private readonly HashSet<MessageId> _seen = [];
    private readonly Queue<MessageId> _seenOrder = new();
    private readonly Dictionary<MemberId, (ulong First, ulong Last)> _live = [];
    private readonly List<(MemberId Origin, ulong First, ulong Last)> _earlierLive = [];
    private readonly Queue<MemberId> _liveOrder = new();

    public int Count => _count;

    /// <summary>
    /// A broadcast the engine delivered live: true (and remembered) unless a history or late batch showed it already.
    /// Within one incarnation of this node the engine delivers each origin's messages once, in order and without a gap,
    /// so what was seen live is one run of sequence numbers per origin: remembering the run's ends costs one small map
    /// entry per origin instead of a set entry per message (the set, at full load, was a cache miss or two per message).
    /// </summary>
    public bool FirstSightingLive(MessageId id)
    {
        if (id.Kind != MessageKind.Broadcast)
        {
            return FirstSighting(id);
        }

        if (_seen.Count > 0 && _seen.Contains(id))
        {
            return false; // shown from a batch first
        }

        ref var run = ref CollectionsMarshal.GetValueRefOrAddDefault(_live, id.Origin, out var known);
        if (!known)
        {
            run = (id.Seq, id.Seq);
            _liveOrder.Enqueue(id.Origin);
            ForgetOldRuns();
            return true;
        }

        if (id.Seq >= run.First && id.Seq <= run.Last)
        {
            return false; // never happens: the engine delivers exactly once
        }

        run.Last = Math.Max(run.Last, id.Seq);
        return true;
    }

    /// <summary>This node starts a new incarnation: its engine's live runs start afresh (the earlier ones are kept, closed).</summary>
    public void NewIncarnation()
    {
        foreach (var (origin, run) in _live)
        {
            _earlierLive.Add((origin, run.First, run.Last));
        }

        _live.Clear();
        _liveOrder.Clear();
        while (_earlierLive.Count > RememberedRuns)
        {
            _earlierLive.RemoveAt(0);
        }
    }

    private bool SeenLive(MessageId id)
    {
        if (id.Kind != MessageKind.Broadcast)
        {
            return false;
        }

        if (_live.TryGetValue(id.Origin, out var run) && id.Seq >= run.First && id.Seq <= run.Last)
        {
            return true;
        }

        foreach (var (origin, first, last) in _earlierLive)
        {
            if (origin == id.Origin && id.Seq >= first && id.Seq <= last)
            {
                return true;
            }
        }

        return false;
    }

    private void ForgetOldRuns()
    {
        while (_liveOrder.Count > RememberedRuns)
        {
            _live.Remove(_liveOrder.Dequeue());
        }
    }

    /// <summary>
    /// True (and remembered) the first time <paramref name="id"/> is shown (from a history or late batch); false when it
    /// was shown before, live or from a batch.
    /// </summary>
    public bool FirstSighting(MessageId id)
    {
        if (SeenLive(id) || !_seen.Add(id))
        {
            return false;
        }

        _seenOrder.Enqueue(id);
        while (_seenOrder.Count > RememberedIds)
        {
            _seen.Remove(_seenOrder.Dequeue());
        }

        return true;
    }

    public void Keep(HistoryEntry entry)
    {
        if (_ring.Length == 0)
        {
            return;
        }

        ref var slot = ref Take(entry.Id, entry.From, Encoding.UTF8.GetByteCount(entry.Text), entry.At);
        slot.Length = Encoding.UTF8.GetBytes(entry.Text, slot.Text!);
    }

    /// <summary>Keeps a broadcast given as its UTF-8 text (copied).</summary>
    public void Keep(MessageId id, string from, ReadOnlySpan<byte> utf8Text, DateTimeOffset at)
    {
        if (_ring.Length == 0)
        {
            return;
        }

        ref var slot = ref Take(id, from, utf8Text.Length, at);
        utf8Text.CopyTo(slot.Text!);
        slot.Length = utf8Text.Length;
    }

    /// <summary>The most recent <paramref name="max"/> entries, oldest first (the order they were shown in: a causal order).</summary>
    public List<HistoryEntry> Recent(int max)
    {
        var take = Math.Clamp(max, 0, _count);
        var list = new List<HistoryEntry>(take);
        for (var i = _count - take; i < _count; i++)
        {
            ref var slot = ref _ring[(_next - _count + i + _ring.Length) % _ring.Length];
            list.Add(new HistoryEntry(slot.Id, slot.From!, Encoding.UTF8.GetString(slot.Text.AsSpan(0, slot.Length)), slot.At));
        }

        return list;
    }

    /// <summary>The slot of the oldest entry (or a free one), relabelled, with room for <paramref name="bytes"/> bytes.</summary>
    private ref Slot Take(MessageId id, string from, int bytes, DateTimeOffset at)
    {
        ref var slot = ref _ring[_next];
        _next = (_next + 1) % _ring.Length;
        _count = Math.Min(_count + 1, _ring.Length);
        slot.Id = id;
        slot.From = from;
        slot.At = at;
        slot.Length = 0;
        if (slot.Text is null || slot.Text.Length < bytes)
        {
            slot.Text = new byte[Math.Max(bytes, 128)];
        }

        return ref slot;
    }

    private struct Slot
    {
        public MessageId Id;
        public string? From;
        public DateTimeOffset At;
        public byte[]? Text;
        public int Length;
    }
}
