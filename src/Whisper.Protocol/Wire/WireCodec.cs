using System.Net;

namespace Whisper.Protocol.Wire;

/// <summary>Why a datagram was dropped by the decoder.</summary>
public enum DecodeStatus
{
    Ok,
    TooShort,
    TooLarge,
    BadMagic,
    UnsupportedVersion,
    UnsupportedEnvelope,
    UnknownFrameType,
    Truncated,
    Malformed,
}

/// <summary>
/// The one codec of the Whisper wire format (docs/protocol.md). Big-endian, version in every datagram,
/// every length and count bounded. <see cref="TryDecode"/> never throws on untrusted bytes.
/// </summary>
public static class WireCodec
{
    public const byte Magic0 = (byte)'W';
    public const byte Magic1 = (byte)'H';
    public const byte Version = 1;

    /// <summary>Envelope 0: plaintext frames follow. Other values are reserved for an authenticated, encrypted envelope.</summary>
    public const byte PlainEnvelope = 0;

    public const int HeaderSize = 20;
    public const int FrameHeaderSize = 3;

    /// <summary>No datagram is larger than this (a safe payload for any path MTU of 1280 and above).</summary>
    public const int MaxDatagramSize = 1200;

    public const int MaxNameBytes = MemberName.MaxLength;
    public const int MaxDenyMessageBytes = 512;

    public static DecodeStatus TryDecode(ReadOnlySpan<byte> datagram, out DatagramHeader header, List<Frame> frames) =>
        TryDecode(datagram, out header, frames, pool: null);

    /// <summary>
    /// Decodes like <see cref="TryDecode(ReadOnlySpan{byte}, out DatagramHeader, List{Frame})"/>; with a
    /// <paramref name="pool"/>, broadcast chunks are rented from it (their payload and dependencies copied into the
    /// chunk's own reusable buffers) and the caller owns them: it returns each to the pool when done. Acks come as
    /// reused frames valid until the next decode with the same pool. On failure nothing stays rented.
    /// </summary>
    public static DecodeStatus TryDecode(ReadOnlySpan<byte> datagram, out DatagramHeader header, List<Frame> frames, FramePool? pool)
    {
        ArgumentNullException.ThrowIfNull(frames);
        header = default;
        var start = frames.Count;
        pool?.BeginDatagram();
        var status = DecodeCore(datagram, out header, frames, pool);
        if (status != DecodeStatus.Ok)
        {
            if (pool is not null)
            {
                for (var i = start; i < frames.Count; i++)
                {
                    if (frames[i] is ChunkFrame c)
                    {
                        pool.Return(c);
                    }
                }
            }

            frames.RemoveRange(start, frames.Count - start);
            header = default;
        }

        return status;
    }

    /// <summary>Reads just the version byte, so a host can answer a peer that speaks another version.</summary>
    public static bool TryPeekVersion(ReadOnlySpan<byte> datagram, out byte version)
    {
        version = 0;
        if (datagram.Length < 3 || datagram[0] != Magic0 || datagram[1] != Magic1)
        {
            return false;
        }

        version = datagram[2];
        return true;
    }

    private static DecodeStatus DecodeCore(ReadOnlySpan<byte> datagram, out DatagramHeader header, List<Frame> frames, FramePool? pool)
    {
        header = default;
        if (datagram.Length > MaxDatagramSize)
        {
            return DecodeStatus.TooLarge;
        }

        if (datagram.Length < HeaderSize)
        {
            return DecodeStatus.TooShort;
        }

        var r = new WireReader(datagram);
        r.TryReadU8(out var m0);
        r.TryReadU8(out var m1);
        if (m0 != Magic0 || m1 != Magic1)
        {
            return DecodeStatus.BadMagic;
        }

        r.TryReadU8(out var version);
        if (version != Version)
        {
            return DecodeStatus.UnsupportedVersion;
        }

        r.TryReadU8(out var envelope);
        if (envelope != PlainEnvelope)
        {
            return DecodeStatus.UnsupportedEnvelope;
        }

        r.TryReadU64(out var from);
        r.TryReadU64(out var to);
        header = new DatagramHeader(new MemberId(from), new MemberId(to));

        if (r.Remaining == 0)
        {
            return DecodeStatus.Truncated; // a datagram carries at least one frame
        }

        var context = FrameContext.Start; // what a chunk may refer to (ChunkFlags.DeltaDeps, ChunkFlags.Next)
        while (r.Remaining > 0)
        {
            if (!r.TryReadU8(out var type) || !r.TryReadU16(out var length) || !r.TryReadBytes(length, out var body))
            {
                return DecodeStatus.Truncated;
            }

            var br = new WireReader(body);
            Frame? frame;
            switch ((FrameType)type)
            {
                case FrameType.Chunk: frame = pool is null ? ReadChunk(ref br, ref context) : ReadPooledChunk(ref br, pool, ref context); break;
                case FrameType.PrivateChunk: frame = ReadPrivateChunk(ref br, ref context); break;
                case FrameType.Ack: frame = pool is null ? ReadAck(ref br) : ReadPooledAck(ref br, pool); break;
                case FrameType.Nack: frame = ReadNack(ref br); break;
                case FrameType.Intro: frame = ReadIntro(ref br); break;
                case FrameType.Ping: frame = br.TryReadU64(out var ping) ? new PingFrame(ping) : null; break;
                case FrameType.Pong: frame = br.TryReadU64(out var pong) && br.TryReadVarint(out var held) ? new PongFrame(pong, held) : null; break;
                case FrameType.Leave: frame = br.TryReadVarint(out var fin) ? new LeaveFrame(fin) : null; break;
                case FrameType.Evicted: frame = ReadEvicted(ref br); break;
                case FrameType.JoinRequest: frame = ReadJoinRequest(ref br); break;
                case FrameType.JoinAccept: frame = ReadJoinAccept(ref br); break;
                case FrameType.JoinDeny: frame = ReadJoinDeny(ref br); break;
                case FrameType.Lease: frame = ReadLease(ref br); break;
                case FrameType.JoinForward: frame = ReadJoinForward(ref br); break;
                default: return DecodeStatus.UnknownFrameType;
            }

            if (frame is null || br.Remaining != 0)
            {
                if (frame is ChunkFrame rented)
                {
                    pool?.Return(rented);
                }

                return DecodeStatus.Malformed;
            }

            frames.Add(frame);
        }

        return DecodeStatus.Ok;
    }

    /// <summary>Reads a chunk's flags: <see cref="ChunkFlags.Next"/> only on a broadcast chunk, a delta only with deps, no unknown bits.</summary>
    private static bool TryReadFlags(ref WireReader r, bool broadcast, out ChunkFlags flags)
    {
        flags = ChunkFlags.None;
        var known = broadcast ? 0x0F : 0x07;
        if (!r.TryReadU8(out var f) || (f & ~known) != 0 || (f & (byte)(ChunkFlags.DeltaDeps | ChunkFlags.First)) == (byte)ChunkFlags.DeltaDeps)
        {
            return false; // unknown bits, or a delta without deps
        }

        flags = (ChunkFlags)f;
        return true;
    }

    /// <summary>
    /// A broadcast chunk's flags, then its origin and seq: read, or for <see cref="ChunkFlags.Next"/> those of the previous
    /// broadcast chunk in <paramref name="context"/> plus one (malformed when there is none). Clears <see cref="ChunkFlags.Next"/>.
    /// </summary>
    private static bool TryReadChunkStart(ref WireReader r, in FrameContext context, out ChunkFlags flags, out ulong origin, out ulong seq)
    {
        origin = 0;
        seq = 0;
        if (!TryReadFlags(ref r, broadcast: true, out flags))
        {
            return false;
        }

        if ((flags & ChunkFlags.Next) == 0)
        {
            return r.TryReadU64(out origin) && origin != 0 && r.TryReadVarint(out seq) && seq != 0;
        }

        flags &= ~ChunkFlags.Next;
        if (context.Seq == 0 || context.Seq == ulong.MaxValue)
        {
            return false; // nothing to continue, or a stream at its very end
        }

        origin = context.Origin.Value;
        seq = context.Seq + 1;
        return true;
    }

    /// <summary>Reads the deps of a chunk whose flags are <paramref name="flags"/> (full, or a delta against the context's deps).</summary>
    private static bool TryReadDeps(ref WireReader r, ref ChunkFlags flags, in FrameContext context, out VectorClock? deps)
    {
        deps = null;
        if ((flags & ChunkFlags.First) == 0)
        {
            return true;
        }

        var ok = (flags & ChunkFlags.DeltaDeps) != 0
            ? context.Deps is not null && TryReadDeltaClock(ref r, context.Deps, out deps)
            : TryReadClock(ref r, out deps);
        flags &= ~ChunkFlags.DeltaDeps;
        return ok;
    }

    /// <summary>
    /// A delta clock: <c>u8</c> count of replaced entries, each <c>u8</c> index into <paramref name="baseClock"/>'s entries
    /// (strictly ascending) and <c>varint</c> change of the value (<see cref="ZigZag"/>); then <c>u8</c> count of added entries, each <c>u64</c> id (strictly
    /// ascending, not in the base) and <c>varint</c> value.
    /// </summary>
    private static bool TryReadDeltaClock(ref WireReader r, VectorClock baseClock, out VectorClock? clock)
    {
        clock = null;
        var baseEntries = baseClock.EntrySpan;
        if (!r.TryReadU8(out var replacedCount) || replacedCount > baseEntries.Length)
        {
            return false;
        }

        Span<(int Index, ulong Value)> replaced = stackalloc (int, ulong)[replacedCount];
        var previous = -1;
        for (var i = 0; i < replacedCount; i++)
        {
            if (!r.TryReadU8(out var index) || index <= previous || index >= baseEntries.Length || !r.TryReadVarint(out var change))
            {
                return false;
            }

            replaced[i] = (index, UnZigZag(change, baseEntries[index].Value));
            previous = index;
        }

        if (!r.TryReadU8(out var added) || baseEntries.Length + added > VectorClock.MaxEntries)
        {
            return false;
        }

        var entries = new ClockEntry[baseEntries.Length + added];
        baseEntries.CopyTo(entries);
        foreach (var (index, value) in replaced)
        {
            entries[index] = new ClockEntry(baseEntries[index].Member, value);
        }

        ulong previousId = 0;
        for (var i = 0; i < added; i++)
        {
            if (!r.TryReadU64(out var id) || id <= previousId || !r.TryReadVarint(out var value) || InBase(baseEntries, id))
            {
                return false;
            }

            entries[baseEntries.Length + i] = new ClockEntry(new MemberId(id), value);
            previousId = id;
        }

        if (added > 0)
        {
            Array.Sort(entries, static (a, b) => a.Member.Value.CompareTo(b.Member.Value));
        }

        clock = VectorClock.FromSortedUnchecked(entries);
        return true;

        static bool InBase(ReadOnlySpan<ClockEntry> entries, ulong id)
        {
            foreach (var e in entries)
            {
                if (e.Member.Value == id)
                {
                    return true;
                }
            }

            return false;
        }
    }

    private static bool TryReadPayload(ref WireReader r, out ReadOnlyMemory<byte> payload)
    {
        payload = default;
        if (!r.TryReadVarint(MaxDatagramSize, out var len) || !r.TryReadBytes((int)len, out var bytes))
        {
            return false;
        }

        payload = bytes.ToArray();
        return true;
    }

    private static ChunkFrame? ReadChunk(ref WireReader r, ref FrameContext context)
    {
        if (!TryReadChunkStart(ref r, context, out var flags, out var origin, out var seq) || !TryReadDeps(ref r, ref flags, context, out var deps)
            || !TryReadPayload(ref r, out var payload))
        {
            return null;
        }

        var chunk = new ChunkFrame(new MemberId(origin), seq, flags, deps, payload);
        context = context.After(chunk);
        return chunk;
    }

    private static PrivateChunkFrame? ReadPrivateChunk(ref WireReader r, ref FrameContext context)
    {
        if (!r.TryReadVarint(out var seq) || seq == 0 || !TryReadFlags(ref r, broadcast: false, out var flags) || !TryReadDeps(ref r, ref flags, context, out var deps)
            || !TryReadPayload(ref r, out var payload))
        {
            return null;
        }

        var chunk = new PrivateChunkFrame(seq, flags, deps, payload);
        context = context.After(chunk);
        return chunk;
    }

    private static AckFrame? ReadAck(ref WireReader r) =>
        TryReadClock(ref r, out var received) && r.TryReadVarint(out var priv) ? new AckFrame(received!, priv) : null;

    /// <summary>A broadcast chunk into a pooled frame (origin and deps possibly referring to <paramref name="context"/>): no allocation once the pool is warm.</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // the stack buffer is written before it is read
    private static ChunkFrame? ReadPooledChunk(ref WireReader r, FramePool pool, ref FrameContext context)
    {
        if (!TryReadChunkStart(ref r, context, out var flags, out var origin, out var seq))
        {
            return null;
        }

        Span<ClockEntry> deps = stackalloc ClockEntry[VectorClock.MaxEntries];
        var count = 0;
        var hasDeps = (flags & ChunkFlags.First) != 0;
        if (hasDeps)
        {
            var ok = (flags & ChunkFlags.DeltaDeps) != 0
                ? context.Deps is not null && TryReadDeltaEntries(ref r, context.Deps.EntrySpan, deps, out count)
                : TryReadClockEntries(ref r, deps, out count);
            flags &= ~ChunkFlags.DeltaDeps;
            if (!ok)
            {
                return null;
            }
        }

        if (!r.TryReadVarint(MaxDatagramSize, out var len) || !r.TryReadBytes((int)len, out var payload))
        {
            return null;
        }

        var chunk = pool.RentChunk(new MemberId(origin), seq, flags, hasDeps, deps[..count], payload);
        context = context.After(chunk); // the chunk's own clock: no allocation, valid while the chunk is
        return chunk;
    }

    [System.Runtime.CompilerServices.SkipLocalsInit] // the stack buffer is written before it is read
    private static AckFrame? ReadPooledAck(ref WireReader r, FramePool pool)
    {
        Span<ClockEntry> entries = stackalloc ClockEntry[VectorClock.MaxEntries];
        return TryReadClockEntries(ref r, entries, out var count) && r.TryReadVarint(out var priv) ? pool.RentAck(entries[..count], priv) : null;
    }

    /// <summary>Reads a clock's entries (ids strictly ascending and non-zero) into <paramref name="entries"/> (at least <see cref="VectorClock.MaxEntries"/> long).</summary>
    private static bool TryReadClockEntries(ref WireReader r, scoped Span<ClockEntry> entries, out int count)
    {
        count = 0;
        if (!r.TryReadU8(out var n) || n > VectorClock.MaxEntries)
        {
            return false;
        }

        ulong previous = 0;
        for (var i = 0; i < n; i++)
        {
            if (!r.TryReadU64(out var id) || id <= previous || !r.TryReadVarint(out var value))
            {
                return false;
            }

            entries[i] = new ClockEntry(new MemberId(id), value);
            previous = id;
        }

        count = n;
        return true;
    }

    /// <summary><see cref="TryReadDeltaClock"/> into <paramref name="entries"/> (same checks) instead of a new clock.</summary>
    private static bool TryReadDeltaEntries(ref WireReader r, ReadOnlySpan<ClockEntry> baseEntries, scoped Span<ClockEntry> entries, out int count)
    {
        count = 0;
        if (!r.TryReadU8(out var replacedCount) || replacedCount > baseEntries.Length)
        {
            return false;
        }

        baseEntries.CopyTo(entries);
        var previous = -1;
        for (var i = 0; i < replacedCount; i++)
        {
            if (!r.TryReadU8(out var index) || index <= previous || index >= baseEntries.Length || !r.TryReadVarint(out var change))
            {
                return false;
            }

            entries[index] = new ClockEntry(baseEntries[index].Member, UnZigZag(change, baseEntries[index].Value));
            previous = index;
        }

        if (!r.TryReadU8(out var added) || baseEntries.Length + added > VectorClock.MaxEntries)
        {
            return false;
        }

        ulong previousId = 0;
        for (var i = 0; i < added; i++)
        {
            if (!r.TryReadU64(out var id) || id <= previousId || !r.TryReadVarint(out var value) || InBase(baseEntries, id))
            {
                return false;
            }

            // Insertion in id order (the base is sorted): a few dozen entries at most.
            var e = new ClockEntry(new MemberId(id), value);
            var j = baseEntries.Length + i - 1;
            while (j >= 0 && entries[j].Member.Value > id)
            {
                entries[j + 1] = entries[j];
                j--;
            }

            entries[j + 1] = e;
            previousId = id;
        }

        count = baseEntries.Length + added;
        return true;

        static bool InBase(ReadOnlySpan<ClockEntry> entries, ulong id)
        {
            foreach (var e in entries)
            {
                if (e.Member.Value == id)
                {
                    return true;
                }
            }

            return false;
        }
    }

    private static NackFrame? ReadNack(ref WireReader r)
    {
        if (!r.TryReadU8(out var stream) || stream > 1 || !r.TryReadU64(out var origin) || !r.TryReadU8(out var count) || count == 0 || count > NackFrame.MaxRanges)
        {
            return null;
        }

        var ranges = new SeqRange[count];
        for (var i = 0; i < count; i++)
        {
            if (!r.TryReadVarint(out var first) || first == 0 || !r.TryReadVarint(out var span) || first + span < first)
            {
                return null;
            }

            ranges[i] = new SeqRange(first, first + span);
        }

        return new NackFrame((StreamKind)stream, new MemberId(origin), ranges);
    }

    private static IntroFrame? ReadIntro(ref WireReader r)
    {
        if (!r.TryReadU8(out var flags) || (flags & ~0x01) != 0
            || !TryReadName(ref r, out var name)
            || !r.TryReadEndpoint(out var endpoint)
            || !r.TryReadVarint(out var baseSeq)
            || !TryReadMembers(ref r, IntroFrame.MaxKnown, out var known)
            || !TryReadClock(ref r, out var departed)
            || departed!.Count > IntroFrame.MaxDeparted
            || !r.TryReadVarint(out var seniority))
        {
            return null;
        }

        return new IntroFrame((flags & 1) != 0, name, endpoint!, baseSeq, known!, departed, seniority);
    }

    private static EvictedFrame? ReadEvicted(ref WireReader r) =>
        r.TryReadU8(out var size) && size is >= 1 and <= MaxEvictedViewSize && r.TryReadVarint(out var seniority) && r.TryReadU64(out var senior) && senior != 0
            ? new EvictedFrame(size, seniority, new MemberId(senior))
            : null;

    /// <summary>The largest view an <see cref="EvictedFrame"/> may report (16 members, as member lists).</summary>
    private const int MaxEvictedViewSize = 16;

    private static JoinRequestFrame? ReadJoinRequest(ref WireReader r) =>
        r.TryReadShortString(255, out var name) ? new JoinRequestFrame(name) : null; // the server judges the name

    private static JoinAcceptFrame? ReadJoinAccept(ref WireReader r) =>
        r.TryReadEndpoint(out var you) && TryReadMembers(ref r, JoinAcceptFrame.MaxMembers, out var members) && r.TryReadVarint(out var seniority)
            ? new JoinAcceptFrame(you!, members!, seniority)
            : null;

    private static JoinDenyFrame? ReadJoinDeny(ref WireReader r)
    {
        if (!r.TryReadU8(out var reason) || reason > (byte)DenyReason.VersionMismatch || !r.TryReadString(MaxDenyMessageBytes, out var message))
        {
            return null;
        }

        return new JoinDenyFrame((DenyReason)reason, message);
    }

    private static JoinForwardFrame? ReadJoinForward(ref WireReader r) =>
        r.TryReadU64(out var id) && id != 0 && r.TryReadShortString(255, out var name) && r.TryReadEndpoint(out var ep)
            ? new JoinForwardFrame(new MemberId(id), name, ep!)
            : null;

    private static LeaseFrame? ReadLease(ref WireReader r) =>
        TryReadName(ref r, out var name) && TryReadMembers(ref r, JoinAcceptFrame.MaxMembers, out var view) && r.TryReadVarint(out var seniority)
            ? new LeaseFrame(name, view!, seniority)
            : null;

    private static bool TryReadName(ref WireReader r, out string name) =>
        r.TryReadShortString(MaxNameBytes, out name) && MemberName.IsValid(name);

    private static bool TryReadMembers(ref WireReader r, int max, out IReadOnlyList<MemberRecord>? members)
    {
        members = null;
        if (!r.TryReadU8(out var count) || count > max)
        {
            return false;
        }

        var list = new MemberRecord[count];
        for (var i = 0; i < count; i++)
        {
            if (!r.TryReadU64(out var id) || id == 0 || !TryReadName(ref r, out var name) || !r.TryReadEndpoint(out var ep))
            {
                return false;
            }

            list[i] = new MemberRecord(new MemberId(id), name, ep!);
        }

        members = list;
        return true;
    }

    private static bool TryReadClock(ref WireReader r, out VectorClock? clock)
    {
        clock = null;
        if (!r.TryReadU8(out var count) || count > VectorClock.MaxEntries)
        {
            return false;
        }

        var entries = new ClockEntry[count];
        ulong previous = 0;
        for (var i = 0; i < count; i++)
        {
            if (!r.TryReadU64(out var id) || id <= previous || !r.TryReadVarint(out var value))
            {
                return false; // ids strictly ascending and non-zero
            }

            entries[i] = new ClockEntry(new MemberId(id), value);
            previous = id;
        }

        clock = VectorClock.FromSortedUnchecked(entries);
        return true;
    }

    // ---------------------------------------------------------------- encoding

    /// <summary>Bytes a frame takes on the wire, including its 3-byte frame header, at the start of its datagram (the most it can take anywhere).</summary>
    public static int FrameSize(Frame frame) => FrameSize(frame, FrameContext.Start);

    /// <summary>
    /// Bytes a frame takes on the wire after the frames that left <paramref name="context"/> in the same datagram: a
    /// chunk's deps are written as a delta against the context's when that is shorter, and a broadcast chunk that continues
    /// the context's stream leaves out its origin and seq. Carry the context from frame to frame with
    /// <see cref="FrameContext.After"/>, as <see cref="Encode(DatagramHeader, IReadOnlyList{Frame}, Span{byte})"/> does.
    /// </summary>
    public static int FrameSize(Frame frame, FrameContext context)
    {
        ArgumentNullException.ThrowIfNull(frame);
        return FrameHeaderSize + BodySize(frame, context);
    }

    /// <summary>Encodes one datagram into <paramref name="destination"/> and returns its length.</summary>
    public static int Encode(DatagramHeader header, IReadOnlyList<Frame> frames, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(frames);
        var w = new WireWriter(destination);
        WriteHeader(ref w, header);
        var context = FrameContext.Start;
        for (var i = 0; i < frames.Count; i++)
        {
            WriteFrame(ref w, frames[i], context); // by index: a foreach over the interface would allocate an enumerator per datagram
            context = context.After(frames[i]);
        }

        if (w.Written > MaxDatagramSize)
        {
            throw new ArgumentException($"datagram of {w.Written} bytes exceeds {MaxDatagramSize}", nameof(frames));
        }

        return w.Written;
    }

    /// <summary>Encodes one datagram into a new array (for tests, tools and the discovery server).</summary>
    public static byte[] Encode(DatagramHeader header, params Frame[] frames)
    {
        var size = HeaderSize;
        var context = FrameContext.Start;
        foreach (var frame in frames)
        {
            size += FrameSize(frame, context);
            context = context.After(frame);
        }

        var buffer = new byte[size];
        Encode(header, frames, buffer);
        return buffer;
    }

    internal static void WriteHeader(ref WireWriter w, DatagramHeader header)
    {
        w.WriteU8(Magic0);
        w.WriteU8(Magic1);
        w.WriteU8(Version);
        w.WriteU8(PlainEnvelope);
        w.WriteU64(header.From.Value);
        w.WriteU64(header.To.Value);
    }

    internal static void WriteFrame(ref WireWriter w, Frame frame, FrameContext context)
    {
        EnsureEncodable(frame);
        var delta = false; // whether a chunk's deps go as a delta: decided once, with its size
        var next = frame is ChunkFrame chunk && context.Continues(chunk); // origin and seq left out
        var body = frame switch
        {
            ChunkFrame c => ChunkBodySize(next ? ChunkStart.Next : ChunkStart.Origin, c.Seq, c.Flags, c.Deps, c.Payload.Length, context.Deps, out delta),
            PrivateChunkFrame p => ChunkBodySize(ChunkStart.SeqOnly, p.Seq, p.Flags, p.Deps, p.Payload.Length, context.Deps, out delta),
            _ => BodySize(frame, context),
        };
        if (body > ushort.MaxValue)
        {
            throw new InvalidOperationException($"frame body too large: {frame.Describe()}");
        }

        w.WriteU8((byte)frame.Type);
        w.WriteU16((ushort)body);
        var before = w.Written;
        switch (frame)
        {
            case ChunkFrame c:
                w.WriteU8((byte)(c.Flags | (delta ? ChunkFlags.DeltaDeps : 0) | (next ? ChunkFlags.Next : 0)));
                if (!next)
                {
                    w.WriteU64(c.Origin.Value);
                    w.WriteVarint(c.Seq);
                }

                WriteDeps(ref w, c.Flags, c.Deps, context.Deps, delta);

                w.WriteVarint((ulong)c.Payload.Length);
                w.WriteBytes(c.Payload.Span);
                break;
            case PrivateChunkFrame p:
                w.WriteVarint(p.Seq);
                w.WriteU8((byte)(p.Flags | (delta ? ChunkFlags.DeltaDeps : 0)));
                WriteDeps(ref w, p.Flags, p.Deps, context.Deps, delta);

                w.WriteVarint((ulong)p.Payload.Length);
                w.WriteBytes(p.Payload.Span);
                break;
            case AckFrame a:
                WriteClock(ref w, a.Received);
                w.WriteVarint(a.PrivateReceived);
                break;
            case NackFrame n:
                w.WriteU8((byte)n.Stream);
                w.WriteU64(n.Origin.Value);
                w.WriteU8(checked((byte)n.Missing.Count));
                foreach (var range in n.Missing)
                {
                    w.WriteVarint(range.First);
                    w.WriteVarint(range.Last - range.First);
                }

                break;
            case IntroFrame i:
                w.WriteU8(i.ReplyRequested ? (byte)1 : (byte)0);
                w.WriteShortString(i.Name);
                w.WriteEndpoint(i.Endpoint);
                w.WriteVarint(i.BaseSeq);
                WriteMembers(ref w, i.Known);
                WriteClock(ref w, i.Departed ?? VectorClock.Empty);
                w.WriteVarint(i.Seniority);
                break;
            case PingFrame p:
                w.WriteU64(p.Token);
                break;
            case PongFrame p:
                w.WriteU64(p.Token);
                w.WriteVarint(p.HeldMicroseconds);
                break;
            case LeaveFrame l:
                w.WriteVarint(l.FinalSeq);
                break;
            case EvictedFrame e:
                w.WriteU8(e.ViewSize);
                w.WriteVarint(e.SeniorSeniority);
                w.WriteU64(e.SeniorId.Value);
                break;
            case JoinRequestFrame j:
                w.WriteShortString(j.Name);
                break;
            case JoinAcceptFrame a:
                w.WriteEndpoint(a.ObservedEndpoint);
                WriteMembers(ref w, a.Members);
                w.WriteVarint(a.Seniority);
                break;
            case JoinDenyFrame d:
                w.WriteU8((byte)d.Reason);
                w.WriteString(d.Message);
                break;
            case LeaseFrame l:
                w.WriteShortString(l.Name);
                WriteMembers(ref w, l.View);
                w.WriteVarint(l.Seniority);
                break;
            case JoinForwardFrame f:
                w.WriteU64(f.Newcomer.Value);
                w.WriteShortString(f.Name);
                w.WriteEndpoint(f.Endpoint);
                break;
            default:
                throw new InvalidOperationException($"unknown frame {frame.GetType().Name}");
        }

        if (w.Written - before != body)
        {
            throw new InvalidOperationException($"frame size mismatch for {frame.Describe()}");
        }
    }

    /// <summary>
    /// Refuses to encode what the decoder would reject: a broken invariant in our own code must fail loudly
    /// at the sender, not show up as silent drops at every receiver.
    /// </summary>
    private static void EnsureEncodable(Frame frame)
    {
        string? problem = frame switch
        {
            ChunkFrame c when c.Origin.IsNone || c.Seq == 0 => "chunk needs a non-zero origin and sequence",
            ChunkFrame c when ((byte)c.Flags & ~0x03) != 0 => "unknown chunk flags",
            ChunkFrame c when c.Deps is { } d && !ClockEncodable(d) => "dependency clock not encodable",
            PrivateChunkFrame p when p.Seq == 0 => "private chunk needs a non-zero sequence",
            PrivateChunkFrame p when ((byte)p.Flags & ~0x03) != 0 => "unknown chunk flags",
            PrivateChunkFrame p when p.Deps is { } d && !ClockEncodable(d) => "dependency clock not encodable",
            AckFrame a when !ClockEncodable(a.Received) => "ack clock not encodable",
            NackFrame n when n.Missing.Count is 0 or > NackFrame.MaxRanges => "a nack carries 1-32 ranges",
            NackFrame n when n.Missing.Any(static r => r.First == 0 || r.Last < r.First) => "nack range must be non-empty and start at 1 or later",
            IntroFrame i when !MemberName.IsValid(i.Name) || i.Known.Count > IntroFrame.MaxKnown || !MembersEncodable(i.Known)
                || (i.Departed is { } dep && (dep.Count > IntroFrame.MaxDeparted || !ClockEncodable(dep))) => "intro not encodable",
            EvictedFrame e when e.ViewSize is 0 or > MaxEvictedViewSize || e.SeniorId.IsNone => "evicted notice needs a view of 1-16 and a senior id",
            JoinRequestFrame j when System.Text.Encoding.UTF8.GetByteCount(j.Name) > 255 => "join request name longer than 255 bytes",
            JoinForwardFrame f when f.Newcomer.IsNone || System.Text.Encoding.UTF8.GetByteCount(f.Name) > 255 => "join forward not encodable",
            JoinAcceptFrame a when a.Members.Count > JoinAcceptFrame.MaxMembers || !MembersEncodable(a.Members) => "member list not encodable",
            JoinDenyFrame d when d.Reason > DenyReason.VersionMismatch => "deny reason is local only",
            JoinDenyFrame d when System.Text.Encoding.UTF8.GetByteCount(d.Message) > MaxDenyMessageBytes => "deny message longer than 512 bytes",
            LeaseFrame l when !MemberName.IsValid(l.Name) || l.View.Count > JoinAcceptFrame.MaxMembers || !MembersEncodable(l.View) => "lease not encodable",
            _ => null,
        };
        if (problem is not null)
        {
            throw new ArgumentException($"{problem}: {frame.Describe()}", nameof(frame));
        }
    }

    private static bool ClockEncodable(VectorClock clock) =>
        clock.Count <= VectorClock.MaxEntries && AllNamed(clock);

    private static bool AllNamed(VectorClock clock)
    {
        foreach (var e in clock.EntrySpan)
        {
            if (e.Member.IsNone)
            {
                return false;
            }
        }

        return true;
    }

    private static bool MembersEncodable(IReadOnlyList<MemberRecord> members) =>
        members.All(static m => !m.Id.IsNone && MemberName.IsValid(m.Name));

    private static int BodySize(Frame frame, FrameContext context) => frame switch
    {
        ChunkFrame c => ChunkBodySize(context.Continues(c) ? ChunkStart.Next : ChunkStart.Origin, c.Seq, c.Flags, c.Deps, c.Payload.Length, context.Deps, out _),
        PrivateChunkFrame p => ChunkBodySize(ChunkStart.SeqOnly, p.Seq, p.Flags, p.Deps, p.Payload.Length, context.Deps, out _),
        AckFrame a => ClockSize(a.Received) + WireWriter.VarintSize(a.PrivateReceived),
        NackFrame n => 1 + 8 + 1 + n.Missing.Sum(static r => WireWriter.VarintSize(r.First) + WireWriter.VarintSize(r.Last - r.First)),
        IntroFrame i => 1 + WireWriter.ShortStringSize(i.Name) + WireWriter.EndpointSize(i.Endpoint) + WireWriter.VarintSize(i.BaseSeq) + MembersSize(i.Known)
            + ClockSize(i.Departed ?? VectorClock.Empty) + WireWriter.VarintSize(i.Seniority),
        PingFrame => 8,
        PongFrame p => 8 + WireWriter.VarintSize(p.HeldMicroseconds),
        LeaveFrame l => WireWriter.VarintSize(l.FinalSeq),
        EvictedFrame e => 1 + WireWriter.VarintSize(e.SeniorSeniority) + 8,
        JoinRequestFrame j => WireWriter.ShortStringSize(j.Name),
        JoinAcceptFrame a => WireWriter.EndpointSize(a.ObservedEndpoint) + MembersSize(a.Members) + WireWriter.VarintSize(a.Seniority),
        JoinDenyFrame d => 1 + WireWriter.StringSize(d.Message),
        LeaseFrame l => WireWriter.ShortStringSize(l.Name) + MembersSize(l.View) + WireWriter.VarintSize(l.Seniority),
        JoinForwardFrame f => 8 + WireWriter.ShortStringSize(f.Name) + WireWriter.EndpointSize(f.Endpoint),
        _ => throw new InvalidOperationException($"unknown frame {frame.GetType().Name}"),
    };

    /// <summary>What a chunk writes before its deps, besides its flags.</summary>
    private enum ChunkStart
    {
        /// <summary>A broadcast chunk: origin and seq.</summary>
        Origin,

        /// <summary>A broadcast chunk that continues the previous one (<see cref="ChunkFlags.Next"/>): nothing.</summary>
        Next,

        /// <summary>A private chunk: its seq.</summary>
        SeqOnly,
    }

    /// <summary>Body size of a broadcast or private chunk; <paramref name="delta"/>: deps as a delta.</summary>
    private static int ChunkBodySize(ChunkStart start, ulong seq, ChunkFlags flags, VectorClock? deps, int payloadLength, VectorClock? previousDeps, out bool delta)
    {
        delta = false;
        var startSize = start switch
        {
            ChunkStart.Origin => 8 + WireWriter.VarintSize(seq),
            ChunkStart.SeqOnly => WireWriter.VarintSize(seq),
            _ => 0,
        };
        return startSize + 1
            + ((flags & ChunkFlags.First) != 0 ? DepsSize(deps ?? VectorClock.Empty, previousDeps, out delta) : 0)
            + WireWriter.VarintSize((ulong)payloadLength) + payloadLength;
    }

    /// <summary>Encoded size of a chunk's deps: as a delta against <paramref name="previousDeps"/> when possible and shorter.</summary>
    private static int DepsSize(VectorClock deps, VectorClock? previousDeps, out bool delta)
    {
        var deltaSize = previousDeps is null ? -1 : DeltaClockSize(previousDeps, deps);
        if (deltaSize >= 0 && deltaSize < 1 + (9 * deps.EntrySpan.Length))
        {
            delta = true; // shorter than any full encoding of this many entries (each takes 8 + at least 1 bytes)
            return deltaSize;
        }

        var full = ClockSize(deps);
        delta = deltaSize >= 0 && deltaSize < full;
        return delta ? deltaSize : full;
    }

    /// <summary>Size of <paramref name="clock"/> as a delta against <paramref name="baseClock"/>, or -1 when an entry of the base is missing (a delta cannot remove one).</summary>
    private static int DeltaClockSize(VectorClock baseClock, VectorClock clock)
    {
        var size = 2; // the two counts
        var b = baseClock.EntrySpan;
        var c = clock.EntrySpan;
        int i = 0, j = 0;
        while (i < b.Length || j < c.Length)
        {
            if (j == c.Length || (i < b.Length && b[i].Member.Value < c[j].Member.Value))
            {
                return -1;
            }

            if (i == b.Length || c[j].Member.Value < b[i].Member.Value)
            {
                size += 8 + WireWriter.VarintSize(c[j].Value); // added
                j++;
                continue;
            }

            if (b[i].Value != c[j].Value)
            {
                size += 1 + WireWriter.VarintSize(ZigZag(c[j].Value, b[i].Value)); // replaced
            }

            i++;
            j++;
        }

        return size;
    }

    /// <summary>A chunk's deps after its flags (nothing unless <see cref="ChunkFlags.First"/>): in full, or as a delta against <paramref name="previousDeps"/>.</summary>
    private static void WriteDeps(ref WireWriter w, ChunkFlags flags, VectorClock? deps, VectorClock? previousDeps, bool delta)
    {
        if ((flags & ChunkFlags.First) == 0)
        {
            return;
        }

        deps ??= VectorClock.Empty;
        if (!delta)
        {
            WriteClock(ref w, deps);
            return;
        }

        var b = previousDeps!.EntrySpan;
        var c = deps.EntrySpan;
        var replaced = 0;
        var added = 0;
        for (int i = 0, j = 0; j < c.Length; j++)
        {
            if (i < b.Length && b[i].Member == c[j].Member)
            {
                replaced += b[i].Value != c[j].Value ? 1 : 0;
                i++;
            }
            else
            {
                added++;
            }
        }

        w.WriteU8((byte)replaced);
        for (int i = 0, j = 0; j < c.Length; j++)
        {
            if (i < b.Length && b[i].Member == c[j].Member)
            {
                if (b[i].Value != c[j].Value)
                {
                    w.WriteU8((byte)i);
                    w.WriteVarint(ZigZag(c[j].Value, b[i].Value));
                }

                i++;
            }
        }

        w.WriteU8((byte)added);
        for (int i = 0, j = 0; j < c.Length; j++)
        {
            if (i < b.Length && b[i].Member == c[j].Member)
            {
                i++;
            }
            else
            {
                w.WriteU64(c[j].Member.Value);
                w.WriteVarint(c[j].Value);
            }
        }
    }

    /// <summary>
    /// A replaced value as its change from the base value, zigzag-encoded so that small steps either way take one byte:
    /// 0, -1, 1, -2, 2, ... become 0, 1, 2, 3, 4, ... The arithmetic wraps at 2^64, so every value has exactly one code.
    /// </summary>
    internal static ulong ZigZag(ulong value, ulong baseValue)
    {
        var change = unchecked((long)(value - baseValue));
        return unchecked((ulong)((change << 1) ^ (change >> 63)));
    }

    /// <summary>The inverse of <see cref="ZigZag"/>.</summary>
    internal static ulong UnZigZag(ulong code, ulong baseValue) =>
        unchecked(baseValue + (ulong)((long)(code >> 1) ^ -(long)(code & 1)));

    internal static int ClockSize(VectorClock clock) => ClockSize(clock.EntrySpan);

    internal static int ClockSize(ReadOnlySpan<ClockEntry> clock)
    {
        var size = 1;
        foreach (var e in clock)
        {
            size += 8 + WireWriter.VarintSize(e.Value);
        }

        return size;
    }

    private static void WriteClock(ref WireWriter w, VectorClock clock)
    {
        w.WriteU8(checked((byte)clock.Count));
        foreach (var e in clock.EntrySpan)
        {
            w.WriteU64(e.Member.Value);
            w.WriteVarint(e.Value);
        }
    }

    private static int MembersSize(IReadOnlyList<MemberRecord> members) =>
        1 + members.Sum(static m => 8 + WireWriter.ShortStringSize(m.Name) + WireWriter.EndpointSize(m.Endpoint));

    private static void WriteMembers(ref WireWriter w, IReadOnlyList<MemberRecord> members)
    {
        w.WriteU8(checked((byte)members.Count));
        foreach (var m in members)
        {
            w.WriteU64(m.Id.Value);
            w.WriteShortString(m.Name);
            w.WriteEndpoint(m.Endpoint);
        }
    }

    /// <summary>Describes a whole datagram for traces: <c>3f2a91->77c0d1 Chunk ... | Ack ...</c>.</summary>
    public static string Describe(DatagramHeader header, IEnumerable<Frame> frames) =>
        $"{Short(header.From)}->{Short(header.To)} {string.Join(" | ", frames.Select(f => f.Describe()))}";

    private static string Short(MemberId id) => id.IsNone ? "-" : id.ToString()[..6];

    internal static bool IsLoopbackOrAny(IPEndPoint ep) => IPAddress.IsLoopback(ep.Address) || ep.Address.Equals(IPAddress.Any);
}
