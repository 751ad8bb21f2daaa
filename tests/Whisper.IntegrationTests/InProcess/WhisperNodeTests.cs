using System.Net;
using System.Net.Sockets;
using System.Text;
using Whisper.Net;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.IntegrationTests.InProcess;

/// <summary>The library API: WhisperNodes and a DiscoveryServer in this process, over loopback UDP.</summary>
public sealed class WhisperNodeTests
{
    private static readonly TimeSpan Wait = InProcessGroup.Expectation;

    [Fact]
    public async Task BroadcastReachesEveryMemberIncludingTheSender()
    {
        await using var group = await InProcessGroup.StartAsync();
        var (alice, bob, carol) = Three(await group.JoinAllAsync("alice", "bob", "carol"));

        var id = await alice.Node.BroadcastAsync("hello group");

        foreach (var node in new[] { alice, bob, carol })
        {
            var m = await node.WaitForMessageAsync("hello group", Wait);
            Assert.Equal(id, m.Id);
            Assert.Equal(MessageKind.Broadcast, m.Kind);
            Assert.Equal("alice", m.From);
            Assert.Null(m.To);
        }
    }

    [Fact]
    public async Task WhenJoinReturnsItsStateAndMemberListAlreadyShowTheMembersItWasAdmittedWith()
    {
        // JoinAsync completes on another thread than the driver's: a chat that lists node.Members right after it once
        // showed a newcomer without the member it had just been introduced to (no later event adds an existing member).
        await using var group = await InProcessGroup.StartAsync();
        for (var i = 0; i < 8; i++)
        {
            var node = (await group.JoinAsync($"n{i}")).Node;

            Assert.Equal(EngineState.Joined, node.State);
            var listed = node.Members.Select(m => m.Member.Name).ToHashSet();
            Assert.All(node.InitialMembers, m => Assert.Contains(m.Name, listed));
            Assert.Contains(node.Members, m => m.IsSelf && m.Member.Name == $"n{i}");
        }
    }

    [Fact]
    public async Task ReplyIsDeliveredAfterTheMessageItAnswersAndCarriesItInItsDependencies()
    {
        await using var group = await InProcessGroup.StartAsync();
        var (alice, bob, carol) = Three(await group.JoinAllAsync("alice", "bob", "carol"));

        var question = await alice.Node.BroadcastAsync("question?");
        await bob.WaitForMessageAsync("question?", Wait);
        await bob.Node.BroadcastAsync("answer!");
        var answer = await carol.WaitForMessageAsync("answer!", Wait);

        var texts = carol.Messages.Select(m => m.Text).ToList();
        Assert.True(texts.IndexOf("question?") is >= 0 and var q && q < texts.IndexOf("answer!"), string.Join(" | ", texts));
        Assert.True(answer.Deps[question.Origin] >= question.Seq, $"deps {answer.Deps} should cover {question}");
    }

    [Fact]
    public async Task PrivateMessageReachesItsRecipientOnly()
    {
        await using var group = await InProcessGroup.StartAsync();
        var (alice, bob, carol) = Three(await group.JoinAllAsync("alice", "bob", "carol"));

        var id = await alice.Node.SendPrivateAsync("bob", "just for bob");
        var m = await bob.WaitForMessageAsync("just for bob", Wait);
        await alice.Node.BroadcastAsync("marker after the private message");
        await carol.WaitForMessageAsync("marker after the private message", Wait);
        await alice.WaitForMessageAsync("marker after the private message", Wait);

        Assert.Equal(id, m.Id);
        Assert.Equal((MessageKind.Private, "alice", "bob"), (m.Kind, m.From, m.To));
        Assert.DoesNotContain(carol.Messages, x => x.Text == "just for bob");
        Assert.DoesNotContain(alice.Messages, x => x.Text == "just for bob");
    }

    [Fact]
    public async Task PrivateMessagesFromOneSenderArriveInTheOrderSent()
    {
        await using var group = await InProcessGroup.StartAsync();
        var nodes = await group.JoinAllAsync("alice", "bob");

        var sends = Enumerable.Range(0, 50).Select(i => nodes[0].Node.SendPrivateAsync("bob", $"p{i}")).ToArray();
        await Task.WhenAll(sends);
        await nodes[1].WaitForMessageAsync("p49", Wait);

        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"p{i}"), nodes[1].Messages.Where(m => m.Kind == MessageKind.Private).Select(m => m.Text));
    }

    [Fact]
    public async Task SendPrivateToANameOutsideTheGroupThrowsUnknownMemberException()
    {
        await using var group = await InProcessGroup.StartAsync();
        var alice = (await group.JoinAllAsync("alice"))[0];

        var error = await Assert.ThrowsAsync<UnknownMemberException>(() => alice.Node.SendPrivateAsync("zoe", "hello?"));

        Assert.Equal("zoe", error.Name);
        Assert.Contains("zoe", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BroadcastAboveSixtyFourKibibytesThrowsMessageTooLargeException()
    {
        await using var group = await InProcessGroup.StartAsync();
        var alice = (await group.JoinAllAsync("alice"))[0];

        var error = await Assert.ThrowsAsync<MessageTooLargeException>(() => alice.Node.BroadcastAsync(new string('é', 40_000)));

        Assert.Equal(80_000, error.ActualBytes);
        Assert.Equal(64 * 1024, error.MaxBytes);
        Assert.Contains("80000 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BroadcastOfExactlySixtyFourKibibytesArrivesIntact()
    {
        await using var group = await InProcessGroup.StartAsync();
        var nodes = await group.JoinAllAsync("alice", "bob");
        var text = string.Concat(Enumerable.Range(0, 64 * 1024 / 8).Select(i => $"{i % 10000000:D7}|"));
        Assert.Equal(64 * 1024, Encoding.UTF8.GetByteCount(text));

        await nodes[0].Node.BroadcastAsync(text);

        var m = await nodes[1].WaitForAsync<ChatMessage>(m => m.From == "alice", Wait, "bob delivers the large message");
        Assert.Equal(text, m.Text);
    }

    [Fact]
    public async Task SendsWaitForFlowControlAndAllArriveInOrder()
    {
        await using var group = await InProcessGroup.StartAsync();
        var alice = await group.JoinAsync("alice", o => o with { Engine = o.Engine with { SendWindowChunks = 128 } });
        var bob = await group.JoinAsync("bob");
        await InProcessGroup.WaitUntilSeesAsync(alice, ["bob"]);
        EventRecorder[] nodes = [alice, bob];
        var payload = new string('w', 60 * 1024);

        // 30 messages of ~55 chunks each exceed alice's 128-chunk send window thirteen times over: the window fills
        // within the first three sends handled together, however fast bob acknowledges.
        var sends = Enumerable.Range(0, 30).Select(i => nodes[0].Node.BroadcastAsync($"{i:D2}:{payload}")).ToArray();
        await Task.WhenAll(sends).WaitAsync(Wait);
        await nodes[1].WaitForAsync<ChatMessage>(m => m.Text.StartsWith("29:", StringComparison.Ordinal), Wait, "bob delivers the last one");

        var stats = await nodes[0].Node.GetStatsAsync();
        Assert.True(stats.SendsDeferred > 0, $"expected flow control to defer sends: {stats}");
        Assert.Equal(Enumerable.Range(0, 30).Select(i => $"{i:D2}"), nodes[1].Messages.Select(m => m.Text[..2]));
    }

    [Fact]
    public async Task JoinWithATakenNameThrowsWhisperJoinExceptionWithNameTaken()
    {
        await using var group = await InProcessGroup.StartAsync();
        await group.JoinAllAsync("alice");

        var error = await Assert.ThrowsAsync<WhisperJoinException>(() => WhisperNode.JoinAsync(group.Options("alice")));

        Assert.Equal(DenyReason.NameTaken, error.Reason);
    }

    [Fact]
    public async Task JoinOfAFullGroupThrowsWhisperJoinExceptionWithFull()
    {
        await using var group = await InProcessGroup.StartAsync(maxMembers: 2);
        await group.JoinAllAsync("alice", "bob");

        var error = await Assert.ThrowsAsync<WhisperJoinException>(() => WhisperNode.JoinAsync(group.Options("carol")));

        Assert.Equal(DenyReason.Full, error.Reason);
    }

    [Fact]
    public async Task JoinWithAnInvalidNameThrowsWhisperJoinExceptionWithInvalidNameAndTheRule()
    {
        var error = await Assert.ThrowsAsync<WhisperJoinException>(() => WhisperNode.JoinAsync(new WhisperNodeOptions { Name = "no spaces please" }));

        Assert.Equal(DenyReason.InvalidName, error.Reason);
        Assert.Contains("1-32 characters", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task JoinWithNoServerListeningThrowsWhisperJoinExceptionWithUnreachable()
    {
        using var silent = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)); // bound, never answers
        var options = new WhisperNodeOptions
        {
            Name = "lonely",
            Server = (IPEndPoint)silent.Client.LocalEndPoint!,
            Engine = new EngineOptions { JoinAttempts = 3, JoinRetryInterval = TimeSpan.FromMilliseconds(100) },
        };

        var error = await Assert.ThrowsAsync<WhisperJoinException>(() => WhisperNode.JoinAsync(options).WaitAsync(Wait));

        Assert.Equal(DenyReason.Unreachable, error.Reason);
    }

    [Fact]
    public async Task LeaveAsyncTellsTheOthersAndEndsTheEventStream()
    {
        await using var group = await InProcessGroup.StartAsync();
        var (alice, bob, carol) = Three(await group.JoinAllAsync("alice", "bob", "carol"));

        await carol.Node.BroadcastAsync("bye all");
        await carol.Node.LeaveAsync();

        await carol.Completion.WaitAsync(Wait);
        Assert.Equal(EngineState.Left, carol.Node.State);
        foreach (var node in new[] { alice, bob })
        {
            await node.WaitForMessageAsync("bye all", Wait);
            await node.WaitForAsync<MemberChanged>(c => c.Name == "carol" && c.Status == MemberStatus.Left, Wait, "sees carol left");
        }

        await Assert.ThrowsAsync<InvalidOperationException>(() => carol.Node.BroadcastAsync("too late"));
    }

    [Fact]
    public async Task DisposeAsyncLeavesTheGroupGracefully()
    {
        await using var group = await InProcessGroup.StartAsync();
        var nodes = await group.JoinAllAsync("alice", "bob");

        await nodes[1].Node.DisposeAsync();

        await nodes[0].WaitForAsync<MemberChanged>(c => c.Name == "bob" && c.Status == MemberStatus.Left, Wait, "sees bob left");
        await nodes[1].Completion.WaitAsync(Wait);
    }

    [Fact]
    public async Task MembersSnapshotListsEveryMemberUpAndMarksSelf()
    {
        await using var group = await InProcessGroup.StartAsync();
        var (alice, _, _) = Three(await group.JoinAllAsync("alice", "bob", "carol"));

        var members = await Eventually(
            () => Task.FromResult(alice.Node.Members),
            m => m.Count(x => x.Status == MemberStatus.Up) == 3,
            "alice's snapshot lists three members up");

        Assert.Equal(["alice", "bob", "carol"], members.Select(m => m.Member.Name).Order(StringComparer.Ordinal));
        Assert.Equal("alice", Assert.Single(members, m => m.IsSelf).Member.Name);
    }

    [Fact]
    public async Task HostileDatagramsAreCountedAndDroppedAndTheNodeKeepsWorking()
    {
        await using var group = await InProcessGroup.StartAsync();
        var nodes = await group.JoinAllAsync("alice", "bob");
        using var attacker = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var random = new Random(42);
        for (var i = 0; i < 200; i++)
        {
            var junk = new byte[random.Next(0, 1500)];
            random.NextBytes(junk);
            if (i % 2 == 0 && junk.Length >= 3)
            {
                junk[0] = (byte)'W';
                junk[1] = (byte)'H';
                junk[2] = WireCodec.Version; // looks like ours, then garbage
            }

            await attacker.SendAsync(junk, nodes[0].Node.LocalEndpoint);
        }

        await attacker.SendAsync(new byte[4000], nodes[0].Node.LocalEndpoint);
        await nodes[1].Node.BroadcastAsync("still fine");
        await nodes[0].WaitForMessageAsync("still fine", Wait);

        var stats = await Eventually(() => nodes[0].Node.GetStatsAsync(), s => s.MalformedDropped + s.OversizedDropped + s.ForeignDropped >= 150, "the junk is counted");
        Assert.True(stats.OversizedDropped >= 1, stats.ToString());
        Assert.Equal(EngineState.Joined, nodes[0].Node.State);
    }

    [Fact]
    public async Task NodesOnALossyNetworkStillDeliverEveryBroadcastOnceInOrder()
    {
        await using var group = await InProcessGroup.StartAsync();
        var lossy = (Func<WhisperNodeOptions, WhisperNodeOptions>)(o => o with
        {
            Faults = new FaultOptions { DropIncoming = 0.3, DropOutgoing = 0.1, DuplicateOutgoing = 0.1, Seed = o.Name.Length },
        });
        var alice = await group.JoinAsync("alice", lossy);
        var bob = await group.JoinAsync("bob", lossy);
        await InProcessGroup.WaitUntilSeesAsync(alice, ["alice", "bob"]);
        await InProcessGroup.WaitUntilSeesAsync(bob, ["alice", "bob"]);

        for (var i = 0; i < 40; i++)
        {
            await alice.Node.BroadcastAsync($"m{i:D2}");
        }

        await bob.WaitForMessageAsync("m39", Wait);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"m{i:D2}"), bob.Messages.Where(m => m.From == "alice").Select(m => m.Text));
    }

    private static (EventRecorder, EventRecorder, EventRecorder) Three(EventRecorder[] nodes) => (nodes[0], nodes[1], nodes[2]);

    /// <summary>Polls a snapshot until it satisfies <paramref name="condition"/>, bounded by the expectation timeout.</summary>
    private static async Task<T> Eventually<T>(Func<Task<T>> read, Func<T, bool> condition, string description)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (true)
        {
            var value = await read();
            if (condition(value))
            {
                return value;
            }

            if (DateTime.UtcNow >= deadline)
            {
                Assert.Fail($"not within {Wait.TotalSeconds} s: {description}; last value {value}");
            }

            await Task.Delay(20);
        }
    }
}
