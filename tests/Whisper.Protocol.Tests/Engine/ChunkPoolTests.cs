using System.Text;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>
/// The engine recycles broadcast chunks (payload and dependency buffers included) through a <see cref="FramePool"/>.
/// These tests pin the ownership rules: a queue never yields a recycled chunk, a chunk is never returned twice, and
/// under loss, reordering, relays and a crashed sender every payload still arrives byte for byte while every rented
/// chunk is either stored by its stream or back in the pool.
/// </summary>
public sealed class ChunkPoolTests
{
    private static readonly MemberId Origin = new(0x1234);

    [Fact]
    public void A_queued_chunk_that_went_back_to_the_pool_is_skipped_not_sent_as_whatever_it_became()
    {
        var pool = new FramePool();
        var queue = new FrameQueue();
        var first = pool.RentChunk(Origin, 1, ChunkFlags.First | ChunkFlags.Last, true, [new ClockEntry(Origin, 0)], "first"u8);
        var ping = new PingFrame(7);
        queue.Enqueue(first);
        queue.Enqueue(ping);

        pool.Return(first);
        var second = pool.RentChunk(Origin, 2, ChunkFlags.First | ChunkFlags.Last, true, [], "second"u8);
        Assert.Same(first, second); // the same object, now another chunk
        queue.Enqueue(second);

        Assert.True(queue.TryDequeue(out var a));
        Assert.Same(ping, a); // the stale entry for seq 1 was dropped
        Assert.True(queue.TryDequeue(out var b));
        var chunk = Assert.IsType<ChunkFrame>(b);
        Assert.Equal(2UL, chunk.Seq);
        Assert.Equal("second", Encoding.UTF8.GetString(chunk.Payload.Span));
        Assert.False(queue.TryDequeue(out _));
    }

    [Fact]
    public void Purging_stale_entries_keeps_the_order_of_the_others()
    {
        var pool = new FramePool();
        var queue = new FrameQueue();
        var stale = pool.RentChunk(Origin, 1, ChunkFlags.First | ChunkFlags.Last, true, [], "x"u8);
        var live = pool.RentChunk(Origin, 2, ChunkFlags.First | ChunkFlags.Last, true, [], "y"u8);
        queue.Enqueue(new PingFrame(1));
        queue.Enqueue(stale);
        queue.Enqueue(live);
        queue.Enqueue(new PingFrame(2));
        pool.Return(stale);

        Assert.Equal(3, queue.PurgeStale());
        Assert.Equal(1UL, Assert.IsType<PingFrame>(queue.Dequeue()).Token);
        Assert.Same(live, queue.Dequeue());
        Assert.Equal(2UL, Assert.IsType<PingFrame>(queue.Dequeue()).Token);
    }

    [Fact]
    public void Returning_a_chunk_twice_fails_loudly_and_chunks_built_by_hand_are_never_pooled()
    {
        var pool = new FramePool();
        var chunk = pool.RentChunk(Origin, 1, ChunkFlags.First | ChunkFlags.Last, true, [], "x"u8);
        pool.Return(chunk);
        Assert.Throws<InvalidOperationException>(() => pool.Return(chunk));

        var byHand = new ChunkFrame(Origin, 1, ChunkFlags.First | ChunkFlags.Last, VectorClock.Empty, new byte[] { 1 });
        pool.Return(byHand);
        Assert.Equal(0, pool.Outstanding);
        Assert.NotSame(byHand, pool.RentChunk(Origin, 2, ChunkFlags.Last, false, [], []));
    }

    [Fact]
    public void A_trim_keeps_what_the_last_period_needed_and_a_later_one_gives_back_a_past_burst()
    {
        var pool = new FramePool();
        List<ChunkFrame> Rent(int count) =>
            [.. Enumerable.Range(1, count).Select(i => pool.RentChunk(Origin, (ulong)i, ChunkFlags.First | ChunkFlags.Last, true, [], "x"u8))];

        var burst = Rent(100);
        burst.ForEach(pool.Return);
        Assert.Equal(0, pool.Trim()); // the period's peak was 100 rented: all 100 are needed to reach it again
        Assert.Equal(100, pool.Available);

        var steady = Rent(30); // the next period needs 30 at once
        Assert.Equal(70, pool.Available);
        Assert.Equal(70, pool.Trim()); // its peak, 30, is all rented now: no free chunk is needed to reach it
        Assert.Equal(0, pool.Available);

        steady.ForEach(pool.Return);
        Assert.Equal(0, pool.Trim()); // this period began with 30 rented: they may all be needed again
        Assert.Equal(30, pool.Available);
        Assert.Equal(30, pool.Trim()); // a period that rented nothing: everything goes
        Assert.Equal(0, pool.Available);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_pool_never_keeps_more_free_chunks_than_its_bound()
    {
        var pool = new FramePool(maxPooled: 4);
        var chunks = Enumerable.Range(1, 10).Select(i => pool.RentChunk(Origin, (ulong)i, ChunkFlags.Last, false, [], "x"u8)).ToList();

        chunks.ForEach(pool.Return);

        Assert.Equal(4, pool.Available);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_pooled_decode_copies_the_payload_and_deps_out_of_the_datagram()
    {
        var deps = VectorClock.From([new ClockEntry(new MemberId(5), 3), new ClockEntry(new MemberId(9), 1)]);
        var bytes = WireCodec.Encode(new DatagramHeader(new MemberId(1), new MemberId(2)), new ChunkFrame(Origin, 4, ChunkFlags.First, deps, "payload"u8.ToArray()));
        var pool = new FramePool();
        var frames = new List<Frame>();

        Assert.Equal(DecodeStatus.Ok, WireCodec.TryDecode(bytes, out _, frames, pool));
        bytes.AsSpan().Fill(0xEE); // the datagram buffer is reused by the caller
        var chunk = Assert.IsType<ChunkFrame>(Assert.Single(frames));

        Assert.Equal("payload", Encoding.UTF8.GetString(chunk.Payload.Span));
        Assert.Equal(deps, chunk.Deps);
        Assert.Equal(1, pool.Outstanding);

        frames.Clear();
        Assert.NotEqual(DecodeStatus.Ok, WireCodec.TryDecode(bytes, out _, frames, pool)); // garbage: nothing stays rented
        Assert.Equal(1, pool.Outstanding);
    }

    [Fact]
    public void Under_loss_relays_and_a_crashed_sender_every_payload_arrives_byte_for_byte_and_every_chunk_is_accounted_for()
    {
        var net = new EngineHarness();
        string[] names = ["a", "b", "c", "d"];
        net.Form(names);
        var loss = new Random(7);
        net.Drop = _ => loss.NextDouble() < 0.25;
        var sent = names.ToDictionary(n => n, _ => new List<string>());
        for (var round = 0; round < 40; round++)
        {
            foreach (var name in names)
            {
                if (name == "d" && round > 30)
                {
                    continue; // crashed
                }

                // Lengths from a few bytes to three chunks; the content depends on sender, round and position.
                var length = round % 5 == 0 ? 2_600 + round : 10 + (round * 13 % 300);
                var text = $"{name}{round}:" + string.Create(length, (name, round), static (span, s) =>
                {
                    for (var i = 0; i < span.Length; i++)
                    {
                        span[i] = (char)('a' + ((i * 7) + (s.round * 3) + s.name[0]) % 26);
                    }
                });
                Assert.True(net.Broadcast(name, text).IsAccepted);
                sent[name].Add(text);
            }

            net.RunFor(TimeSpan.FromMilliseconds(3));
            if (round == 30)
            {
                net["d"].Crashed = true; // what d said reaches the others only through whoever holds it
            }
        }

        net.RunFor(TimeSpan.FromSeconds(2));
        net.Drop = _ => false;
        net.RunFor(TimeSpan.FromSeconds(20)); // d is declared down, its stream completed among the survivors and retired

        string[] survivors = ["a", "b", "c"];
        foreach (var name in survivors)
        {
            var node = net[name];
            foreach (var origin in survivors)
            {
                Assert.Equal(sent[origin].Select(t => $"b:{origin}:{t}"), node.Texts.Where(t => t.StartsWith($"b:{origin}:", StringComparison.Ordinal)));
            }

            // Agreement on the crashed sender: the same prefix of what it sent, at every survivor.
            var fromD = node.Texts.Where(t => t.StartsWith("b:d:", StringComparison.Ordinal)).ToList();
            Assert.Equal(sent["d"].Take(fromD.Count).Select(t => $"b:d:{t}"), fromD);
            Assert.Equal(net["a"].Texts.Count(t => t.StartsWith("b:d:", StringComparison.Ordinal)), fromD.Count);
            Assert.True(fromD.Count >= 30 * 1, $"{name} delivered only {fromD.Count} of d's messages");

            Assert.Equal(node.Engine.Footprint.BufferedChunks, node.Engine.ChunkPool.Outstanding);
            Assert.Equal(0, node.Engine.Footprint.BufferedChunks); // all stable (or retired) and released
        }

        Assert.True(survivors.Sum(n => net[n].Engine.Stats.ChunksRelayed) > 0, "the run must exercise relays");
        Assert.True(survivors.Sum(n => net[n].Engine.Stats.DuplicateChunks) > 0, "the run must exercise rejected (returned) chunks");
    }
}
