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
}
