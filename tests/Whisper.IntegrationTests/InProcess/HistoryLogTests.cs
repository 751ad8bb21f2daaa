using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Xunit;

namespace Whisper.IntegrationTests.InProcess;

/// <summary>
/// What a node has shown, so a broadcast that reaches it twice (live and in a history or late batch) is shown once.
/// Live broadcasts are remembered as one run of sequence numbers per origin and incarnation of this node.
/// </summary>
public sealed class HistoryLogTests
{
    private static readonly MemberId Alice = new(0xA11CE);
    private static readonly MemberId Bob = new(0xB0B);

    private static MessageId Broadcast(MemberId origin, ulong seq) => new(MessageKind.Broadcast, origin, MemberId.None, seq);

    [Fact]
    public void A_broadcast_seen_live_is_not_shown_again_from_a_batch_even_twenty_thousand_messages_later()
    {
        var log = new HistoryLog(200);
        for (ulong seq = 1; seq <= 20_000; seq += 2) // multi-chunk messages: first seqs are not contiguous
        {
            Assert.True(log.FirstSightingLive(Broadcast(Alice, seq)));
        }

        Assert.False(log.FirstSighting(Broadcast(Alice, 1)));
        Assert.False(log.FirstSighting(Broadcast(Alice, 19_999)));
        Assert.True(log.FirstSighting(Broadcast(Alice, 20_001))); // not delivered yet: new
        Assert.True(log.FirstSighting(Broadcast(Bob, 1))); // another origin
    }

    [Fact]
    public void A_broadcast_shown_from_a_batch_first_is_not_shown_again_when_it_arrives_live()
    {
        var log = new HistoryLog(200);
        Assert.True(log.FirstSighting(Broadcast(Alice, 7)));
        Assert.False(log.FirstSighting(Broadcast(Alice, 7)));

        Assert.False(log.FirstSightingLive(Broadcast(Alice, 7)));
        Assert.True(log.FirstSightingLive(Broadcast(Alice, 8)));
    }

    [Fact]
    public void After_a_new_incarnation_what_was_said_in_between_is_shown_from_history_and_what_was_seen_stays_seen()
    {
        var log = new HistoryLog(200);
        for (ulong seq = 1; seq <= 5; seq++)
        {
            Assert.True(log.FirstSightingLive(Broadcast(Alice, seq)));
        }

        log.NewIncarnation(); // evicted and back: the new engine's stream of Alice starts later
        Assert.True(log.FirstSightingLive(Broadcast(Alice, 20)));
        Assert.True(log.FirstSightingLive(Broadcast(Alice, 21)));

        Assert.True(log.FirstSighting(Broadcast(Alice, 10))); // said while this node was away
        Assert.False(log.FirstSighting(Broadcast(Alice, 3))); // seen by the earlier incarnation
        Assert.False(log.FirstSighting(Broadcast(Alice, 21))); // seen by this one
    }

    [Fact]
    public void Private_ids_are_remembered_one_by_one()
    {
        var log = new HistoryLog(200);
        var id = new MessageId(MessageKind.Private, Alice, Bob, 3);
        Assert.True(log.FirstSightingLive(id));
        Assert.False(log.FirstSighting(id));
    }
}
