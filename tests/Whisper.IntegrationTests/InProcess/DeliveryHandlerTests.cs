using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Xunit;

namespace Whisper.IntegrationTests.InProcess;

/// <summary>The allocation-free API: <see cref="WhisperNodeOptions.DeliveryHandler"/> and <see cref="WhisperNode.TryBroadcast"/>.</summary>
public sealed class DeliveryHandlerTests
{
    private static readonly TimeSpan Wait = InProcessGroup.Expectation;

    private sealed record Seen(MessageId Id, string From, string? To, string Text, ClockEntry[] Deps, Arrival Arrival);

    [Fact]
    public async Task TryBroadcastAndTheDeliveryHandlerCarryTheSameMessagesInOrderAsTheEventStream()
    {
        await using var group = await InProcessGroup.StartAsync();
        var fast = new ConcurrentQueue<Seen>();
        var bobSeen = new ConcurrentQueue<Seen>();
        var alice = await group.JoinAsync("alice", o => o with { DeliveryHandler = Collect(fast), MaxQueuedBroadcasts = 4 });
        var bob = await group.JoinAsync("bob", o => o with { DeliveryHandler = Collect(bobSeen) });
        var carol = await group.JoinAsync("carol");
        foreach (var n in new[] { alice, bob, carol })
        {
            await InProcessGroup.WaitUntilSeesAsync(n, ["alice", "bob", "carol"]);
        }

        // 300 broadcasts through the fast path, retried while the node pushes back (at most 4 queued).
        var texts = Enumerable.Range(0, 300).Select(i => $"fast {i} " + new string((char)('a' + (i % 26)), i % 200)).ToList();
        var clock = Stopwatch.StartNew();
        foreach (var text in texts)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            while (!alice.Node.TryBroadcast(bytes))
            {
                Assert.True(clock.Elapsed < Wait, "the node never took the broadcast");
                await Task.Delay(1);
            }

            bytes.AsSpan().Fill(0); // the node copied it
        }

        await alice.Node.SendPrivateAsync("bob", "a private word");
        var last = await carol.WaitForMessageAsync(texts[^1], Wait);
        await WaitUntil(() => bobSeen.Any(s => s.To == "bob") && fast.Count(s => s.From == "alice") == texts.Count);

        Assert.Equal(texts, carol.Messages.Where(m => m.From == "alice").Select(m => m.Text));
        Assert.Equal(texts, bobSeen.Where(s => s.From == "alice" && s.To is null).Select(s => s.Text));
        Assert.Equal(texts, fast.Where(s => s.From == "alice").Select(s => s.Text)); // own broadcasts too
        var ids = carol.Messages.Where(m => m.From == "alice").Select(m => m.Id).ToList();
        Assert.Equal(ids, bobSeen.Where(s => s.From == "alice" && s.To is null).Select(s => s.Id));
        Assert.All(bobSeen.Where(s => s.To is null), s => Assert.Equal(Arrival.Live, s.Arrival));
        Assert.Equal(last.Deps, VectorClock.From(bobSeen.Single(s => s.Id == last.Id).Deps));

        var privateWord = Assert.Single(bobSeen, s => s.To == "bob");
        Assert.Equal(("alice", "a private word", MessageKind.Private), (privateWord.From, privateWord.Text, privateWord.Id.Kind));

        // With a handler, messages do not also go to the event stream; member changes still do.
        Assert.Empty(bob.Messages);
        Assert.Contains(bob.Events, e => e is MemberChanged);
    }

    [Fact]
    public async Task TryBroadcastRefusesWhenTheNodeIsNotAMemberAndThrowsForOversizedText()
    {
        await using var group = await InProcessGroup.StartAsync();
        var alice = await group.JoinAsync("alice");
        Assert.Throws<MessageTooLargeException>(() => alice.Node.TryBroadcast(new byte[alice.Node.Options.Engine.MaxMessageBytes + 1]));

        await alice.Node.LeaveAsync();
        Assert.False(alice.Node.TryBroadcast("after leaving"u8));
    }

    private static WhisperDeliveryHandler Collect(ConcurrentQueue<Seen> into) =>
        (in WhisperDelivery d) => into.Enqueue(new Seen(d.Id, d.From, d.To, Encoding.UTF8.GetString(d.Utf8Text), d.Deps.ToArray(), d.Arrival));

    private static async Task WaitUntil(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < Wait, "condition not met in time");
            await Task.Delay(10);
        }
    }
}
