using Whisper.IntegrationTests.Harness;
using Xunit;
using static Whisper.IntegrationTests.Harness.Problems;

namespace Whisper.IntegrationTests.Processes;

/// <summary>Three real whisper node processes on loopback, driven through the JSON-lines interface.</summary>
[Collection(ProcessCollection.Name)]
public sealed class ThreeNodeGroupTests(ThreeNodeGroup group) : IClassFixture<ThreeNodeGroup>
{
    private static readonly TimeSpan Wait = ProcessCluster.Expectation;

    [Fact]
    public async Task CarolDeliversTheQuestionBeforeTheReplyBobSentAfterSeeingIt()
    {
        var question = Unique("question");
        var reply = Unique("reply");

        group.Alice.Broadcast(question);
        var seen = await group.Bob.WaitForAsync(l => l.IsMessage(question), Wait, "bob delivers the question");
        group.Bob.Broadcast(reply);
        var replyAtCarol = await group.Carol.WaitForAsync(l => l.IsMessage(reply), Wait, "carol delivers the reply");
        await group.Alice.WaitForAsync(l => l.IsMessage(reply), Wait, "alice delivers the reply");

        AssertNone(
            Transcripts.CheckDeliveredBefore("carol", group.Carol.Transcript(), question, reply)
                .Concat(Transcripts.CheckDeliveredBefore("alice", group.Alice.Transcript(), question, reply)),
            group.Carol, group.Alice);
        var deps = replyAtCarol.Deps();
        Assert.True(
            deps.TryGetValue(seen.Str("origin")!, out var covered) && covered >= (ulong)seen.Num("seq")!.Value,
            $"the reply's deps {replyAtCarol.Raw} should cover the question {seen.Raw}");
    }

    [Fact]
    public async Task PrivateMessageArrivesAfterTheBroadcastsItsSenderHadDelivered()
    {
        var fromCarol = Unique("carol-news");
        var fromBob = Unique("bob-news");
        var secret = Unique("secret");

        group.Carol.Broadcast(fromCarol);
        await group.Bob.WaitForAsync(l => l.IsMessage(fromCarol), Wait, "bob delivers carol's broadcast");
        group.Bob.Broadcast(fromBob);
        group.Bob.Private("alice", secret);
        var delivered = await group.Alice.WaitForAsync(l => l.IsMessage(secret), Wait, "alice delivers bob's private message");

        Assert.Equal("private", delivered.Str("kind"));
        Assert.Equal("bob", delivered.Str("from"));
        Assert.Equal("alice", delivered.Str("to"));
        var alice = group.Alice.Transcript();
        AssertNone(
            Transcripts.CheckDeliveredBefore("alice", alice, fromCarol, secret)
                .Concat(Transcripts.CheckDeliveredBefore("alice", alice, fromBob, secret)),
            group.Alice);
    }

    [Fact]
    public async Task PrivateMessageIsDeliveredOnlyToItsRecipient()
    {
        var secret = Unique("for-carol-only");
        var marker = Unique("after-secret");

        group.Alice.Private("carol", secret);
        await group.Carol.WaitForAsync(l => l.IsMessage(secret), Wait, "carol delivers alice's private message");
        group.Alice.Broadcast(marker);
        await group.Bob.WaitForAsync(l => l.IsMessage(marker), Wait, "bob delivers alice's later broadcast");
        await group.Alice.WaitForAsync(l => l.IsMessage(marker), Wait, "alice delivers her own later broadcast");

        Assert.DoesNotContain(group.Bob.Transcript(), l => l.Str("text") == secret);
        Assert.DoesNotContain(group.Alice.Transcript(), l => l.IsMessage(secret));
    }

    [Fact]
    public async Task SenderReceivesItsOwnBroadcastWithTheIdItWasSentUnder()
    {
        var text = Unique("own");
        group.Carol.Broadcast(text);

        var own = await group.Carol.WaitForAsync(l => l.IsMessage(text), Wait, "carol delivers her own broadcast");
        var sent = await group.Carol.WaitForAsync(l => l.Is("sent") && l.Str("id") == own.Str("id"), Wait, "carol reports the send");

        Assert.Equal("carol", own.Str("from"));
        Assert.Equal("broadcast", sent.Str("kind"));
        Assert.Single(group.Carol.Transcript(), l => l.IsMessage(text));
    }

    [Fact]
    public async Task MembersOpListsEveryMemberAsUpAndMarksItself()
    {
        var before = group.Bob.Transcript().Count;
        group.Bob.SendOp(("op", "members"));

        var answer = await group.Bob.WaitForAsync(l => l.Index >= before && l.Is("members"), Wait, "bob answers the members op");

        var members = answer.Json!.Value.GetProperty("members").EnumerateArray()
            .Select(m => (Name: m.GetProperty("name").GetString(), Status: m.GetProperty("status").GetString(), Self: m.TryGetProperty("self", out var s) && s.GetBoolean()))
            .ToList();
        foreach (var name in new[] { "alice", "bob", "carol" })
        {
            Assert.Contains(members, m => m.Name == name && m.Status == "up");
        }

        Assert.Equal("bob", Assert.Single(members, m => m.Self).Name);
    }

    [Fact]
    public async Task BadCommandsGetErrorEventsAndTheNodeKeepsWorking()
    {
        var before = group.Alice.Transcript().Count;
        group.Alice.Send("this is not json");
        group.Alice.Send("{\"op\":\"dance\"}");
        group.Alice.Send("{\"op\":\"broadcast\"}");
        group.Alice.Send("[1,2,3]");
        group.Alice.Private("nobody-here", "hello?");
        group.Alice.Broadcast(new string('x', (64 * 1024) + 1));
        var after = Unique("still-working");
        group.Alice.Broadcast(after);

        await group.Bob.WaitForAsync(l => l.IsMessage(after), Wait, "bob delivers alice's broadcast sent after the bad commands");
        await group.Alice.WaitUntilAsync(lines => lines.Skip(before).Count(l => l.Is("error")) >= 6, Wait, "alice reports six errors");

        var errors = group.Alice.Transcript().Skip(before).Where(l => l.Is("error")).Select(l => l.Str("message") ?? "").ToList();
        Assert.Equal(6, errors.Count);
        Assert.Contains(errors, e => e.Contains("invalid JSON", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("unknown op 'dance'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("missing field 'text'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("nobody-here", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("65537 bytes", StringComparison.Ordinal));
        Assert.False(group.Alice.HasExited);
    }

    [Fact]
    public async Task GracefulLeaveIsReportedAsLeftToTheOthersAndExitsWithZero()
    {
        var dave = await group.Cluster.StartNodeAsync("dave");
        foreach (var node in new[] { group.Alice, group.Bob, group.Carol })
        {
            await node.WaitForAsync(l => l.Is("member") && l.Str("name") == "dave" && l.Str("status") == "up", Wait, $"{node.Label} sees dave up");
        }

        await dave.WaitUntilAsync(lines => Transcripts.UpMembers(lines).IsSupersetOf(["alice", "bob", "carol", "dave"]), Wait, "dave sees everyone");
        var goodbye = Unique("goodbye");
        dave.Broadcast(goodbye);
        dave.SendOp(("op", "leave"));

        var exit = await dave.WaitForExitAsync(Wait);
        Assert.Equal(0, exit);
        Assert.True(dave.Transcript()[^1].Is("left"), dave.Describe());
        foreach (var node in new[] { group.Alice, group.Bob, group.Carol })
        {
            await node.WaitForAsync(l => l.IsMessage(goodbye), Wait, $"{node.Label} delivers dave's last broadcast");
            await node.WaitForAsync(l => l.Is("member") && l.Str("name") == "dave" && l.Str("status") == "left", Wait, $"{node.Label} sees dave left");
        }
    }
}
