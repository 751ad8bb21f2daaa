using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>
/// What happens to a member the group declared down while it was still alive: paused, cut off, or on the smaller
/// side of a partition. It finds out, the engine says so with <see cref="EvictedEvent"/> and stops, and the group
/// keeps its view.
/// </summary>
public sealed class EvictionTests
{
    [Fact]
    public void A_member_paused_past_the_down_timeout_is_told_on_resume_and_reports_a_member_to_rejoin_through()
    {
        var net = new EngineHarness();
        net.Form("m1", "m2", "m3");
        var m3 = net["m3"];

        m3.Crashed = true; // paused: it neither sends nor receives, and its timers do not run
        net.RunFor(TimeSpan.FromSeconds(4));
        Assert.All(net.Nodes.Where(n => n != m3), n => Assert.Equal(MemberStatus.Down, StatusOf(n, "m3")));
        m3.Crashed = false; // resumed
        net.RunUntil(() => m3.Engine.State == EngineState.Evicted, TimeSpan.FromSeconds(3));

        var evicted = Assert.Single(m3.Events.OfType<EvictedEvent>());
        Assert.Contains("paused", evicted.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(m3.Events.OfType<MemberStatusEvent>(), e => e.Status == MemberStatus.Down); // its own freeze is no evidence against the others
        Assert.Equal(1, m3.Engine.Stats.Stalls);
        Assert.Contains(evicted.Contact, new[] { net["m1"].Endpoint, net["m2"].Endpoint });
        Assert.Null(m3.Engine.NextTimeout);
        Assert.All(new[] { net["m1"], net["m2"] }, n => Assert.Equal(EngineState.Joined, n.Engine.State));
    }

    [Fact]
    public void After_a_partition_heals_the_smaller_side_is_evicted_and_the_larger_side_keeps_going()
    {
        var net = new EngineHarness();
        net.Form("m1", "m2", "m3", "m4", "m5");
        var small = new[] { net["m4"], net["m5"] };
        var large = new[] { net["m1"], net["m2"], net["m3"] };
        var cut = true;
        net.Drop = d => cut && small.Any(n => n.Endpoint.Equals(d.From)) != small.Any(n => n.Endpoint.Equals(d.To));

        net.RunFor(TimeSpan.FromSeconds(4));
        Assert.All(large, n => Assert.Equal(MemberStatus.Down, StatusOf(n, "m4")));
        Assert.All(small, n => Assert.Equal(MemberStatus.Down, StatusOf(n, "m1")));
        cut = false;
        net.RunUntil(() => small.All(n => n.Engine.State == EngineState.Evicted), TimeSpan.FromSeconds(5));

        Assert.All(large, n => Assert.Equal(EngineState.Joined, n.Engine.State));
        Assert.All(small, n => Assert.Contains(Assert.Single(n.Events.OfType<EvictedEvent>()).Contact, large.Select(l => l.Endpoint)));
    }

    [Fact]
    public void A_side_of_equal_size_yields_to_the_side_with_the_most_senior_member()
    {
        var net = new EngineHarness();
        net.Form("m1", "m2", "m3", "m4"); // the server numbers them 1-4: m1 is the most senior
        var withSenior = new[] { net["m1"], net["m3"] };
        var without = new[] { net["m2"], net["m4"] };
        var cut = true;
        net.Drop = d => cut && withSenior.Any(n => n.Endpoint.Equals(d.From)) != withSenior.Any(n => n.Endpoint.Equals(d.To));

        net.RunFor(TimeSpan.FromSeconds(4));
        cut = false;
        net.RunUntil(() => without.All(n => n.Engine.State == EngineState.Evicted), TimeSpan.FromSeconds(5));

        Assert.All(withSenior, n => Assert.Equal(EngineState.Joined, n.Engine.State));
    }

    [Fact]
    public void A_crashed_member_is_probed_at_its_last_address_and_nobody_is_evicted()
    {
        var net = new EngineHarness();
        net.Form("m1", "m2");
        var probes = 0;
        net.Drop = d =>
        {
            probes += d.To.Equals(net.Nodes[1].Endpoint) && d.Frames.Any(static f => f is PingFrame) ? 1 : 0;
            return false;
        };
        net.Nodes[1].Crashed = true;

        net.RunFor(TimeSpan.FromSeconds(10));

        Assert.Contains(net["m1"].Events.OfType<MemberStatusEvent>(), e => e.Member.Name == "m2" && e.Status == MemberStatus.Down);
        Assert.InRange(net["m1"].Engine.Stats.DownProbesSent, 6, 9); // one per second once it was declared down
        Assert.True(probes >= net["m1"].Engine.Stats.DownProbesSent);
        Assert.Equal(EngineState.Joined, net["m1"].Engine.State);
        Assert.Empty(net["m1"].Events.OfType<EvictedEvent>());
    }

    [Fact]
    public void Two_members_resuming_together_after_the_group_removed_them_exchange_no_messages_before_they_are_evicted()
    {
        // The open finding this closes: a stale member (m4) took messages of another stale member (m3) that the
        // group had already closed, and passed on messages depending on them that nobody else could complete.
        var net = new EngineHarness();
        net.Form("m1", "m2", "m3", "m4");
        var m3 = net["m3"];
        var m4 = net["m4"];
        m3.Crashed = m4.Crashed = true;
        net.RunFor(TimeSpan.FromSeconds(4));
        Assert.All(new[] { net["m1"], net["m2"] }, n => Assert.Equal(MemberStatus.Down, StatusOf(n, "m3")));

        m3.Crashed = m4.Crashed = false;
        net.Broadcast("m3", "written on a stale view");
        net.RunUntil(() => m3.Engine.State == EngineState.Evicted && m4.Engine.State == EngineState.Evicted, TimeSpan.FromSeconds(3));

        Assert.DoesNotContain("b:m3:written on a stale view", m4.Texts);
        Assert.All(new[] { net["m1"], net["m2"] }, n => Assert.DoesNotContain("b:m3:written on a stale view", n.Texts));
        Assert.Equal(1, m3.Engine.Stats.Quarantines);
    }

    [Fact]
    public void A_member_frozen_for_less_than_the_down_timeout_waits_one_round_trip_then_delivers_what_it_missed()
    {
        var net = new EngineHarness();
        net.Form("m1", "m2", "m3");
        var m3 = net["m3"];
        var sentWhileQuarantined = new List<Frame>();
        net.Drop = d =>
        {
            if (d.From.Equals(m3.Endpoint) && m3.Engine.Quarantined)
            {
                sentWhileQuarantined.AddRange(d.Frames);
            }

            return false;
        };

        m3.Crashed = true;
        net.RunFor(TimeSpan.FromMilliseconds(300));
        net.Broadcast("m1", "while you were away");
        net.RunFor(TimeSpan.FromMilliseconds(1500)); // longer than SuspectAfter (a stall), shorter than DownAfter
        m3.Crashed = false;
        net.RunUntil(() => m3.Texts.Contains("b:m1:while you were away"), TimeSpan.FromSeconds(2));

        Assert.Equal(EngineState.Joined, m3.Engine.State);
        Assert.False(m3.Engine.Quarantined);
        Assert.Equal(1, m3.Engine.Stats.Quarantines);
        Assert.NotEmpty(sentWhileQuarantined);
        Assert.All(sentWhileQuarantined, f => Assert.True(f is PingFrame or PongFrame or LeaveFrame, $"a quarantined node sent {f.GetType().Name}"));
        Assert.Empty(m3.Events.OfType<EvictedEvent>());
        Assert.All(net.Nodes, n => Assert.DoesNotContain(n.Events.OfType<MemberStatusEvent>(), e => e.Status == MemberStatus.Down));
    }

    [Fact]
    public void An_evicted_member_names_the_rest_of_the_group_so_its_rejoin_succeeds_when_the_member_that_told_it_crashed()
    {
        var net = new EngineHarness();
        net.Form("m1", "m2", "m3", "m4");
        var m4 = net["m4"];
        m4.Crashed = true;
        net.RunFor(TimeSpan.FromSeconds(4));
        m4.Crashed = false;
        net.RunUntil(() => m4.Engine.State == EngineState.Evicted, TimeSpan.FromSeconds(3));
        var evicted = Assert.Single(m4.Events.OfType<EvictedEvent>());
        Assert.Equal(2, evicted.Fallbacks.Count);
        Assert.DoesNotContain(evicted.Contact, evicted.Fallbacks);

        net.NodeAt(evicted.Contact)!.Crashed = true; // the member that told it is gone before it asks
        net.ServerUp = false;
        var again = net.Add("m4", evicted.Contact, fallbacks: evicted.Fallbacks);
        net.RunUntil(() => again.Engine.State == EngineState.Joined, TimeSpan.FromSeconds(5));

        Assert.Empty(again.Events.OfType<DeniedEvent>());
    }

    [Fact]
    public void When_only_the_link_between_two_members_breaks_the_less_senior_of_the_two_rejoins()
    {
        var net = new EngineHarness();
        net.Form("m1", "m2", "m3", "m4"); // seniority in admission order: m2 is more senior than m4
        var (m2, m4) = (net["m2"], net["m4"]);
        var cut = true;
        net.Drop = d => cut && ((d.From.Equals(m4.Endpoint) && d.To.Equals(m2.Endpoint)) || (d.From.Equals(m2.Endpoint) && d.To.Equals(m4.Endpoint)));
        net.RunUntil(() => StatusOf(m2, "m4") == MemberStatus.Down && StatusOf(m4, "m2") == MemberStatus.Down, TimeSpan.FromSeconds(5));
        cut = false;

        net.RunUntil(() => m4.Engine.State == EngineState.Evicted, TimeSpan.FromSeconds(3));

        Assert.Equal(EngineState.Joined, m2.Engine.State); // both sides see the same group and the same senior member: no stalemate
        Assert.Contains("rejoins", Assert.Single(m4.Events.OfType<EvictedEvent>()).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rejoin_waits_out_name_taken_while_a_member_that_missed_the_old_incarnations_leave_still_lists_it()
    {
        var net = new EngineHarness();
        net.Form("m1", "m2", "m3", "m4"); // m1 is the most senior: the coordinator
        var (m1, m2, old) = (net["m1"], net["m2"], net["m4"]);
        var cut = true;
        net.Drop = d =>
            (cut && (d.From.Equals(old.Endpoint) && d.To.Equals(m2.Endpoint) || d.From.Equals(m2.Endpoint) && d.To.Equals(old.Endpoint)))
            || (d.From.Equals(old.Endpoint) && d.To.Equals(m1.Endpoint) && d.Frames.Any(static f => f is LeaveFrame)); // m1 misses the leave
        net.RunUntil(() => StatusOf(m2, "m4") == MemberStatus.Down, TimeSpan.FromSeconds(5));
        Assert.Equal(MemberStatus.Up, StatusOf(m1, "m4"));
        cut = false;
        net.RunUntil(() => old.Engine.State == EngineState.Evicted, TimeSpan.FromSeconds(3));
        var evicted = Assert.Single(old.Events.OfType<EvictedEvent>());
        net.ServerUp = false;

        var again = net.Add("m4", evicted.Contact, fallbacks: evicted.Fallbacks);
        net.RunUntil(() => again.Engine.State is EngineState.Joined or EngineState.Denied, TimeSpan.FromSeconds(8));

        Assert.Equal(EngineState.Joined, again.Engine.State);
        Assert.True(again.Engine.Stats.RejoinNameWaits > 0, "the coordinator still listed the old incarnation, so 'name taken' came first");
    }

    private static MemberStatus? StatusOf(EngineHarness.Node node, string name) =>
        node.Engine.Members.FirstOrDefault(m => m.Member.Name == name)?.Status;
}
