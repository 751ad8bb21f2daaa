using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

public sealed class AdmissionThroughMembersTests
{
    private static EngineHarness GroupWithServerGone(int size)
    {
        var net = new EngineHarness();
        net.Form(Enumerable.Range(1, size).Select(i => $"m{i}").ToArray());
        net.ServerUp = false;
        return net;
    }

    [Fact]
    public void A_newcomer_joins_through_any_member_while_the_server_is_down()
    {
        var net = GroupWithServerGone(3);

        var dave = net.Add("dave", net["m2"].Endpoint);
        net.RunUntil(() => dave.Engine.State == EngineState.Joined, TimeSpan.FromSeconds(5));
        net.RunFor(TimeSpan.FromMilliseconds(300));
        net.Broadcast("dave", "hi, I came in through m2");
        net.RunFor(TimeSpan.FromMilliseconds(500));

        var joined = Assert.Single(dave.Events.OfType<JoinedEvent>());
        Assert.Equal(["dave", "m1", "m2", "m3"], joined.Members.Select(m => m.Name).Order());
        foreach (var n in net.Nodes)
        {
            Assert.Equal(4, n.Engine.Members.Count);
            Assert.Contains("b:dave:hi, I came in through m2", n.Texts);
        }
    }

    [Fact]
    public void Concurrent_joins_through_different_members_never_exceed_the_cap()
    {
        var net = GroupWithServerGone(8);

        var newcomers = new[] { ("x1", "m1"), ("x2", "m4"), ("x3", "m8") }
            .Select(t => net.Add(t.Item1, net[t.Item2].Endpoint)).ToList();
        net.RunFor(TimeSpan.FromSeconds(4));

        Assert.Equal(2, newcomers.Count(n => n.Engine.State == EngineState.Joined));
        var denied = Assert.Single(newcomers, n => n.Engine.State == EngineState.Denied);
        Assert.Equal(DenyReason.Full, denied.Events.OfType<DeniedEvent>().Single().Reason);
        Assert.Contains("10 members", denied.Events.OfType<DeniedEvent>().Single().Message, StringComparison.Ordinal);
        foreach (var n in net.Nodes.Where(n => n.Engine.State == EngineState.Joined))
        {
            Assert.Equal(10, n.Engine.Members.Count(m => m.Status == MemberStatus.Up));
        }
    }

    [Fact]
    public void Two_newcomers_claiming_one_name_through_different_members_end_with_one_admitted()
    {
        var net = GroupWithServerGone(4);

        var a = net.Add("dave", net["m1"].Endpoint);
        var b = net.Add("Dave", net["m3"].Endpoint);
        net.RunFor(TimeSpan.FromSeconds(4));

        var states = new[] { a.Engine.State, b.Engine.State };
        Assert.Single(states, s => s == EngineState.Joined);
        var loser = a.Engine.State == EngineState.Denied ? a : b;
        Assert.Equal(DenyReason.NameTaken, loser.Events.OfType<DeniedEvent>().Single().Reason);
    }

    [Fact]
    public void An_invalid_name_is_refused_by_the_group_with_the_rule()
    {
        var net = GroupWithServerGone(2);

        var bad = net.Add("../etc", net["m1"].Endpoint);
        net.RunFor(TimeSpan.FromSeconds(2));

        var denied = Assert.Single(bad.Events.OfType<DeniedEvent>());
        Assert.Equal(DenyReason.InvalidName, denied.Reason);
        Assert.Contains(MemberName.Rule, denied.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_newcomer_with_the_smallest_id_does_not_take_admission_over_from_the_member_that_admitted_it()
    {
        var net = GroupWithServerGone(3);
        var forwardedTo = new List<System.Net.IPEndPoint>();
        net.Drop = d =>
        {
            if (d.Frames.Any(static f => f is JoinForwardFrame))
            {
                forwardedTo.Add(d.To);
            }

            return false;
        };

        var early = net.Add("early", net["m1"].Endpoint, new MemberId(1)); // ranks before every member by id
        net.RunUntil(() => net.Nodes.All(n => n.Engine.Members.Count == 4), TimeSpan.FromSeconds(5));
        var late = net.Add("late", net["m3"].Endpoint);
        net.RunUntil(() => late.Engine.State == EngineState.Joined, TimeSpan.FromSeconds(5));

        Assert.NotEmpty(forwardedTo);
        Assert.All(forwardedTo, to => Assert.Equal(net["m1"].Endpoint, to)); // m1 is the most senior member: it stays the coordinator
        Assert.DoesNotContain(early.Endpoint, forwardedTo);
    }

    [Fact]
    public void A_member_that_lists_a_newcomer_whose_acceptance_was_lost_admits_it_when_the_server_is_gone()
    {
        var net = new EngineHarness();
        net.Form("m1");
        var acceptsToLate = 0;
        net.Drop = d => d.Frames.Any(static f => f is JoinAcceptFrame) && d.To.Port == 5000 && d.To.Address.ToString() == "127.0.0.2" && acceptsToLate++ == 0;

        var late = net.Add("late"); // the server admits it, but the answer is lost
        net.RunFor(TimeSpan.FromMilliseconds(50));
        var m2 = net.Add("m2"); // learns of "late" from its own JoinAccept
        net.RunUntil(() => m2.Engine.State == EngineState.Joined, TimeSpan.FromSeconds(5));
        net.ServerUp = false; // before "late" asks again

        net.RunUntil(() => late.Engine.State != EngineState.Joining, TimeSpan.FromSeconds(8));

        Assert.Equal(EngineState.Joined, late.Engine.State);
        net.RunFor(TimeSpan.FromSeconds(1));
        foreach (var n in net.Nodes)
        {
            Assert.Equal(["late", "m1", "m2"], n.Engine.Members.Where(m => m.Status == MemberStatus.Up).Select(m => m.Member.Name).Order());
        }
    }
}
