using System.Text;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>
/// A message whose causal predecessor is lost for good (only crashed members ever had it) must never be delivered:
/// delivering it would put it before something its sender had seen (found by the simulator, Stragglers seed 13250).
/// </summary>
public sealed class LostDependencyTests
{
    [Fact]
    public void A_private_message_that_depends_on_a_broadcast_nobody_alive_holds_is_never_delivered()
    {
        var net = new EngineHarness();
        net.Form("a", "b", "c", "d");
        net.RunFor(TimeSpan.FromSeconds(1));
        var a = net["a"];
        var b = net["b"];
        var c = net["c"];
        Assert.True(net.Broadcast("c", "everyone has this").IsAccepted);
        net.RunFor(TimeSpan.FromMilliseconds(100));

        // b delivered c's second broadcast, which no other member got, and wrote to a; then both crashed.
        var deps = VectorClock.From([new ClockEntry(c.Engine.Self.Id, 2)]);
        var chunk = new PrivateChunkFrame(1, ChunkFlags.First | ChunkFlags.Last, deps, Encoding.UTF8.GetBytes("after c's message"));
        a.Engine.OnDatagram(b.Endpoint, WireCodec.Encode(new DatagramHeader(b.Engine.Self.Id, a.Engine.Self.Id), chunk), net.Now);
        net.Pump(a);
        b.Crashed = true;
        c.Crashed = true;

        // Both are declared down; c's stream looks complete here (a has its first message and nothing tells it of more) and would retire after 5 s, and a
        // retired stream satisfies every dependency on it.
        net.RunFor(TimeSpan.FromSeconds(20));

        Assert.Equal(["b:c:everyone has this"], a.Texts);
    }
}
