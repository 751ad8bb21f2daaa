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
        var perBroadcast = (double)(data + control - idleControl) / broadcasts;
        output.WriteLine($"idle: {idleControl / window.TotalSeconds / 10:F1} control datagrams/s per node (heartbeats)");
        output.WriteLine($"per broadcast: {(double)data / broadcasts:F2} data + {(double)(control - idleControl) / broadcasts:F2} control above idle = {perBroadcast:F2} datagrams");

        Assert.Equal(9 * broadcasts, data); // one datagram to each of the 9 peers, no retransmission at 0% loss
        Assert.All(net.Nodes, n => Assert.Equal(broadcasts, n.Delivered.Count));
        Assert.InRange((double)(control - idleControl) / broadcasts, 0, 10); // acks: at most about one per peer
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

