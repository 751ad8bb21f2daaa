using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Xunit;
using Xunit.Abstractions;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>
/// Datagram counts are deterministic on the harness's virtual network, so they can be pinned without timing
/// anything: the figures printed here are the ones quoted for "datagrams per broadcast at 0% loss".
/// </summary>
public sealed class WireCostTests(ITestOutputHelper output)
{
    [Fact]
    public void At_zero_loss_a_broadcast_to_ten_members_takes_one_data_datagram_per_peer_and_a_bounded_number_of_acks()
    {
        var net = new EngineHarness();
        net.Form(Enumerable.Range(0, 10).Select(i => $"n{i}").ToArray());
        net.RunFor(TimeSpan.FromSeconds(1));

        var data = 0;
        var control = 0;
        net.Drop = d =>
        {
            if (d.Frames.Any(f => f is ChunkFrame))
            {
                data++;
            }
            else
            {
                control++;
            }

            return false;
        };
        var window = TimeSpan.FromSeconds(4);
        net.RunFor(window);
        var idleControl = control;
        control = 0;

        const int broadcasts = 200;
        for (var k = 0; k < broadcasts; k++)
        {
            Assert.True(net.Broadcast(net.Nodes[k % 10].Name, new string('x', 100)).IsAccepted);
            net.RunFor(window / broadcasts);
        }

        net.RunFor(TimeSpan.FromMilliseconds(100));
        output.WriteLine($"idle: {idleControl / window.TotalSeconds / 10:F1} control datagrams/s per node (heartbeats)");
        output.WriteLine($"per broadcast: {(double)data / broadcasts:F2} data + {(double)control / broadcasts:F2} control (acks and the heartbeats they did not replace), against {(double)idleControl / broadcasts:F2} heartbeats per broadcast interval when idle");

        Assert.Equal(9 * broadcasts, data); // one datagram to each of the 9 peers, no retransmission at 0% loss
        Assert.All(net.Nodes, n => Assert.Equal(broadcasts, n.Delivered.Count));
        // Acks: at most about one per peer and broadcast on top of what the idle group sends (its heartbeats), which the
        // acks partly replace.
        Assert.InRange((double)control / broadcasts, 0, 9 + ((double)idleControl / broadcasts));
    }

    [Fact]
    public void While_every_member_sends_acks_replace_the_heartbeat_pings()
    {
        var net = new EngineHarness();
        net.Form(Enumerable.Range(0, 10).Select(i => $"n{i}").ToArray());
        net.RunFor(TimeSpan.FromSeconds(1));
        var pings = 0;
        net.Drop = d =>
        {
            pings += d.Frames.Count(f => f is PingFrame);
            return false;
        };
        var window = TimeSpan.FromSeconds(2);
        net.RunFor(window);
        var idlePings = pings;
        pings = 0;

        const int rounds = 100; // every member broadcasts every 20 ms, so each hears from each (and gets its acks) far more often than every 200 ms
        for (var r = 0; r < rounds; r++)
        {
            foreach (var node in net.Nodes)
            {
                Assert.True(net.Broadcast(node.Name, new string('x', 100)).IsAccepted);
            }

            net.RunFor(window / rounds);
        }

        output.WriteLine($"pings in {window.TotalSeconds} s: {idlePings} idle, {pings} while every member sends");
        Assert.Equal(10 * 9 * 10, idlePings); // each member pings each of 9 others every 200 ms
        Assert.All(net.Nodes, n => Assert.Equal(rounds * 10, n.Delivered.Count));
        Assert.All(net.Nodes, n => Assert.All(n.Engine.Members.Where(m => !m.IsSelf), m => Assert.Equal(MemberStatus.Up, m.Status)));
        Assert.True(pings <= idlePings / 10, $"{pings} pings while sending, {idlePings} idle");
    }

    [Fact]
    public void In_a_stream_of_back_to_back_broadcasts_acks_add_at_most_a_tenth_to_the_data_datagrams()
    {
        var (net, count) = TenMembersCounting();

        const int rounds = 60;
        for (var r = 0; r < rounds; r++)
        {
            foreach (var node in net.Nodes)
            {
                Assert.True(net.Broadcast(node.Name, new string('x', 100)).IsAccepted); // each drained at once: one datagram per peer
            }

            net.RunFor(TimeSpan.FromMilliseconds(1));
        }

        net.RunFor(TimeSpan.FromMilliseconds(50));
        var overhead = (double)count.ControlOnly / count.Data;
        output.WriteLine($"stream of {rounds * 10} broadcasts: {count.Data} data datagrams ({count.Piggybacked} carrying an ack), {count.ControlOnly} ack/nack-only datagrams = {overhead:P1} overhead");

        Assert.All(net.Nodes, n => Assert.Equal(rounds * 10, n.Delivered.Count));
        Assert.True(overhead <= 0.10, $"acks add {overhead:P1} to the data datagrams");
    }

    [Fact]
    public void A_single_sender_streaming_to_nine_silent_members_gets_few_acks()
    {
        var (net, count) = TenMembersCounting();

        const int messages = 400;
        for (var m = 0; m < messages; m++)
        {
            Assert.True(net.Broadcast("n0", new string('x', 100)).IsAccepted);
            net.RunFor(TimeSpan.FromMilliseconds(0.25)); // 4,000 messages a second, one datagram per peer each
        }

        net.RunFor(TimeSpan.FromMilliseconds(50));
        var overhead = (double)count.ControlOnly / count.Data;
        output.WriteLine($"one sender, {messages} broadcasts: {count.Data} data datagrams, {count.ControlOnly} ack/nack-only datagrams = {overhead:P1} overhead");

        Assert.All(net.Nodes, n => Assert.Equal(messages, n.Delivered.Count));
        Assert.True(overhead <= 0.10, $"acks add {overhead:P1} to the data datagrams");
    }

    /// <summary>A formed group of ten whose datagrams from now on are counted: with data, with data and an ack, control only.</summary>
    private static (EngineHarness Net, DatagramCount Count) TenMembersCounting()
    {
        var net = new EngineHarness();
        net.Form(Enumerable.Range(0, 10).Select(i => $"n{i}").ToArray());
        net.RunFor(TimeSpan.FromSeconds(1));
        var count = new DatagramCount();
        net.Drop = d =>
        {
            var frames = d.Frames;
            if (frames.Any(f => f is ChunkFrame))
            {
                count.Data++;
                count.Piggybacked += frames.Any(f => f is AckFrame) ? 1 : 0;
            }
            else if (frames.Any(f => f is AckFrame or NackFrame))
            {
                count.ControlOnly++;
            }

            return false;
        };
        return (net, count);
    }

    private sealed class DatagramCount
    {
        public int Data { get; set; }

        public int Piggybacked { get; set; }

        public int ControlOnly { get; set; }
    }
}

