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
/// <param name="ReceivedAt">When this node delivered it (wall clock of the node's <see cref="TimeProvider"/>).</param>
public sealed record ChatMessage(
    MessageId Id,
    MessageKind Kind,
    string From,
    string? To,
    string Text,
    VectorClock Deps,
    DateTimeOffset ReceivedAt) : WhisperEvent;

/// <summary>A member's status changed as this node sees it.</summary>
public sealed record MemberChanged(MemberRef Member, MemberStatus Status) : WhisperEvent
{
    public string Name => Member.Name;
}
