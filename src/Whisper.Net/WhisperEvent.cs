using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Net;

/// <summary>What a <see cref="WhisperNode"/> reports to the application through <see cref="WhisperNode.Events"/>.</summary>
public abstract record WhisperEvent;

/// <summary>
/// A delivered message. Broadcasts arrive exactly once, in causal order (after everything their sender had
/// delivered when sending), including this node's own; private messages arrive exactly once, in the order
/// their sender sent them, at their recipient only.
/// </summary>
/// <param name="Id">Unique identity: kind, origin incarnation, (recipient,) and sequence.</param>
/// <param name="Kind">Broadcast or private.</param>
/// <param name="From">The sender's name.</param>
/// <param name="To">The recipient's name for private messages; null for broadcasts.</param>
/// <param name="Text">The message text (invalid UTF-8 from a peer shows as U+FFFD).</param>
/// <param name="Deps">The causal dependencies of the message (chunk counts per origin incarnation).</param>
/// <param name="ReceivedAt">When this node delivered it (wall clock of the node's <see cref="TimeProvider"/>); for history and late messages, when the member that handed it over had delivered it.</param>
/// <param name="Arrival">Live, or handed over as history (said before this incarnation joined) or as late (said on the other side of a split); those carry no dependency clock.</param>
public sealed record ChatMessage(
    MessageId Id,
    MessageKind Kind,
    string From,
    string? To,
    string Text,
    VectorClock Deps,
    DateTimeOffset ReceivedAt,
    Arrival Arrival = Arrival.Live) : WhisperEvent;

/// <summary>A member's status changed as this node sees it.</summary>
public sealed record MemberChanged(MemberRef Member, MemberStatus Status) : WhisperEvent
{
    public string Name => Member.Name;
}

/// <summary>
/// The group declared this node down while it was alive (it was paused or cut off, or was on the smaller side of a
/// partition that healed) and told it so. With <see cref="WhisperNodeOptions.AutoRejoin"/> the node joins again
/// at once as a new incarnation; messages of <paramref name="Previous"/> keep its id.
/// </summary>
public sealed record Evicted(MemberRef Previous, string Reason, bool Rejoining) : WhisperEvent;

/// <summary>After <see cref="Evicted"/>: this node is a member again as the new incarnation <paramref name="Self"/>.</summary>
public sealed record Rejoined(MemberRef Self, IReadOnlyList<MemberRef> Members) : WhisperEvent;

/// <summary>After <see cref="Evicted"/>: the group refused the new incarnation (for instance full meanwhile); the node stops.</summary>
public sealed record RejoinFailed(Whisper.Protocol.Wire.DenyReason Reason, string Message) : WhisperEvent;


/// <summary>
/// A delivered message handed to <see cref="WhisperNodeOptions.DeliveryHandler"/>: the same facts as
/// <see cref="ChatMessage"/>, but the text stays UTF-8 bytes in the node's own buffers, so delivering it allocates
/// nothing. Valid only during the handler call: copy (or decode) what must outlive it.
/// </summary>
public readonly ref struct WhisperDelivery
{
    public WhisperDelivery(MessageId id, string from, string? to, ReadOnlySpan<byte> utf8Text, ReadOnlySpan<ClockEntry> deps, DateTimeOffset receivedAt, Arrival arrival)
    {
        Id = id;
        From = from;
        To = to;
        Utf8Text = utf8Text;
        Deps = deps;
        ReceivedAt = receivedAt;
        Arrival = arrival;
    }

    /// <summary>Unique identity: kind, origin incarnation, (recipient,) and sequence.</summary>
    public MessageId Id { get; }

    public MessageKind Kind => Id.Kind;

    /// <summary>The sender's name.</summary>
    public string From { get; }

    /// <summary>The recipient's name for private messages; null for broadcasts.</summary>
    public string? To { get; }

    /// <summary>The message text as the sender's UTF-8 bytes (not validated: decode with replacement, as <see cref="ChatMessage.Text"/> does).</summary>
    public ReadOnlySpan<byte> Utf8Text { get; }

    /// <summary>The causal dependencies (chunk counts per origin incarnation, sorted by member); empty for history and late messages.</summary>
    public ReadOnlySpan<ClockEntry> Deps { get; }

    /// <summary>As <see cref="ChatMessage.ReceivedAt"/>.</summary>
    public DateTimeOffset ReceivedAt { get; }

    /// <summary>As <see cref="ChatMessage.Arrival"/>.</summary>
    public Arrival Arrival { get; }
}

/// <summary>Receives each delivered message on the node's driver thread (see <see cref="WhisperNodeOptions.DeliveryHandler"/>).</summary>
public delegate void WhisperDeliveryHandler(in WhisperDelivery delivery);
