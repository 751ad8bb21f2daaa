using System.Text;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>
/// The engine copies the encoded chunks that opened its previous datagram into the next one when that opens with the
/// same chunks (a broadcast goes to every member). A copied byte that a fresh encoding would not have written is a
/// corrupt or wrong message at the receiver, so these tests compare every datagram with a fresh encoding of what it
/// decodes to, and pin the rules that make a copy valid: the same chunk objects at the same generation, in order from
/// the start of the run, within the room left.
/// </summary>
public sealed class ChunkRunCacheTests
{
    private static readonly MemberId Origin = new(0x1234);

    [Fact]
    public void Only_the_chunks_that_open_the_cached_run_in_the_same_order_are_taken()
    {
        var pool = new FramePool();
        var a = pool.RentChunk(Origin, 1, ChunkFlags.First | ChunkFlags.Last, true, [], "a"u8);
        var b = pool.RentChunk(Origin, 2, ChunkFlags.First | ChunkFlags.Last, true, [], "b"u8);
        var cache = new ChunkRunCache(WireCodec.MaxDatagramSize);
        Assert.True(cache.Append(a, [1, 2, 3]));
        Assert.True(cache.Append(b, [4, 5]));

        var outbox = new FrameQueue();
        outbox.Enqueue(b); // not the run's first chunk
        outbox.Enqueue(a);
        var taken = new List<Frame>();
        Assert.Equal(0, cache.TakeRun(0, outbox, room: 1000, taken, out _, out var bytes));
        Assert.Equal(0, bytes);
        Assert.Empty(taken);
        Assert.Equal(2, outbox.Count);

        var inOrder = new FrameQueue();
        inOrder.Enqueue(a);
        inOrder.Enqueue(b);
        inOrder.Enqueue(new PingFrame(1));
        Assert.Equal(2, cache.TakeRun(0, inOrder, room: 1000, taken, out _, out bytes));
        Assert.Equal(5, bytes);
        Assert.Equal([1, 2, 3, 4, 5], cache.Bytes(0, bytes).ToArray());
        Assert.Equal([a, b], taken);
        Assert.IsType<PingFrame>(inOrder.Dequeue()); // what did not match stays queued
    }

    [Fact]
    public void A_datagram_that_begins_inside_the_cached_run_reuses_what_follows_its_first_chunk()
    {
        var pool = new FramePool();
        var a = pool.RentChunk(Origin, 1, ChunkFlags.First | ChunkFlags.Last, true, [], "a"u8);
        var b = pool.RentChunk(Origin, 2, ChunkFlags.First | ChunkFlags.Last, true, [], "b"u8);
        var c = pool.RentChunk(Origin, 3, ChunkFlags.First | ChunkFlags.Last, true, [], "c"u8);
        var cache = new ChunkRunCache(WireCodec.MaxDatagramSize);
        cache.Append(a, [1, 1]);
        cache.Append(b, [2, 2, 2]);
        cache.Append(c, [3]);
        var outbox = new FrameQueue();
        outbox.Enqueue(b);
        outbox.Enqueue(c);

        Assert.Equal(1, cache.IndexOfHead(outbox)); // b: the caller writes it afresh (first in its datagram) ...
        outbox.Dequeue();
        var taken = new List<Frame>();
        Assert.Equal(1, cache.TakeRun(2, outbox, room: 1000, taken, out var start, out var end)); // ... and copies c
        Assert.Equal([3], cache.Bytes(start, end).ToArray());
        Assert.Equal(6, cache.EndOf(2));
        Assert.Same(c, Assert.Single(taken));
    }

    [Fact]
    public void A_prefix_stops_where_the_room_ends()
    {
        var pool = new FramePool();
        var a = pool.RentChunk(Origin, 1, ChunkFlags.First | ChunkFlags.Last, true, [], "a"u8);
        var b = pool.RentChunk(Origin, 2, ChunkFlags.First | ChunkFlags.Last, true, [], "b"u8);
        var cache = new ChunkRunCache(WireCodec.MaxDatagramSize);
        cache.Append(a, new byte[100]);
        cache.Append(b, new byte[100]);
        var outbox = new FrameQueue();
        outbox.Enqueue(a);
        outbox.Enqueue(b);

        Assert.Equal(1, cache.TakeRun(0, outbox, room: 150, [], out _, out var bytes));
        Assert.Equal(100, bytes);
        Assert.Same(b, outbox.Dequeue());
    }

    [Fact]
    public void A_chunk_recycled_into_another_message_never_matches_its_old_bytes()
    {
        var pool = new FramePool();
        var a = pool.RentChunk(Origin, 1, ChunkFlags.First | ChunkFlags.Last, true, [], "old"u8);
        var cache = new ChunkRunCache(WireCodec.MaxDatagramSize);
        cache.Append(a, [9, 9, 9]);
        pool.Return(a);
        var again = pool.RentChunk(Origin, 2, ChunkFlags.First | ChunkFlags.Last, true, [], "new"u8);
        Assert.Same(a, again); // the same object, now another chunk

        var outbox = new FrameQueue();
        outbox.Enqueue(again);
        Assert.Equal(0, cache.TakeRun(0, outbox, room: 1000, [], out _, out _));
    }

    /// <summary>Messages of one datagram's chunk each, or every third of three chunks (so datagrams also begin at a chunk without deps).</summary>
    private static string Text(bool long_, int round, int k) =>
        $"round {round} message {k} " + new string((char)('a' + k % 26), long_ && k % 3 == 0 ? 2_500 : 60 + k);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_datagram_of_a_burst_to_many_members_is_byte_for_byte_a_fresh_encoding_of_what_it_carries(bool longMessages)
    {
        var net = new EngineHarness(new EngineOptions { RedundantSendAboveLoss = 1 }); // no second copies: each chunk once per member
        net.Form("a", "b", "c", "d", "e");
        net.RunFor(TimeSpan.FromSeconds(1));
        var alice = net["a"].Engine;

        // Three rounds: a burst queued without draining, then every datagram checked; between rounds the chunks become
        // stable and go back to the pool, so the later rounds send recycled chunk objects with new contents.
        var buffer = new byte[WireCodec.MaxDatagramSize];
        var seen = new Dictionary<string, List<string>>();
        for (var round = 0; round < 3; round++)
        {
            // b and c speak first: alice owes them an ack, which opens her next datagram to them.
            foreach (var speaker in new[] { "b", "c" })
            {
                Assert.True(net[speaker].Engine.Broadcast(Encoding.UTF8.GetBytes($"{speaker} in round {round}"), net.Now).IsAccepted);
                net.Pump(net[speaker]);
            }

            net.Flush();

            // And private messages to c and e open her next datagrams to them: their broadcast chunks fall behind, so the
            // datagram to the member served after one of them begins inside that one's run (wherever the round-robin over
            // b, c, d, e starts, c or e has a successor in it).
            foreach (var to in new[] { "c", "e" })
            {
                Assert.True(alice.SendPrivate(to, Encoding.UTF8.GetBytes($"just for {to}, round {round}: " + new string('p', 300)), net.Now).IsAccepted);
            }
            for (var k = 0; k < 40; k++)
            {
                var text = Text(longMessages, round, k);
                Assert.True(alice.Broadcast(Encoding.UTF8.GetBytes(text), net.Now).IsAccepted);
            }

            var chunkDatagrams = 0;
            while (alice.TryPollTransmit(buffer, out var length, out var destination))
            {
                var bytes = buffer[..length];
                var frames = new List<Frame>();
                Assert.Equal(DecodeStatus.Ok, WireCodec.TryDecode(bytes, out var header, frames));
                Assert.Equal(bytes, WireCodec.Encode(header, [.. frames]));
                var texts = frames.OfType<ChunkFrame>().Where(c => (c.Flags & ChunkFlags.Last) != 0).Select(c => Encoding.UTF8.GetString(c.Payload.Span)).ToList();
                if (texts.Count > 0)
                {
                    chunkDatagrams++;
                    var key = destination.ToString();
                    seen.TryAdd(key, []);
                    seen[key].AddRange(texts);
                }

                net.NodeAt(destination)?.Engine.OnDatagram(net.Nodes[0].Endpoint, bytes, net.Now);
            }

            Assert.True(chunkDatagrams >= 4 * 2, $"round {round}: {chunkDatagrams} datagrams with chunks"); // each peer needs several
            foreach (var n in net.Nodes.Skip(1))
            {
                net.Pump(n);
            }

            net.RunFor(TimeSpan.FromMilliseconds(200)); // acks make the chunks stable: they are recycled
        }

        Assert.True(alice.RunCache.Reused > 0, "no chunk was copied");
        Assert.True(longMessages || alice.RunCache.ReusedInside > 0, "no datagram began inside the cached run"); // with short messages, one does

        // Every member got every message, in order, exactly once.
        var expected = Enumerable.Range(0, 3).SelectMany(r => Enumerable.Range(0, 40).Select(k => Text(longMessages, r, k))).ToList();
        Assert.Equal(4, seen.Count);
        Assert.All(seen.Values, lasts => Assert.Equal(expected.Count, lasts.Count)); // each message's last chunk once to each member
        Assert.All(net.Nodes.Skip(1), n => Assert.Equal(expected, n.Delivered.Where(m => m.From.Name == "a" && m.Kind == MessageKind.Broadcast).Select(m => Encoding.UTF8.GetString(m.Payload)).ToList()));
    }
}
