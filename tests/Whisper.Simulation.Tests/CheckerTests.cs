using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// The checkers against hand-written histories: a correct history passes, and each deliberately injected fault
/// (duplicate, misorder, gap, misdelivery, loss, corruption, false suspicion) is reported by the right checker.
/// </summary>
public sealed class CheckerTests
{
    [Fact]
    public void CorrectHistoryWithCausalChainsAndPrivateBurstsPassesEveryChecker()
    {
        var h = new SyntheticHistory(3);
        var b0 = h.Broadcast(0, 0);
        h.Deliver(1, b0);
        var b1 = h.Broadcast(1, 0); // a reply to b0
        var p0 = h.Private(0, 1, 2);
        var p1 = h.Private(0, 2, 2);
        h.Deliver(2, b0);
        h.DeliverPrivate(2, p0);
        h.Deliver(0, b1);
        h.Deliver(2, b1);
        h.DeliverPrivate(2, p1);
        h.FinalViews();

        Assert.Empty(Checkers.CheckAll(h.History));
    }

    [Fact]
    public void ConcurrentBroadcastsMayBeDeliveredInDifferentOrders()
    {
        var h = new SyntheticHistory(4);
        var a = h.Broadcast(0, 0);
        var b = h.Broadcast(1, 0);
        h.Deliver(2, b);
        h.Deliver(2, a);
        h.Deliver(3, a);
        h.Deliver(3, b);
        h.Deliver(0, b);
        h.Deliver(1, a);
        h.FinalViews();

        Assert.Empty(Checkers.CheckAll(h.History));
    }

    [Fact]
    public void ExactlyOnceDetectsADuplicateDelivery()
    {
        var h = new SyntheticHistory(2);
        var b = h.Broadcast(0, 0);
        h.Deliver(1, b);
        h.Deliver(1, b);

        var v = Assert.Single(Checkers.ExactlyOnce(h.History));
        Assert.Equal(Invariants.ExactlyOnce, v.Invariant);
        Assert.Contains("n1 delivered n0#0 twice", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void CausalOrderDetectsAReplyDeliveredBeforeTheMessageItAnswers()
    {
        var h = new SyntheticHistory(3);
        var question = h.Broadcast(0, 0);
        h.Deliver(1, question);
        var answer = h.Broadcast(1, 0);
        h.Deliver(2, answer);
        h.Deliver(2, question);

        var v = Assert.Single(Checkers.CausalOrder(h.History));
        Assert.Contains("n2 delivered broadcast n1#0", v.Detail, StringComparison.Ordinal);
        Assert.Contains("before broadcast n0#0", v.Detail, StringComparison.Ordinal);
        Assert.Contains("n1 had delivered", v.Detail, StringComparison.Ordinal);
        Assert.Contains("only later", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void CausalOrderFollowsChainsThroughSeveralNodes()
    {
        var h = new SyntheticHistory(4);
        var b0 = h.Broadcast(0, 0);
        h.Deliver(1, b0);
        var b1 = h.Broadcast(1, 0);
        h.Deliver(2, b0);
        h.Deliver(2, b1);
        var b2 = h.Broadcast(2, 0);
        h.Deliver(3, b1); // n3 never delivers b0, yet delivers b1 and b2, which both follow it
        h.Deliver(3, b2);

        var found = Checkers.CausalOrder(h.History);
        Assert.Equal(2, found.Count);
        Assert.All(found, v => Assert.Contains("before broadcast n0#0", v.Detail, StringComparison.Ordinal));
        Assert.Contains(found, v => v.Detail.Contains("broadcast n2#0", StringComparison.Ordinal) && v.Detail.Contains("never delivered", StringComparison.Ordinal));
    }

    [Fact]
    public void CausalOrderCountsASendersOwnEarlierBroadcasts()
    {
        var h = new SyntheticHistory(2);
        var first = h.Broadcast(0, 0);
        var second = h.Broadcast(0, 1);
        h.Deliver(1, second);
        h.Deliver(1, first);

        Assert.Single(Checkers.CausalOrder(h.History));
    }

    [Fact]
    public void CausalOrderDetectsAPrivateMessageDeliveredBeforeABroadcastItsSenderHadSeen()
    {
        var h = new SyntheticHistory(3);
        var news = h.Broadcast(0, 0);
        h.Deliver(1, news);
        var whisper = h.Private(1, 1, 2);
        h.DeliverPrivate(2, whisper);
        h.Deliver(2, news);

        var v = Assert.Single(Checkers.CausalOrder(h.History));
        Assert.Contains("private n1#1->n2", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void PrivatePredecessorsOfABroadcastAreRequiredOnlyWhenAskedFor()
    {
        var h = new SyntheticHistory(2);
        var whisper = h.Private(0, 0, 1);
        var news = h.Broadcast(0, 1);
        h.Deliver(1, news);
        h.DeliverPrivate(1, whisper);

        Assert.Empty(Checkers.CausalOrder(h.History));
        var v = Assert.Single(Checkers.CausalOrder(h.History, includePrivatePredecessors: true));
        Assert.Contains("before private n0#0->n1", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void ViolationNamesTheInstantAndTheNodesInvolved()
    {
        var h = new SyntheticHistory(3);
        var question = h.Broadcast(0, 0);
        h.Deliver(1, question);
        var answer = h.Broadcast(1, 0);
        h.Deliver(2, answer);

        var v = Assert.Single(Checkers.CausalOrder(h.History));
        Assert.Equal(2, v.Node);
        Assert.Equal(0, v.Peer);
        Assert.Equal(h.History.Events[^1].At, v.At);
    }

    [Fact]
    public void CausalOrderDoesNotRequireBroadcastsSentBeforeTheNodeJoined()
    {
        var h = new SyntheticHistory(3, allJoined: false);
        h.Join(0);
        h.Join(1);
        var early = h.Broadcast(0, 0);
        h.Deliver(1, early);
        h.Join(2);
        var late = h.Broadcast(1, 0);
        h.Deliver(0, late);
        h.Deliver(2, late);
        h.FinalViews();

        Assert.Empty(Checkers.CheckAll(h.History));
    }

    [Fact]
    public void FifoDetectsPrivateMessagesDeliveredOutOfSendOrder()
    {
        var h = new SyntheticHistory(2);
        var p0 = h.Private(0, 0, 1);
        var p1 = h.Private(0, 1, 1);
        h.DeliverPrivate(1, p1);
        h.DeliverPrivate(1, p0);

        var found = Checkers.FifoPrivate(h.History);
        Assert.NotEmpty(found);
        Assert.Contains("n1 delivered n0#1 from n0", found[0].Detail, StringComparison.Ordinal);
        Assert.Contains("before n0#0", found[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void FifoDetectsAGapEvenWhenTheSenderCrashed()
    {
        var h = new SyntheticHistory(2);
        h.Private(0, 0, 1);
        var p1 = h.Private(0, 1, 1);
        h.Crash(0);
        h.DeliverPrivate(1, p1);

        Assert.Single(Checkers.FifoPrivate(h.History));
    }

    [Fact]
    public void FifoAcceptsAPrefixOfTheStream()
    {
        var h = new SyntheticHistory(2);
        var p0 = h.Private(0, 0, 1);
        h.Private(0, 1, 1);
        h.Crash(0);
        h.DeliverPrivate(1, p0);

        Assert.Empty(Checkers.FifoPrivate(h.History));
    }

    [Fact]
    public void PrivateMessageDeliveredAtAThirdNodeIsReported()
    {
        var h = new SyntheticHistory(3);
        var p = h.Private(0, 0, 1);
        h.DeliverPrivate(1, p);
        h.DeliverPrivate(2, p);

        var v = Assert.Single(Checkers.PrivateOnlyAtRecipient(h.History));
        Assert.Contains("n2 delivered private n0#0->n1", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void AgreementRequiresEveryLiveMemberToDeliverWhatOneLiveMemberDeliveredFromACrashedSender()
    {
        var h = new SyntheticHistory(4);
        var b = h.Broadcast(0, 0);
        h.Crash(0);
        h.Deliver(1, b);
        h.Deliver(2, b);

        var v = Assert.Single(Checkers.AgreementAndNoLoss(h.History));
        Assert.Equal(Invariants.Agreement, v.Invariant);
        Assert.Contains("live n3 never delivered broadcast n0#0", v.Detail, StringComparison.Ordinal);
        Assert.Contains("n1,n2", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void BroadcastOfACrashedSenderThatNoLiveMemberDeliveredIsOwedToNobody()
    {
        var h = new SyntheticHistory(3);
        h.Broadcast(0, 0);
        h.Crash(0);

        Assert.Empty(Checkers.Outstanding(h.History));
    }

    [Fact]
    public void NoLossRequiresEveryBroadcastOfALiveSenderAtEveryLiveMember()
    {
        var h = new SyntheticHistory(3);
        var b = h.Broadcast(0, 0);
        h.Deliver(1, b);
        h.Crash(1);

        var owed = Checkers.Outstanding(h.History);
        var o = Assert.Single(owed);
        Assert.Equal(2, o.Node);
        Assert.Equal(Invariants.NoLossAfterHeal, o.Invariant);
    }

    [Fact]
    public void NoLossRequiresPrivateMessagesBetweenLiveNodesOnly()
    {
        var h = new SyntheticHistory(3);
        h.Private(0, 0, 1);
        h.Private(0, 1, 2);
        h.Crash(2);

        var o = Assert.Single(Checkers.Outstanding(h.History));
        Assert.Equal(new MessageKey(0, 0), o.Message.Key);
    }

    [Fact]
    public void IntegrityReportsDeliveriesOfMessagesNeverSent()
    {
        var h = new SyntheticHistory(2);
        h.Deliver(1, new MessageKey(0, 9));

        var v = Assert.Single(Checkers.Integrity(h.History));
        Assert.Contains("never sent", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void IntegrityReportsACorruptedPayloadOrAWrongSender()
    {
        var h = new History(History.DefaultNames(3));
        var key = new MessageKey(0, 0);
        h.RecordSend(0, TimeSpan.Zero, key, MessageKind.Broadcast, -1, 100);
        var payload = TestPayload.Create(key, MessageKind.Broadcast, -1, 100);
        var good = Message(payload, "n0");
        h.RecordDelivery(1, TimeSpan.FromMilliseconds(1), good);
        Assert.Empty(Checkers.Integrity(h));

        var corrupted = (byte[])payload.Clone();
        corrupted[90] ^= 0x20;
        h.RecordDelivery(2, TimeSpan.FromMilliseconds(2), Message(corrupted, "n0"));
        h.RecordDelivery(2, TimeSpan.FromMilliseconds(3), Message(payload, "n1"));

        var found = Checkers.Integrity(h);
        Assert.Equal(2, found.Count);
        Assert.Contains(found, v => v.Detail.Contains("differs", StringComparison.Ordinal));
        Assert.Contains(found, v => v.Detail.Contains("from n1 but sent by n0", StringComparison.Ordinal));
    }

    [Fact]
    public void FalseDownIsReportedOnlyForMembersThatWereRunning()
    {
        var h = new SyntheticHistory(3);
        h.Crash(2);
        h.Status(0, 2, MemberStatus.Down);
        Assert.Empty(Checkers.FalseDown(h.History));

        h.Status(0, 1, MemberStatus.Down);
        var v = Assert.Single(Checkers.FalseDown(h.History));
        Assert.Contains("n0 declared n1 Down", v.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void ViewsConvergeDetectsUnresolvedSuspicionAndACrashedMemberStillUp()
    {
        var h = new SyntheticHistory(3);
        h.Crash(2);
        h.FinalViews((n, s) => n == 0 && s == 1 ? MemberStatus.Suspect : s == 2 ? (n == 1 ? MemberStatus.Up : MemberStatus.Down) : MemberStatus.Up);

        var found = Checkers.ViewsConverge(h.History);
        Assert.Equal(2, found.Count);
        Assert.Contains(found, v => v.Detail == "n0 sees live n1 as Suspect");
        Assert.Contains(found, v => v.Detail == "n1 sees crashed n2 as Up");
    }

    private static DeliveredMessage Message(byte[] payload, string from) =>
        new(new MessageId(MessageKind.Broadcast, new MemberId(1), MemberId.None, 1), new MemberRef(from, new MemberId(1)), null, payload, VectorClock.Empty);

    [Fact]
    public void HistoryRefusesTheSameKeyTwice()
    {
        var h = new History(History.DefaultNames(1));
        h.RecordSend(0, TimeSpan.Zero, new MessageKey(0, 0), MessageKind.Broadcast, -1, 10);
        Assert.Throws<InvalidOperationException>(() => h.RecordSend(0, TimeSpan.Zero, new MessageKey(0, 0), MessageKind.Broadcast, -1, 10));
    }
}
