using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>
/// Lenient and strict timers (docs/protocol.md, "Timers"): a driver may run delayed acks, heartbeats and the other
/// housekeeping timers up to <see cref="EngineOptions.TimerSlack"/> late, never loss repair, and a group whose drivers
/// do so loses, duplicates and resends nothing for it.
/// </summary>
public sealed class TimerSlackTests
{
    private static readonly TimeSpan Slack = new EngineOptions().TimerSlack;

    private static EngineHarness Pair()
    {
        var net = new EngineHarness();
        net.Form("a", "b");
        net.RunFor(TimeSpan.FromSeconds(1));
        return net;
    }

    [Fact]
    public void A_member_holding_back_an_ack_may_run_its_timer_up_to_the_slack_late()
    {
        var net = Pair();

        Assert.True(net.Broadcast("a", "hello").IsAccepted);
        net.Flush();

        var b = net["b"].Engine;
        Assert.True(b.NextTimeout <= net.Now + b.Options.MaxAckDelay, "b's ack for the chunk is due within MaxAckDelay");
        Assert.Equal(b.NextTimeout + Slack, b.NextTimeoutLatest); // b has nothing to repair: all of its timers are lenient
    }

    [Fact]
    public void A_lost_chunk_is_resent_at_the_same_moment_by_a_driver_that_runs_timers_late_as_by_an_exact_one()
    {
        var exact = ResendOfALostChunk(lateTimers: false);
        var late = ResendOfALostChunk(lateTimers: true);

        Assert.Equal(exact, late); // the retransmission timer is strict: it bounds how late a driver may run the engine
    }

    /// <summary>When a resends a chunk whose first copy to b was lost (the time since the send), and that b then has it.</summary>
    private static TimeSpan ResendOfALostChunk(bool lateTimers)
    {
        var net = Pair();
        net.LateTimers = lateTimers;
        var a = net["a"].Endpoint;
        var copies = new List<TimeSpan>();
        net.Drop = d =>
        {
            if (d.From.Equals(a) && d.Frames.Any(static f => f is ChunkFrame))
            {
                copies.Add(net.Now);
                return copies.Count == 1; // the first copy is lost
            }

            return false;
        };

        var sentAt = net.Now;
        Assert.True(net.Broadcast("a", "lost").IsAccepted);
        net.RunUntil(() => net["b"].Texts.Count == 1, TimeSpan.FromSeconds(1));

        Assert.Equal(["b:a:lost"], net["b"].Texts);
        Assert.True(copies.Count >= 2 && copies[1] > sentAt, $"copies sent at {string.Join(", ", copies.Select(c => (c - sentAt).TotalMilliseconds))} ms");
        return copies[1] - sentAt;
    }

    [Fact]
    public void A_group_whose_drivers_run_every_lenient_timer_late_delivers_everything_once_and_resends_nothing()
    {
        var net = new EngineHarness { LateTimers = true };
        net.Form("a", "b", "c", "d");
        net.RunFor(TimeSpan.FromSeconds(1));
        var resentBefore = net.Nodes.Sum(static n => n.Engine.Stats.ChunksRetransmitted);

        for (var round = 0; round < 20; round++)
        {
            foreach (var n in net.Nodes)
            {
                Assert.True(net.Broadcast(n.Name, $"{n.Name} {round}").IsAccepted);
            }

            net.RunFor(TimeSpan.FromMilliseconds(round % 2 == 0 ? 3 : 40)); // acks ride along, or their timers run (late)
        }

        net.RunFor(TimeSpan.FromSeconds(1));
        Assert.All(net.Nodes, n => Assert.Equal(80, n.Delivered.Count));
        Assert.All(net.Nodes, n => Assert.Equal(80, n.Delivered.Select(static m => m.Id).Distinct().Count()));
        Assert.Equal(resentBefore, net.Nodes.Sum(static n => n.Engine.Stats.ChunksRetransmitted)); // late acks are expected: no timer fired for nothing
        Assert.All(net.Nodes, n => Assert.Equal(0, n.Engine.Stats.StoredChunks)); // and every chunk became stable
    }
}
