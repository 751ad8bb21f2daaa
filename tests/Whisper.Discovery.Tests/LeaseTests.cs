using Whisper.Protocol;
using Whisper.Protocol.Wire;
using Xunit;
using static Whisper.Discovery.Tests.EngineHarness;

namespace Whisper.Discovery.Tests;

public sealed class LeaseTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    /// <summary>alice (id 1, port 5001) holds her name; at 1 s id 2 on port 5002 asks for it and the server pings her.</summary>
    private static PingFrame AliceHeldAndAskedForAtOneSecond(EngineHarness h)
    {
        h.Join(1, "alice", 5001);
        h.Now = S(1);
        return Assert.IsType<PingFrame>(Assert.Single(h.Send(2, 5002, new JoinRequestFrame("alice"))).Frame);
    }

    [Fact]
    public void AnAdmittedMembersLeaseRunsForTheLeaseTimeout()
    {
        var h = new EngineHarness();
        h.Now = S(1);

        h.Join(1, "alice", 5001);

        Assert.Equal(S(6), h.Engine.NextTimeout);
    }

    [Fact]
    public void HasNoTimeoutWithoutMembers()
    {
        var h = new EngineHarness();

        Assert.Null(h.Engine.NextTimeout);
        Assert.Empty(h.Tick(S(3))); // a spurious timeout is harmless
        Assert.Empty(h.Events);
    }

    [Fact]
    public void AnExpiredLeaseFreesTheSlotAndTheName()
    {
        var h = new EngineHarness(new DiscoveryOptions { MaxMembers = 2 });
        h.Join(1, "alice", 5001);
        h.Join(2, "bob", 5002);
        h.Now = S(4.9);
        Assert.Equal(DenyReason.Full, h.Join(3, "carol", 5003).Deny.Reason);
        var probe = Assert.Single(h.Send(4, 5004, new JoinRequestFrame("alice"))); // alice is silent: asked to prove she lives
        Assert.IsType<PingFrame>(probe.Frame);
        Assert.Equal(EngineHarness.Ep(5001), probe.To);

        h.Tick(S(5));

        Assert.Empty(h.Members);
        Assert.Equal(["alice", "bob"], h.Events.OfType<LeaseExpired>().Select(e => e.Member.Name));
        Assert.Equal("lease of alice at 127.0.0.1:5001 expired (1/2)", h.Events.OfType<LeaseExpired>().First().Describe(2));
        Assert.IsType<JoinAcceptFrame>(h.Join(4, "alice", 5004).Frame);
        Assert.IsType<JoinAcceptFrame>(h.Join(3, "carol", 5003).Frame);
    }

    [Fact]
    public void ANameHeldByASilentMemberGoesToANewIncarnationOnceTheHolderIsProvenDead()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        h.Now = S(1);

        var probe = Assert.Single(h.Send(2, 5002, new JoinRequestFrame("alice"))); // restarted on another port
        Assert.IsType<PingFrame>(probe.Frame);
        h.Now = S(1.3);
        Assert.All(h.Send(2, 5002, new JoinRequestFrame("alice")), r => Assert.IsType<PingFrame>(r.Frame)); // still probing
        h.Now = S(2.6);

        var answer = h.Join(2, "alice", 5002);

        Assert.IsType<JoinAcceptFrame>(answer.Frame);
        Assert.Equal([Record(2, "alice", 5002)], h.Members);
        Assert.Equal("alice", Assert.Single(h.Events.OfType<MemberProvenDead>()).Member.Name);
    }

    [Fact]
    public void ANameHeldByAMemberThatAnswersTheProbeStaysTaken()
    {
        var h = new EngineHarness();
        var ping = AliceHeldAndAskedForAtOneSecond(h);
        h.Now = S(1.1);

        h.Send(1, 5001, new PongFrame(ping.Token));
        var answer = h.Join(2, "alice", 5002);

        Assert.Equal(DenyReason.NameTaken, answer.Deny.Reason);
        Assert.Equal([Record(1, "alice", 5001)], h.Members);
    }

    [Fact]
    public void ALeaseTheCrashedHolderSentBeforeTheProbeBeganDoesNotKeepItsName()
    {
        var h = new EngineHarness();
        AliceHeldAndAskedForAtOneSecond(h); // restarted on another port
        h.Now = S(1.04);
        h.Lease(1, "alice", 5001); // its last lease, delayed 40 ms on the way: sent before the crash

        h.Now = S(1.3);
        Assert.All(h.Send(2, 5002, new JoinRequestFrame("alice")), r => Assert.IsType<PingFrame>(r.Frame)); // still probing
        h.Now = S(2.6);
        var answer = h.Join(2, "alice", 5002);

        Assert.IsType<JoinAcceptFrame>(answer.Frame);
        Assert.Equal([Record(2, "alice", 5002)], h.Members);
    }

    [Fact]
    public void APongToAPingFromBeforeTheProbeProvesNothing()
    {
        var h = new EngineHarness();
        AliceHeldAndAskedForAtOneSecond(h);
        h.Now = S(1.1);

        h.Send(1, 5001, new PongFrame((ulong)S(0.5).Ticks)); // a stale (or forged) answer
        h.Send(1, 5001, new PongFrame((ulong)S(9).Ticks)); // an answer to a ping not yet sent
        h.Now = S(2.6);
        var answer = h.Join(2, "alice", 5002);

        Assert.IsType<JoinAcceptFrame>(answer.Frame);
        Assert.Equal(2, h.Engine.Stats.IgnoredFrames);
    }

    [Fact]
    public void ALeaseArrivingWellAfterTheProbeBeganProvesTheHolderAlive()
    {
        var h = new EngineHarness();
        AliceHeldAndAskedForAtOneSecond(h);
        h.Now = S(1.5);

        h.Lease(1, "alice", 5001); // every pong lost, but the holder's next lease gets through
        var answer = h.Join(2, "alice", 5002);

        Assert.Equal(DenyReason.NameTaken, answer.Deny.Reason);
        Assert.Equal([Record(1, "alice", 5001)], h.Members);
    }

    [Fact]
    public void AHolderFoundAliveOnceIsAskedAgainNotDeclaredDeadWhenItsNameIsNextWanted()
    {
        var h = new EngineHarness(new DiscoveryOptions { LeaseTimeout = S(30) });
        var ping = AliceHeldAndAskedForAtOneSecond(h);
        h.Send(1, 5001, new PongFrame(ping.Token));
        Assert.Equal(DenyReason.NameTaken, h.Join(2, "alice", 5002).Deny.Reason);

        h.Now = S(10); // the holder's leases were lost for a while; someone else wants the name
        var again = Assert.Single(h.Send(3, 5003, new JoinRequestFrame("alice")));

        var ping2 = Assert.IsType<PingFrame>(again.Frame);
        Assert.Equal(Ep(5001), again.To);
        h.Now = S(10.1);
        h.Send(1, 5001, new PongFrame(ping2.Token));
        Assert.Equal(DenyReason.NameTaken, h.Join(3, "alice", 5003).Deny.Reason);
        Assert.Equal([Record(1, "alice", 5001)], h.Members);
    }

    [Fact]
    public void AnExpiredLeaseIsNoticedOnTheNextDatagramEvenWithoutATimeout()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        h.Now = S(7);

        var reply = h.Join(2, "alice", 5002);

        Assert.IsType<JoinAcceptFrame>(reply.Frame);
        Assert.Empty(reply.Accept.Members);
        Assert.Single(h.Events.OfType<LeaseExpired>());
    }

    [Fact]
    public void ALeaseRenewalKeepsTheSlotPastTheOriginalExpiry()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        h.Now = S(3);

        h.Lease(1, "alice", 5001);
        h.Tick(S(5));

        Assert.Single(h.Members);
        Assert.Equal(S(8), h.Engine.NextTimeout);
        h.Tick(S(8));
        Assert.Empty(h.Members);
        Assert.Equal(1, h.Engine.Stats.LeasesRenewed);
    }

    [Fact]
    public void ALeaveFreesTheSlotAtOnce()
    {
        var h = new EngineHarness();
        for (var i = 1; i <= 10; i++)
        {
            h.Join((ulong)i, $"n{i}", 5000 + i);
        }

        h.Leave(4, 5004);

        Assert.Equal(9, h.Members.Count);
        Assert.DoesNotContain(h.Members, m => m.Name == "n4");
        var left = Assert.Single(h.Events.OfType<MemberLeft>());
        Assert.Equal("n4 left (9/10)", left.Describe(10));
        Assert.IsType<JoinAcceptFrame>(h.Join(11, "n4", 5011).Frame);
    }

    [Fact]
    public void ALeaseOrRequestDelayedBehindALeaveDoesNotBringTheMemberBack()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        h.Leave(1, 5001);

        h.Lease(1, "alice", 5001);
        Assert.Empty(h.Send(1, 5001, new JoinRequestFrame("alice")));

        Assert.Empty(h.Members);
        Assert.Equal(2, h.Engine.Stats.StaleDropped);
    }

    [Fact]
    public void RelearnsTheSenderAndItsViewFromALeaseAfterARestart()
    {
        var h = new EngineHarness(); // a fresh engine: the server restarted and knows no one
        h.Now = S(100);
        var alice = Record(1, "alice", 5001);
        var bob = Record(2, "bob", 5002);
        var carol = Record(3, "carol", 5003);

        h.Lease(1, "alice", 5001, alice, bob, carol);

        Assert.Equal([alice, bob, carol], h.Members);
        Assert.Equal([new MemberId(1), new MemberId(1), new MemberId(1)], h.Events.OfType<MemberRelearned>().Select(e => e.Via));
        Assert.Equal(S(105), h.Engine.NextTimeout);

        var newcomer = h.JoinHeldName(4, "bob", 5004, holderId: 2, holderPort: 5002);
        Assert.Equal(DenyReason.NameTaken, newcomer.Deny.Reason);
        var dave = h.Join(5, "dave", 5005);
        Assert.Equal([alice, bob, carol], dave.Accept.Members);
    }

    [Fact]
    public void AfterARestartAMemberMissingFromTheFirstLeasesIsLearnedFromALaterLeasesView()
    {
        var h = new EngineHarness();
        h.Now = S(100);
        var alice = Record(1, "alice", 5001);
        var bob = Record(2, "bob", 5002);
        h.Lease(1, "alice", 5001, alice);
        h.Now = S(101);

        h.Lease(1, "alice", 5001, alice, bob); // bob finished joining after alice's first lease reached the new server

        Assert.Equal([alice, bob], h.Members);
    }

    [Fact]
    public void NumbersNewcomersAfterTheSeniorityItKnowsAndAfterWhatLeasesReport()
    {
        var h = new EngineHarness();
        Assert.Equal(1UL, h.Join(10, "amy", 5001).Accept.Seniority);
        Assert.Equal(2UL, h.Join(11, "bea", 5002).Accept.Seniority);
        Assert.Equal(2UL, h.Join(11, "bea", 5002).Accept.Seniority); // a retransmitted request keeps its number

        Assert.Empty(h.Send(10, 5001, new LeaseFrame("amy", [], Seniority: 7))); // admitted elsewhere with a later number

        Assert.Equal(8UL, h.Join(12, "cid", 5003).Accept.Seniority);
    }

    [Fact]
    public void RelearningAfterARestartRestoresTheCap()
    {
        var h = new EngineHarness();
        var view = Enumerable.Range(1, 10).Select(i => Record((ulong)i, $"n{i}", 5000 + i)).ToArray();

        h.Lease(1, "n1", 5001, view);

        Assert.Equal(10, h.Members.Count);
        Assert.Equal(DenyReason.Full, h.Join(11, "late", 5011).Deny.Reason);
    }

    [Fact]
    public void MembersLearnedFromAViewKeepTheirSlotOnlyByRenewingIt()
    {
        var h = new EngineHarness();
        h.Lease(1, "alice", 5001, Record(2, "bob", 5002));
        h.Now = S(4);

        h.Lease(1, "alice", 5001, Record(2, "bob", 5002)); // being seen by others is not a renewal
        h.Tick(S(5));

        Assert.Equal([Record(1, "alice", 5001)], h.Members);
        Assert.Equal("bob", Assert.Single(h.Events.OfType<LeaseExpired>()).Member.Name);
    }

    [Fact]
    public void AMemberThatALiveMemberNoLongerSeesAndThatStoppedRenewingIsFreedEarly()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        h.Join(2, "bob", 5002);
        h.Now = S(1);
        h.Lease(1, "alice", 5001, Record(2, "bob", 5002));
        h.Now = S(2.5);

        h.Lease(1, "alice", 5001); // alice reports bob gone; bob last renewed 2.5 s ago

        Assert.Equal([Record(1, "alice", 5001)], h.Members);
        Assert.Equal("bob", Assert.Single(h.Events.OfType<MemberReportedGone>()).Member.Name);
        Assert.IsType<JoinAcceptFrame>(h.Join(3, "bob", 5003).Frame);
    }

    [Fact]
    public void AMemberThatStillRenewsIsNotFreedByAnotherMembersView()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        h.Join(2, "bob", 5002);
        h.Now = S(1.5);
        h.Lease(1, "alice", 5001, Record(2, "bob", 5002));
        h.Now = S(2.5);
        h.Lease(2, "bob", 5002); // a partition: neither sees the other, but both renew their own leases
        h.Now = S(2.6);

        h.Lease(1, "alice", 5001);

        Assert.Equal(2, h.Members.Count);
        Assert.Empty(h.Events.OfType<MemberReportedGone>());
    }

    [Fact]
    public void AFreshlyStartedServerAnswersNoJoinUntilMembersHadTheChanceToReteachIt()
    {
        var engine = new DiscoveryEngine(new DiscoveryOptions { MaxMembers = 2, RelearnWindow = S(1.2) });
        var buffer = new byte[WireCodec.MaxDatagramSize];
        engine.OnTimeout(S(0));

        engine.OnDatagram(Ep(5003), EngineHarness.Datagram(3, new JoinRequestFrame("carol")), S(0.3));
        Assert.False(engine.TryPollTransmit(buffer, out _, out _));
        engine.OnDatagram(Ep(5001), EngineHarness.Datagram(1, new LeaseFrame("alice", [Record(2, "bob", 5002)])), S(1.0));
        engine.OnDatagram(Ep(5003), EngineHarness.Datagram(3, new JoinRequestFrame("carol")), S(1.3));

        Assert.True(engine.TryPollTransmit(buffer, out var length, out _));
        var frames = new List<Frame>();
        Assert.Equal(DecodeStatus.Ok, WireCodec.TryDecode(buffer.AsSpan(0, length), out _, frames));
        Assert.Equal(DenyReason.Full, Assert.IsType<JoinDenyFrame>(Assert.Single(frames)).Reason);
        Assert.Equal(1, engine.Stats.DeferredJoinRequests);
    }

    [Fact]
    public void DoesNotRelearnAMemberWhoseNameIsHeldByAnotherLiveMember()
    {
        var h = new EngineHarness();
        h.Join(1, "bob", 5001);

        h.Lease(2, "bob", 5002);

        Assert.Equal([Record(1, "bob", 5001)], h.Members);
        var refused = Assert.Single(h.Events.OfType<LeaseRefused>());
        Assert.Equal(DenyReason.NameTaken, refused.Reason);
    }

    [Fact]
    public void DoesNotRelearnBeyondTheCap()
    {
        var h = new EngineHarness(new DiscoveryOptions { MaxMembers = 2 });
        h.Lease(1, "a", 5001, Record(2, "b", 5002), Record(3, "c", 5003));

        Assert.Equal(["a", "b"], h.Members.Select(m => m.Name));
        Assert.Equal(DenyReason.Full, Assert.Single(h.Events.OfType<LeaseRefused>()).Reason);
    }

    [Fact]
    public void AStaleViewCannotResurrectAnExpiredMemberButItsOwnLeaseCan()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        h.Join(2, "bob", 5002);
        h.Now = S(4);
        h.Lease(1, "alice", 5001);
        h.Tick(S(5)); // bob's lease lapsed
        h.Now = S(5.5);

        h.Lease(3, "carol", 5003, Record(2, "bob", 5002)); // carol is unknown; her view still lists bob

        Assert.Equal(["alice", "carol"], h.Members.Select(m => m.Name));

        h.Lease(2, "bob", 5002); // bob was only slow: his own lease proves he is alive
        Assert.Equal(["alice", "carol", "bob"], h.Members.Select(m => m.Name));
    }

    [Fact]
    public void ALeaseFromANewSourceEndpointUpdatesWhereTheMemberIsAdvertised()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);

        h.Lease(1, "alice", 6001);

        Assert.Equal([Record(1, "alice", 6001)], h.Members);
        Assert.Equal([Record(1, "alice", 6001)], h.Join(2, "bob", 5002).Accept.Members);
    }

    [Fact]
    public void ALeaseUnderAnotherNameThanTheMembersIsDropped()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        h.Now = S(4);

        h.Lease(1, "mallory", 5001);
        h.Tick(S(5));

        Assert.Empty(h.Members);
        Assert.Equal(1, h.Engine.Stats.StaleDropped);
    }

    [Fact]
    public void TimeGoingBackwardsIsTreatedAsTheLatestTimeSeen()
    {
        var h = new EngineHarness();
        h.Now = S(10);
        h.Join(1, "alice", 5001);

        h.Tick(S(2));
        h.Now = S(3);
        h.Join(2, "bob", 5002);

        Assert.Equal(S(15), h.Engine.NextTimeout);
        Assert.Equal(2, h.Members.Count);
    }
}
