using Whisper.Protocol;
using Whisper.Protocol.Wire;
using Xunit;
using static Whisper.Discovery.Tests.EngineHarness;

namespace Whisper.Discovery.Tests;

public sealed class AdmissionTests
{
    [Fact]
    public void AdmitsANewcomerAndTellsItItsObservedEndpointAndTheOtherMembers()
    {
        var h = new EngineHarness();

        var first = h.Join(1, "alice", 5001);
        var second = h.Join(2, "bob", 5002);

        Assert.Equal(Ep(5001), first.To);
        Assert.Equal(new DatagramHeader(MemberId.None, new MemberId(1)), first.Header);
        Assert.Equal(Ep(5001), first.Accept.ObservedEndpoint);
        Assert.Empty(first.Accept.Members);

        Assert.Equal(Ep(5002), second.To);
        Assert.Equal(new MemberId(2), second.Header.To);
        Assert.Equal(Ep(5002), second.Accept.ObservedEndpoint);
        Assert.Equal([Record(1, "alice", 5001)], second.Accept.Members);

        Assert.Equal([Record(1, "alice", 5001), Record(2, "bob", 5002)], h.Members);
        Assert.Equal(2, h.Engine.Stats.Admitted);
        var admitted = Assert.IsType<MemberAdmitted>(h.Events[1]);
        Assert.Equal("admitted bob (2/10) from 127.0.0.1:5002", admitted.Describe(10));
    }

    [Fact]
    public void ListsMembersInAdmissionOrderRegardlessOfIdOrName()
    {
        var h = new EngineHarness();
        h.Join(900, "zed", 5001);
        h.Join(5, "amy", 5002);

        var third = h.Join(77, "mia", 5003);

        Assert.Equal(["zed", "amy"], third.Accept.Members.Select(m => m.Name));
        Assert.Equal(["zed", "amy", "mia"], h.Members.Select(m => m.Name));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("semi;colon")]
    [InlineData("abcdefghijklmnopqrstuvwxyz0123456")] // 33 characters
    [InlineData("émile")]
    public void DeniesAnInvalidNameWithAMessageThatStatesTheRule(string name)
    {
        var h = new EngineHarness();

        var reply = h.Join(1, name, 5001);

        Assert.Equal(DenyReason.InvalidName, reply.Deny.Reason);
        Assert.Equal(MemberName.Validate(name), reply.Deny.Message);
        Assert.Contains(MemberName.Rule, reply.Deny.Message, StringComparison.Ordinal);
        Assert.Equal(new MemberId(1), reply.Header.To);
        Assert.Empty(h.Members);
        Assert.Equal(1, h.Engine.Stats.DeniedInvalidName);
        Assert.IsType<JoinDenied>(Assert.Single(h.Events));
    }

    [Fact]
    public void DeniesANameHeldByAnotherLiveMember()
    {
        var h = new EngineHarness();
        h.Join(1, "bob", 5001);

        var reply = h.JoinHeldName(2, "bob", 5002, holderId: 1, holderPort: 5001);

        Assert.Equal(Ep(5002), reply.To);
        Assert.Equal(DenyReason.NameTaken, reply.Deny.Reason);
        Assert.Equal("the name 'bob' is already taken in this group", reply.Deny.Message);
        Assert.Equal([new MemberId(1)], h.Members.Select(m => m.Id));
    }

    [Fact]
    public void TreatsNamesThatDifferOnlyInCaseAsTheSameName()
    {
        var h = new EngineHarness();
        h.Join(1, "bob", 5001);

        var reply = h.JoinHeldName(2, "BOB", 5002, holderId: 1, holderPort: 5001);

        Assert.Equal(DenyReason.NameTaken, reply.Deny.Reason);
        Assert.Single(h.Members);
    }

    [Fact]
    public void DeniesANewcomerWhenTheGroupHasMaxMembers()
    {
        var h = new EngineHarness();
        for (var i = 1; i <= 10; i++)
        {
            Assert.IsType<JoinAcceptFrame>(h.Join((ulong)i, $"n{i}", 5000 + i).Frame);
        }

        var reply = h.Join(11, "late", 5011);

        Assert.Equal(DenyReason.Full, reply.Deny.Reason);
        Assert.Equal("the group already has 10 members", reply.Deny.Message);
        Assert.Equal(10, h.Members.Count);
        Assert.Equal(1, h.Engine.Stats.DeniedFull);
    }

    [Fact]
    public void HonoursAConfiguredSmallerCap()
    {
        var h = new EngineHarness(new DiscoveryOptions { MaxMembers = 2 });
        h.Join(1, "a", 5001);
        h.Join(2, "b", 5002);

        var reply = h.Join(3, "c", 5003);

        Assert.Equal(DenyReason.Full, reply.Deny.Reason);
        Assert.Equal("the group already has 2 members", reply.Deny.Message);
    }

    [Fact]
    public void AnswersARetransmittedRequestWithTheSameAcceptWithoutTakingASecondSlot()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        var request = Datagram(2, new JoinRequestFrame("bob"));

        var first = Assert.Single(h.Feed(Ep(5002), request));
        var again = Assert.Single(h.Feed(Ep(5002), request));
        var duplicate = Assert.Single(h.Feed(Ep(5002), request));

        Assert.Equal(first.Bytes, again.Bytes);
        Assert.Equal(first.Bytes, duplicate.Bytes);
        Assert.Equal(["alice", "bob"], h.Members.Select(m => m.Name));
        Assert.Equal(1, h.Events.OfType<MemberAdmitted>().Count(e => e.Member.Name == "bob"));
        Assert.Equal(2, h.Engine.Stats.DuplicateJoinRequests);
    }

    [Fact]
    public void ARetransmittedRequestFromAnAdmittedMemberIsAcceptedEvenWhenTheGroupIsNowFull()
    {
        var h = new EngineHarness(new DiscoveryOptions { MaxMembers = 2 });
        h.Join(1, "a", 5001);
        h.Join(2, "b", 5002);

        var again = h.Join(1, "a", 5001);

        Assert.Equal([Record(2, "b", 5002)], again.Accept.Members);
    }

    [Fact]
    public void TwelveSimultaneousRequestersGetExactlyTenSlotsAndTwoFullDenials()
    {
        var h = new EngineHarness();
        var requests = Enumerable.Range(1, 12)
            .Select(i => (Id: (ulong)(1000 + i), Port: 6000 + i, Bytes: Datagram((ulong)(1000 + i), new JoinRequestFrame($"user{i}"))))
            .ToList();

        // Every requester's first copy arrives before any answer, then every requester retransmits.
        var replies = new List<Reply>();
        foreach (var round in new[] { 0, 1 })
        {
            foreach (var r in requests)
            {
                replies.AddRange(h.Feed(Ep(r.Port), r.Bytes));
            }
        }

        Assert.Equal(24, replies.Count);
        var byRequester = replies.GroupBy(r => r.Header.To).ToDictionary(g => g.Key, g => g.Select(r => r.Frame).ToList());
        Assert.Equal(12, byRequester.Count);
        var admitted = byRequester.Where(kv => kv.Value.All(f => f is JoinAcceptFrame)).Select(kv => kv.Key).ToList();
        var full = byRequester.Where(kv => kv.Value.All(f => f is JoinDenyFrame { Reason: DenyReason.Full })).Select(kv => kv.Key).ToList();
        Assert.Equal(10, admitted.Count);
        Assert.Equal(2, full.Count);
        Assert.Equal(admitted.Order(), h.Members.Select(m => m.Id).Order());
        Assert.Equal(10, h.Engine.Stats.Admitted);
    }

    [Fact]
    public void TwoSimultaneousRequestsForOneNameAdmitOneAndDenyTheOther()
    {
        var h = new EngineHarness();
        var fromA = Datagram(1, new JoinRequestFrame("carol"));
        var fromB = Datagram(2, new JoinRequestFrame("carol"));

        var pong = Datagram(1, new PongFrame(0));
        var replies = new List<Reply>();
        foreach (var (port, bytes) in new[] { (5001, fromA), (5002, fromB), (5001, pong), (5001, fromA), (5002, fromB) })
        {
            replies.AddRange(h.Feed(Ep(port), bytes));
        }

        Assert.All(replies.Where(r => r.Header.To == new MemberId(1)), r => Assert.IsType<JoinAcceptFrame>(r.Frame is PingFrame ? new JoinAcceptFrame(Ep(1), []) : r.Frame));
        var toB = replies.Where(r => r.Header.To == new MemberId(2)).ToList();
        Assert.Equal(DenyReason.NameTaken, Assert.Single(toB).Deny.Reason); // b's first request only got the holder probed
        Assert.Equal([Record(1, "carol", 5001)], h.Members);
    }

    [Fact]
    public void ANewIncarnationFromTheSameEndpointReplacesTheOldHolderOfItsName()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);
        h.Join(2, "bob", 5002);

        var reply = h.Join(3, "alice", 5001);

        Assert.Equal([Record(2, "bob", 5002)], reply.Accept.Members);
        Assert.Equal([Record(2, "bob", 5002), Record(3, "alice", 5001)], h.Members);
        var replaced = Assert.Single(h.Events.OfType<MemberReplaced>());
        Assert.Equal(new MemberId(1), replaced.Old.Id);
    }

    [Fact]
    public void ARequestWithADifferentNameFromAnExistingMemberIdIsDenied()
    {
        var h = new EngineHarness();
        h.Join(1, "alice", 5001);

        var reply = h.Join(1, "alicia", 5001);

        Assert.Equal(DenyReason.Other, reply.Deny.Reason);
        Assert.Equal([Record(1, "alice", 5001)], h.Members);
    }

    [Fact]
    public void SameInputsProduceTheSameOutputs()
    {
        static List<byte[]> Run()
        {
            var h = new EngineHarness(new DiscoveryOptions { MaxMembers = 3 });
            var outputs = new List<byte[]>();
            for (var i = 1; i <= 5; i++)
            {
                h.Now = TimeSpan.FromMilliseconds(100 * i);
                outputs.AddRange(h.Send((ulong)i, 5000 + i, new JoinRequestFrame(i == 4 ? "n1" : $"n{i}")).Select(r => r.Bytes));
            }

            outputs.AddRange(h.Tick(TimeSpan.FromSeconds(60)).Select(r => r.Bytes));
            outputs.Add(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', h.Events.Select(e => e.Describe(3)))));
            return outputs;
        }

        Assert.Equal(Run(), Run());
    }
}
