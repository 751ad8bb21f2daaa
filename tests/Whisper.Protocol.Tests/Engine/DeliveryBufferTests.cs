using System.Text;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>The buffers behind the allocation-free delivery path grow for a burst and give the memory back after it.</summary>
public sealed class DeliveryBufferTests
{
    [Fact]
    public void Buffers_grown_for_a_burst_of_deliveries_shrink_once_the_burst_is_over()
    {
        var net = new EngineHarness();
        net.Form("a", "b");
        net.RunFor(TimeSpan.FromSeconds(1));
        var a = net["a"].Endpoint;
        var b = net["b"];
        var initial = b.Engine.DeliveryBufferSizes;

        // The first message is held up, so b stores the 500 after it and delivers all of them in one pass once it arrives.
        var blocked = true;
        net.Drop = d => blocked && d.From.Equals(a) && d.To.Equals(b.Endpoint)
            && d.Frames.OfType<ChunkFrame>().Any(c => c.Payload.Span.IndexOf("first"u8) >= 0);
        Assert.True(net.Broadcast("a", "first").IsAccepted);
        var filler = new string('x', 1000);
        for (var i = 0; i < 500; i++)
        {
            Assert.True(net.Broadcast("a", $"{i} {filler}").IsAccepted);
        }

        net.RunFor(TimeSpan.FromMilliseconds(50));
        Assert.Empty(b.Delivered);
        blocked = false;
        net.RunUntil(() => b.Delivered.Count == 501, TimeSpan.FromSeconds(5));
        var grown = b.Engine.DeliveryBufferSizes;
        Assert.InRange(grown.Bytes, 500 * 1000, int.MaxValue); // the whole burst was in the buffer at once
        Assert.InRange(grown.Deliveries, 501, int.MaxValue);

        net.RunFor(TimeSpan.FromSeconds(25)); // two reviews: the first still counts the burst, the second finds it over

        var after = b.Engine.DeliveryBufferSizes;
        Assert.Equal(initial.Bytes, after.Bytes); // 1 MiB back to 16 KiB
        Assert.Equal(initial.Deliveries, after.Deliveries);
        Assert.InRange(after.Deps, initial.Deps, 4 * initial.Deps); // a buffer within four times its initial size is kept
        Assert.Equal(Enumerable.Range(0, 500).Select(i => $"b:a:{i} {filler}").Prepend("b:a:first"), b.Texts);
    }

    [Fact]
    public void A_steady_stream_of_deliveries_keeps_its_buffers()
    {
        var net = new EngineHarness();
        net.Form("a", "b");
        net.RunFor(TimeSpan.FromSeconds(1));
        var b = net["b"];
        var a = net["a"].Endpoint;
        var filler = new string('y', 1000);
        var sizes = new List<int>();
        for (var round = 0; round < 30; round++)
        {
            // every second a gap holds up 60 messages, so each second has a pass that delivers 61 at once
            var blocked = true;
            var head = $"head{round}";
            net.Drop = d => blocked && d.From.Equals(a) && d.To.Equals(b.Endpoint)
                && d.Frames.OfType<ChunkFrame>().Any(c => c.Payload.Span.IndexOf(Encoding.UTF8.GetBytes(head)) >= 0);
            Assert.True(net.Broadcast("a", head).IsAccepted);
            for (var i = 0; i < 60; i++)
            {
                Assert.True(net.Broadcast("a", $"{round}.{i} {filler}").IsAccepted);
            }

            net.RunFor(TimeSpan.FromMilliseconds(20));
            blocked = false;
            net.RunFor(TimeSpan.FromMilliseconds(980));
            sizes.Add(b.Engine.DeliveryBufferSizes.Bytes);
        }

        Assert.Equal(30 * 61, b.Delivered.Count);
        Assert.All(sizes.Skip(1), s => Assert.Equal(sizes[0], s)); // grown once for the bursts, never shrunk and grown again
        Assert.InRange(sizes[0], 61 * 1000, int.MaxValue);
    }
}
