using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Cli.Demo;

/// <summary>
/// One incarnation of a demo member. It is "live" for a message when it became a member before the message was
/// sent (<see cref="LiveFrom"/>: for the first incarnations, when the group had formed; for a restarted one, when
/// every live member listed it up) and it never crashed (<see cref="CrashedAt"/> is null).
/// </summary>
internal sealed record DemoIncarnation(string Name, MemberId Id, TimeSpan LiveFrom, TimeSpan? CrashedAt = null)
{
    public bool LiveFor(DemoSend send) => CrashedAt is null && LiveFrom <= send.SentAt;

    /// <summary>The name with the start of the incarnation id, e.g. <c>dave#3f2a</c>.</summary>
    public string Label => $"{Name}#{Id.ToString()[..4]}";
}

/// <summary>
/// A message the demo sent: <see cref="Index"/> numbers every send of the run in the order the senders' engines
/// accepted them (one send at a time per node), <see cref="ReplyTo"/> is the message it answers (the sender had
/// delivered it before sending), <see cref="SentAt"/> when the send was requested.
/// </summary>
internal sealed record DemoSend(int Index, MessageId Id, string From, string? To, TimeSpan SentAt, string Text, MessageId? ReplyTo = null)
{
    public bool IsBroadcast => Id.Kind == MessageKind.Broadcast;

    public override string ToString() => To is null ? $"{From}'s broadcast #{Index}" : $"{From}'s private #{Index} to {To}";
}

/// <summary>One delivery at one incarnation (a <see cref="ChatMessage"/> as its node reported it), in delivery order.</summary>
internal sealed record DemoDelivery(MemberId Receiver, MessageId Id, VectorClock Deps, Arrival Arrival, TimeSpan At);

/// <summary>Everything the verifier looks at: who was live when, what was sent, and what every incarnation delivered.</summary>
internal sealed record DemoLog(
    IReadOnlyList<DemoIncarnation> Incarnations,
    IReadOnlyList<DemoSend> Sends,
    IReadOnlyList<DemoDelivery> Deliveries,
    TimeSpan? ServerStoppedAt = null);

/// <summary>One line of the verification summary.</summary>
internal sealed record DemoCheck(string Name, bool Passed, string Detail);
