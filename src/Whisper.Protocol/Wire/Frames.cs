using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Whisper.Protocol.Wire;

/// <summary>Frame type codes (the first byte of every frame). See docs/protocol.md.</summary>
public enum FrameType : byte
{
    Chunk = 0x01,
    PrivateChunk = 0x02,
    Ack = 0x03,
    Nack = 0x04,
    Intro = 0x05,
    Ping = 0x06,
    Pong = 0x07,
    Leave = 0x08,
    Evicted = 0x09,
    JoinRequest = 0x10,
    JoinAccept = 0x11,
    JoinDeny = 0x12,
    Lease = 0x13,
    JoinForward = 0x14,
}

/// <summary>Flags of a message chunk.</summary>
[Flags]
public enum ChunkFlags : byte
{
    None = 0,

    /// <summary>The first chunk of a message; it carries the message's causal dependencies.</summary>
    First = 1,

    /// <summary>The last chunk of a message.</summary>
    Last = 2,

    /// <summary>
    /// Wire only (with <see cref="First"/>): the deps clock is encoded as a delta against the deps of the previous
    /// chunk in the same datagram. <see cref="WireCodec"/> sets it when that is shorter and clears it on decode, so frames
    /// never carry it.
    /// </summary>
    DeltaDeps = 4,

    /// <summary>
    /// Wire only, broadcast chunks: the chunk continues the previous broadcast chunk of its datagram (same origin, the
    /// next sequence number), whose origin and seq it leaves out. <see cref="WireCodec"/> sets it whenever that holds and
    /// clears it on decode, so frames never carry it.
    /// </summary>
    Next = 8,
}

/// <summary>Which stream a negative ack refers to.</summary>
public enum StreamKind : byte
{
    Broadcast = 0,
    Private = 1,
}

/// <summary>Why the discovery server (or the group) refused a join.</summary>
public enum DenyReason : byte
{
    Other = 0,
    Full = 1,
    NameTaken = 2,
    InvalidName = 3,
    VersionMismatch = 4,

    /// <summary>Local only, never on the wire: nobody answered the join after bounded retries.</summary>
    Unreachable = 0xFE,
}

/// <summary>A member as listed by the discovery server or by another member.</summary>
public sealed record MemberRecord(MemberId Id, string Name, IPEndPoint Endpoint)
{
    public override string ToString() => $"{Name}#{Id.ToString()[..6]}@{Endpoint}";
}

/// <summary>An inclusive range of sequence numbers.</summary>
public readonly record struct SeqRange(ulong First, ulong Last)
{
    public override string ToString() => First == Last
        ? First.ToString(CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"{First}-{Last}");
}

/// <summary>The fixed part of every datagram: who sent it and for whom.</summary>
public readonly record struct DatagramHeader(MemberId From, MemberId To);

/// <summary>The closed set of typed wire messages. Each has one readable <see cref="Describe"/>.</summary>
public abstract record Frame
{
    public abstract FrameType Type { get; }

    public abstract string Describe();
}

/// <summary>What broadcast and private chunks have in common: how a message is cut into a stream's chunks.</summary>
public interface IMessageChunk
{
    ulong Seq { get; }

    ChunkFlags Flags { get; }

    /// <summary>The message's causal dependencies; only on the first chunk.</summary>
    VectorClock? Deps { get; }

    ReadOnlyMemory<byte> Payload { get; }
}

/// <summary>
/// One chunk of a broadcast message in <see cref="Origin"/>'s stream (sent by the origin or relayed).
/// <para>
/// Chunks built with the public constructor are immutable. Chunks rented from a <see cref="FramePool"/> (the engine's
/// decoder and its own broadcasts) own reusable payload and dependency buffers and are recycled when the engine
/// releases them (once stable or retired): such a chunk must not be kept beyond the engine call that produced it.
/// The engine's queues check <see cref="Generation"/> so that a recycled chunk is never sent under another identity.
/// </para>
/// </summary>
public sealed record ChunkFrame : Frame, IMessageChunk
{
    private VectorClock? _deps;
    private VectorClock? _scratchDeps;
    private ClockEntry[]? _depsEntries;
    private byte[]? _payloadBuffer;

    public ChunkFrame(MemberId Origin, ulong Seq, ChunkFlags Flags, VectorClock? Deps, ReadOnlyMemory<byte> Payload)
    {
        this.Origin = Origin;
        this.Seq = Seq;
        this.Flags = Flags;
        _deps = Deps;
        this.Payload = Payload;
    }

    /// <summary>A pooled chunk, filled by <see cref="FramePool"/>.</summary>
    internal ChunkFrame(FramePool pool) => Pool = pool;

    public MemberId Origin { get; private set; }

    public ulong Seq { get; private set; }

    public ChunkFlags Flags { get; private set; }

    /// <summary>The message's causal dependencies (first chunk only). A pooled chunk's clock is reused with the chunk: never keep it.</summary>
    public VectorClock? Deps => _deps;

    public ReadOnlyMemory<byte> Payload { get; private set; }

    public override FrameType Type => FrameType.Chunk;

    /// <summary>True when this chunk carries a dependency clock (possibly empty).</summary>
    internal bool HasDeps => _deps is not null;

    /// <summary>The dependency entries (sorted by member, no zeros).</summary>
    internal ReadOnlySpan<ClockEntry> DepsSpan => _deps is { } d ? d.EntrySpan : default;

    /// <summary>The pool this chunk came from; null for chunks built with the public constructor.</summary>
    internal FramePool? Pool { get; }

    /// <summary>Bumped every time the chunk goes back to its pool: a queue entry that recorded another value is stale.</summary>
    internal int Generation { get; private set; }

    /// <summary>Engine side: the chunk is stored in its stream (owned by it until released).</summary>
    internal bool Held { get; set; }

    /// <summary>True while the chunk sits in its pool (a second return would hand it out twice).</summary>
    internal bool InPool { get; private set; }

    internal void Fill(MemberId origin, ulong seq, ChunkFlags flags, bool hasDeps, ReadOnlySpan<ClockEntry> deps, ReadOnlySpan<byte> payload)
    {
        Origin = origin;
        Seq = seq;
        Flags = flags;
        _deps = null;
        if (hasDeps)
        {
            // A scratch clock over an exact-length array that is reused while the group's size stays the same.
            var nonZero = 0;
            foreach (var e in deps)
            {
                nonZero += e.Value != 0 ? 1 : 0;
            }

            if (_depsEntries is null || _depsEntries.Length != nonZero)
            {
                _depsEntries = new ClockEntry[nonZero];
            }

            var k = 0;
            foreach (var e in deps)
            {
                if (e.Value != 0)
                {
                    _depsEntries[k++] = e; // zero entries are omitted, as in VectorClock
                }
            }

            _scratchDeps ??= VectorClock.CreateScratch();
            _scratchDeps.ResetScratch(_depsEntries);
            _deps = _scratchDeps;
        }

        if (_payloadBuffer is null || _payloadBuffer.Length < payload.Length)
        {
            _payloadBuffer = new byte[Math.Max(payload.Length, 128)];
        }

        payload.CopyTo(_payloadBuffer);
        Payload = new ReadOnlyMemory<byte>(_payloadBuffer, 0, payload.Length);
        InPool = false;
    }

    /// <summary>
    /// Pool side, for the chunk rented next: asks the processor to start loading its buffers (a hint, on x86 only). A
    /// chunk comes back to the pool long after it was filled, so its buffers are out of the cache when the decoder
    /// copies the next received chunk into them; loading them while the current chunk is decoded hides most of that.
    /// </summary>
    internal unsafe void Prefetch()
    {
        if (!Sse.IsSupported)
        {
            return;
        }

        // The addresses are only hints: a move by the garbage collector meanwhile makes one useless, never wrong.
        if (_payloadBuffer is { } payload)
        {
            var at = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(payload));
            Sse.Prefetch0(at);
            Sse.Prefetch0(at + 64);
        }

        if (_depsEntries is { Length: > 0 } deps)
        {
            var at = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(deps));
            for (var offset = 0; offset < deps.Length * sizeof(ClockEntry); offset += 64)
            {
                Sse.Prefetch0(at + offset);
            }
        }
    }

    /// <summary>Pool side: forget the message and invalidate every queue entry that still names this chunk.</summary>
    internal void Recycle()
    {
        Generation++;
        InPool = true;
        Held = false;
        _deps = null;
        Payload = default;
    }

    public bool Equals(ChunkFrame? other) =>
        other is not null && Origin == other.Origin && Seq == other.Seq && Flags == other.Flags
        && Equals(Deps, other.Deps) && Payload.Equals(other.Payload);

    public override int GetHashCode() => HashCode.Combine(Origin, Seq, Flags, Payload);

    public void Deconstruct(out MemberId Origin, out ulong Seq, out ChunkFlags Flags, out VectorClock? Deps, out ReadOnlyMemory<byte> Payload)
    {
        Origin = this.Origin;
        Seq = this.Seq;
        Flags = this.Flags;
        Deps = this.Deps;
        Payload = this.Payload;
    }

    public override string Describe() =>
        $"Chunk origin={Origin.ToString()[..6]} seq={Seq}{FlagText(Flags)}{(Deps is null ? "" : " deps=" + Deps)} len={Payload.Length}";

    internal static string FlagText(ChunkFlags f) => f switch
    {
        ChunkFlags.First | ChunkFlags.Last => "",
        ChunkFlags.First => " first",
        ChunkFlags.Last => " last",
        _ => " mid",
    };
}

/// <summary>One chunk of a private message in the (header.From to header.To) stream.</summary>
public sealed record PrivateChunkFrame(ulong Seq, ChunkFlags Flags, VectorClock? Deps, ReadOnlyMemory<byte> Payload) : Frame, IMessageChunk
{
    public override FrameType Type => FrameType.PrivateChunk;

    public override string Describe() =>
        $"Private seq={Seq}{ChunkFrame.FlagText(Flags)}{(Deps is null ? "" : " deps=" + Deps)} len={Payload.Length}";
}

/// <summary>
/// Cumulative acknowledgement: for each broadcast origin, the highest chunk sequence received without gaps
/// (<see cref="Received"/>, origin to count), and the highest private chunk received from header.To.
/// Doubles as the anti-entropy digest that lets members find and fill each other's gaps.
/// An ack decoded with a <see cref="FramePool"/> (or built by the engine to send) is reused with its clock: it is valid
/// only until the next decode with that pool (or the next poll): read it, never keep it or its clock.
/// </summary>
public sealed record AckFrame : Frame
{
    public AckFrame(VectorClock Received, ulong PrivateReceived)
    {
        this.Received = Received;
        this.PrivateReceived = PrivateReceived;
    }

    public VectorClock Received { get; private set; }

    public ulong PrivateReceived { get; private set; }

    public override FrameType Type => FrameType.Ack;

    /// <summary>Reusable instances only (their clock is a scratch clock of the same owner).</summary>
    internal void Reset(ulong privateReceived) => PrivateReceived = privateReceived;

    public bool Equals(AckFrame? other) => other is not null && Received.Equals(other.Received) && PrivateReceived == other.PrivateReceived;

    public override int GetHashCode() => HashCode.Combine(Received, PrivateReceived);

    public void Deconstruct(out VectorClock Received, out ulong PrivateReceived)
    {
        Received = this.Received;
        PrivateReceived = this.PrivateReceived;
    }

    public override string Describe() => $"Ack recv={Received} priv={PrivateReceived}";
}

/// <summary>Negative ack: the receiver lacks these chunks of a stream and asks the addressee to resend them.</summary>
public sealed record NackFrame(StreamKind Stream, MemberId Origin, IReadOnlyList<SeqRange> Missing) : Frame
{
    public const int MaxRanges = 32;

    public override FrameType Type => FrameType.Nack;

    public override string Describe() =>
        $"Nack {(Stream == StreamKind.Broadcast ? "origin=" + Origin.ToString()[..6] : "private")} missing={string.Join(',', Missing)}";
}

/// <summary>
/// Member introduction. <see cref="BaseSeq"/> is the sender's own broadcast sequence at the moment it first
/// learned of the addressee: the addressee delivers exactly the sender's broadcasts after it.
/// <see cref="Known"/> lists the members the sender sees; <see cref="Departed"/> gives, for members that are no
/// longer in the sender's view, how much of their broadcast stream the sender delivered, so a newcomer can treat
/// dependencies on them as satisfied instead of waiting for messages it will never be sent.
/// <see cref="Seniority"/> is the sender's admission order (see <see cref="JoinAcceptFrame.Seniority"/>).
/// </summary>
public sealed record IntroFrame(bool ReplyRequested, string Name, IPEndPoint Endpoint, ulong BaseSeq, IReadOnlyList<MemberRecord> Known, VectorClock? Departed = null, ulong Seniority = 0) : Frame
{
    public const int MaxKnown = 16;

    /// <summary>At most this many departed members are listed (the most recent ones).</summary>
    public const int MaxDeparted = 16;

    public override FrameType Type => FrameType.Intro;

    public override string Describe() =>
        $"Intro{(ReplyRequested ? "?" : "")} name={Name} base={BaseSeq} known={Known.Count}{(Departed is { Count: > 0 } d ? " departed=" + d : "")} seniority={Seniority}";
}

public sealed record PingFrame(ulong Token) : Frame
{
    public override FrameType Type => FrameType.Ping;

    public override string Describe() => $"Ping {Token}";
}

/// <summary>
/// The answer to a <see cref="PingFrame"/>: its token, and how long the answerer held the answer back to send it with
/// other frames (<see cref="HeldMicroseconds"/>), which the pinger takes off its round-trip sample.
/// </summary>
public sealed record PongFrame(ulong Token, ulong HeldMicroseconds = 0) : Frame
{
    public override FrameType Type => FrameType.Pong;

    public override string Describe() => HeldMicroseconds == 0 ? $"Pong {Token}" : $"Pong {Token} held={HeldMicroseconds}us";
}

/// <summary>Graceful leave: the sender's broadcast stream ends at <see cref="FinalSeq"/>.</summary>
public sealed record LeaveFrame(ulong FinalSeq) : Frame
{
    public override FrameType Type => FrameType.Leave;

    public override string Describe() => $"Leave final={FinalSeq}";
}

/// <summary>
/// Member to a member its group declared down (header <c>to</c> = that incarnation): "my group removed you".
/// <see cref="ViewSize"/> and the most senior member of the sender's view (<see cref="SeniorSeniority"/>,
/// <see cref="SeniorId"/>) let two sides that removed each other (a healed partition) agree which one rejoins the
/// other: the smaller group, or on a tie the one whose most senior member is less senior.
/// </summary>
public sealed record EvictedFrame(byte ViewSize, ulong SeniorSeniority, MemberId SeniorId) : Frame
{
    public override FrameType Type => FrameType.Evicted;

    public override string Describe() => $"Evicted view={ViewSize} senior={SeniorSeniority}/{SeniorId.ToString()[..6]}";
}

/// <summary>Newcomer to discovery server: admit me under this name (header.From is my new incarnation id).</summary>
public sealed record JoinRequestFrame(string Name) : Frame
{
    public override FrameType Type => FrameType.JoinRequest;

    public override string Describe() => $"JoinRequest name={Name}";
}

/// <summary>
/// Server (or coordinator) to newcomer: you are admitted; this is how I see you and who is already in the group.
/// <see cref="Seniority"/> is the newcomer's admission order: one more than the largest the admitter knows of, so a
/// newcomer never ranks before the members that admitted it (the coordinator is the most senior member).
/// </summary>
public sealed record JoinAcceptFrame(IPEndPoint ObservedEndpoint, IReadOnlyList<MemberRecord> Members, ulong Seniority = 0) : Frame
{
    public const int MaxMembers = 16;

    public override FrameType Type => FrameType.JoinAccept;

    public override string Describe() => $"JoinAccept you={ObservedEndpoint} members={string.Join(',', Members.Select(m => m.Name))} seniority={Seniority}";
}

public sealed record JoinDenyFrame(DenyReason Reason, string Message) : Frame
{
    public override FrameType Type => FrameType.JoinDeny;

    public override string Describe() => $"JoinDeny {Reason}: {Message}";
}

/// <summary>Member to discovery server: I am still here (renews my slot); <see cref="View"/> is who I see; <see cref="Seniority"/> is my admission order.</summary>
public sealed record LeaseFrame(string Name, IReadOnlyList<MemberRecord> View, ulong Seniority = 0) : Frame
{
    public override FrameType Type => FrameType.Lease;

    public override string Describe() => $"Lease name={Name} view={View.Count}";
}

/// <summary>
/// Member to the group's admission coordinator: a newcomer asked me to join (the discovery server is not
/// involved). The coordinator answers the newcomer directly with <see cref="JoinAcceptFrame"/> or <see cref="JoinDenyFrame"/>.
/// </summary>
public sealed record JoinForwardFrame(MemberId Newcomer, string Name, IPEndPoint Endpoint) : Frame
{
    public override FrameType Type => FrameType.JoinForward;

    public override string Describe() => $"JoinForward newcomer={Newcomer.ToString()[..6]} name={Name} at={Endpoint}";
}
