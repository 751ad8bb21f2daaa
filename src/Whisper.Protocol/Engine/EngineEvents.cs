using System.Globalization;
using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Engine;

public enum MessageKind
{
    Broadcast,
    Private,
}

/// <summary>What a member's status looks like to this node.</summary>
public enum MemberStatus
{
    Up,
    Suspect,
    Down,
    Left,
}

/// <summary>
/// Identity of a message: its kind, its origin, for private messages its recipient, and the sequence of
/// its first chunk in the origin's stream. Unique for the lifetime of the origin's incarnation.
/// </summary>
public readonly record struct MessageId(MessageKind Kind, MemberId Origin, MemberId Recipient, ulong Seq)
{
    public override string ToString() => Kind == MessageKind.Broadcast
        ? string.Create(CultureInfo.InvariantCulture, $"b:{Origin}:{Seq}")
        : string.Create(CultureInfo.InvariantCulture, $"p:{Origin}>{Recipient}:{Seq}");
}

/// <summary>A message delivered to the application. <see cref="Payload"/> is immutable and owned by the receiver.</summary>
public sealed record DeliveredMessage(MessageId Id, MemberRef From, MemberRef? To, byte[] Payload, VectorClock Deps)
{
    public MessageKind Kind => Id.Kind;
}

/// <summary>Outputs of the engine for the application, drained with <see cref="WhisperEngine.TryPollEvent"/>.</summary>
public abstract record EngineEvent;

/// <summary>This node is a member; <see cref="Members"/> includes itself.</summary>
public sealed record JoinedEvent(MemberRef Self, IReadOnlyList<MemberRef> Members) : EngineEvent;

/// <summary>The join was refused or nobody answered; the engine is finished.</summary>
public sealed record DeniedEvent(DenyReason Reason, string Message) : EngineEvent;

public sealed record MessageEvent(DeliveredMessage Message) : EngineEvent;

public sealed record MemberStatusEvent(MemberRef Member, MemberStatus Status) : EngineEvent;

/// <summary>This node's graceful leave has finished; the adapter may close its socket.</summary>
public sealed record LeftEvent : EngineEvent;

/// <summary>
/// The group declared this incarnation down (it was paused, cut off, or on the smaller side of a healed partition)
/// and this node found out; the engine is finished. The application should join again as a new incarnation
/// (same name, new id) through <see cref="Contact"/>, a member of the group that removed it, naming
/// <see cref="Fallbacks"/> (the last addresses of other members of that group) for when the contact stops answering.
/// </summary>
public sealed record EvictedEvent(System.Net.IPEndPoint Contact, string Reason, IReadOnlyList<System.Net.IPEndPoint> Fallbacks) : EngineEvent
{
    public EvictedEvent(System.Net.IPEndPoint contact, string reason)
        : this(contact, reason, [])
    {
    }
}

/// <summary>Result of a send command.</summary>
public enum SendStatus
{
    Accepted,

    /// <summary>Flow control: too much is in flight. Try again after the engine has processed more input.</summary>
    WindowFull,

    TooLarge,
    NotJoined,
    UnknownRecipient,
}

public readonly record struct SendResult(SendStatus Status, MessageId Id)
{
    public bool IsAccepted => Status == SendStatus.Accepted;
}

/// <summary>A member as this node currently sees it.</summary>
public sealed record MemberSnapshot(MemberRef Member, MemberStatus Status, bool IsSelf, System.Net.IPEndPoint? Endpoint, TimeSpan? SmoothedRtt);

public enum EngineState
{
    Idle,
    Joining,
    Joined,
    Leaving,
    Left,
    Denied,

    /// <summary>The group removed this incarnation (see <see cref="EvictedEvent"/>); the engine is finished.</summary>
    Evicted,
}

/// <summary>Counters for diagnostics, the status bar and benchmarks. Mutable only by the engine.</summary>
public sealed class EngineStats
{
    public long DatagramsSent { get; internal set; }

    /// <summary>The part of <see cref="DatagramsSent"/> that carried no chunk: acks, nacks, pings, membership and admission only.</summary>
    public long ControlDatagramsSent { get; internal set; }
    public long EvictionNoticesSent { get; internal set; }

    /// <summary>Times this engine got no input for longer than the suspect timeout (its process was frozen).</summary>
    public long Stalls { get; internal set; }

    /// <summary>"Name taken" answers a rejoining node waited out (the holder was its previous incarnation).</summary>
    public long RejoinNameWaits { get; internal set; }

    /// <summary>Times this node, resuming from a stall, held deliveries and sends until its members answered.</summary>
    public long Quarantines { get; internal set; }
    public long DownProbesSent { get; internal set; }
    public long BytesSent { get; internal set; }
    public long DatagramsReceived { get; internal set; }
    public long MalformedDropped { get; internal set; }
    public long ForeignDropped { get; internal set; }
    public long ChunksSent { get; internal set; }
    public long ChunksRetransmitted { get; internal set; }

    /// <summary>The part of <see cref="ChunksRetransmitted"/> resent because a retransmission timer expired (the rest answered nacks).</summary>
    public long ChunksRetransmittedOnTimeout { get; internal set; }
    public long ChunksRelayed { get; internal set; }

    /// <summary>Second copies of datagrams sent to a lightly used peer over a lossy link (<see cref="EngineOptions.RedundantSendAboveLoss"/>).</summary>
    public long RedundantDatagrams { get; internal set; }
    public long DuplicateChunks { get; internal set; }
    public long OutOfWindowChunks { get; internal set; }
    public long NacksSent { get; internal set; }
    public long AcksSent { get; internal set; }
    public long BroadcastsDelivered { get; internal set; }
    public long PrivatesDelivered { get; internal set; }

    /// <summary>Messages complete but waiting for causal predecessors right now.</summary>
    public int HeldBack { get; internal set; }

    /// <summary>Chunks kept for retransmission or relay right now (own and others').</summary>
    public int StoredChunks { get; internal set; }

    /// <summary>Released chunks kept for reuse (as of the last stability update): what the last 10 s needed, at most <see cref="Wire.FramePool.DefaultMaxPooled"/>.</summary>
    public int PooledChunks { get; internal set; }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"sent={DatagramsSent} recv={DatagramsReceived} malformed={MalformedDropped} foreign={ForeignDropped} chunks={ChunksSent} retx={ChunksRetransmitted} retx_timer={ChunksRetransmittedOnTimeout} relay={ChunksRelayed} redundant={RedundantDatagrams} dup={DuplicateChunks} nacks={NacksSent} acks={AcksSent} held={HeldBack} stored={StoredChunks}");
}

/// <summary>
/// A delivered message as a view into the engine's own buffers, from <see cref="WhisperEngine.TryPollOutput"/>: no
/// allocation. <see cref="Payload"/> and <see cref="Deps"/> are valid only until the next call into the engine; copy
/// what must outlive it.
/// </summary>
public readonly ref struct DeliveryView
{
    public DeliveryView(MessageId id, MemberRef from, MemberRef? to, ReadOnlySpan<byte> payload, ReadOnlySpan<ClockEntry> deps)
    {
        Id = id;
        From = from;
        To = to;
        Payload = payload;
        Deps = deps;
    }

    public MessageId Id { get; }

    public MessageKind Kind => Id.Kind;

    public MemberRef From { get; }

    /// <summary>The recipient of a private message (this node); null for broadcasts.</summary>
    public MemberRef? To { get; }

    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>The message's dependency clock entries (sorted by member, no zeros).</summary>
    public ReadOnlySpan<ClockEntry> Deps { get; }
}
