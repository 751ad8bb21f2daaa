using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Xunit;
using Xunit.Abstractions;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>
/// Heartbeats wait briefly for a datagram that goes to the peer anyway (docs/protocol.md, "Ping and Pong"): a busy
/// group sends none of its own for them, and the time an answer waited is taken off the round-trip sample. The harness's
/// network has no delay, so every honest sample is exactly zero.
/// </summary>
public sealed class HeartbeatRideAlongTests(ITestOutputHelper output)
{
    private static bool HeartbeatOnly(IReadOnlyList<Frame> frames) => frames.All(static f => f is PingFrame or PongFrame);

    [Fact]
    public void While_messages_flow_pings_ride_on_data_and_hardly_any_datagram_carries_only_heartbeats()
    {
        var net = new EngineHarness();
        net.Form(Enumerable.Range(0, 10).Select(i => $"n{i}").ToArray());
        net.RunFor(TimeSpan.FromSeconds(1));

        var heartbeatOnly = 0;
        var pingsOnData = 0;
        var pings = 0;
        net.Drop = d =>
        {
            var frames = d.Frames;
            heartbeatOnly += HeartbeatOnly(frames) ? 1 : 0;
            pings += frames.Count(static f => f is PingFrame);
            pingsOnData += frames.Any(static f => f is ChunkFrame) ? frames.Count(static f => f is PingFrame) : 0;
            return false;
        };

        // Every member broadcasts every 20 ms for 2 s: a datagram to each peer well within a ping's 50-ms wait.
        for (var round = 0; round < 100; round++)
        {
            foreach (var n in net.Nodes)
            {
                Assert.True(net.Broadcast(n.Name, $"round {round}").IsAccepted);
            }

            net.RunFor(TimeSpan.FromMilliseconds(20));
        }

        output.WriteLine($"{pings} pings, {pingsOnData} of them on datagrams with chunks; {heartbeatOnly} datagrams of heartbeats only");
        // A ping that rode on a datagram without chunks (an ack) leaves nothing to acknowledge, so its answer may go alone
        // after its 5 ms: 4 of 900 here. Without the ride-along, every ping and every answer is a datagram of its own.
        Assert.InRange(heartbeatOnly, 0, pings / 100);
        Assert.InRange(pings, 10 * 9 * 2 * 4, int.MaxValue); // 2 s of a ping per peer every 200 ms still happened (10 per peer; 8 allows for the edges)
        Assert.InRange(pingsOnData, pings * 98 / 100, pings);
        Assert.All(net.Nodes, n => Assert.Equal(1000, n.Delivered.Count));
    }

    [Fact]
    public void An_idle_group_still_pings_on_its_own_and_the_time_an_answer_waited_is_not_counted_as_round_trip()
    {
        var net = new EngineHarness();
        net.Form("a", "b", "c");
        var held = new List<ulong>();
        var pingsAlone = 0;
        net.Drop = d =>
        {
            var frames = d.Frames;
            held.AddRange(frames.OfType<PongFrame>().Select(static p => p.HeldMicroseconds));
            pingsAlone += frames.Any(static f => f is PingFrame) && !frames.Any(static f => f is ChunkFrame) ? 1 : 0;
            return false;
        };

        net.RunFor(TimeSpan.FromSeconds(3));

        // Nothing else goes, so every answer waited its full 5 ms for company and said so.
        Assert.InRange(pingsAlone, 6 * 10, int.MaxValue); // six links, a ping every 200 ms each
        Assert.NotEmpty(held);
        Assert.All(held, static h => Assert.Equal(5_000UL, h));
        foreach (var n in net.Nodes)
        {
            Assert.All(n.Engine.Members.Where(static m => !m.IsSelf), m => Assert.Equal(TimeSpan.Zero, m.SmoothedRtt)); // not 5 ms
            Assert.All(n.Engine.Members, static m => Assert.Equal(MemberStatus.Up, m.Status));
        }
    }

    [Fact]
    public void A_pong_that_claims_to_have_waited_longer_than_the_round_trip_gives_no_sample()
    {
        var net = new EngineHarness();
        net.Form("a", "b");
        var a = net["a"];
        var b = net["b"];
        var before = a.Engine.Members.Single(static m => !m.IsSelf).SmoothedRtt;

        // A forged answer: sent 10 ms ago by a's clock, "held" 20 ms.
        var token = (ulong)(net.Now - TimeSpan.FromMilliseconds(10)).Ticks;
        var forged = WireCodec.Encode(new DatagramHeader(b.Engine.Self.Id, a.Engine.Self.Id), new PongFrame(token, 20_000));
        a.Engine.OnDatagram(b.Endpoint, forged, net.Now);

        Assert.Equal(before, a.Engine.Members.Single(static m => !m.IsSelf).SmoothedRtt);
    }
}
