using System.Diagnostics;
using Whisper.IntegrationTests.Harness;
using Whisper.IntegrationTests.Processes;
using Xunit;
using Xunit.Abstractions;
using static Whisper.IntegrationTests.Admission.Admissions;
using static Whisper.IntegrationTests.Harness.Problems;

namespace Whisper.IntegrationTests.Admission;

/// <summary>
/// A process killed with SIGKILL and started again under its name (on a new port) comes back as a new
/// incarnation once the server has proven the old one dead.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class RestartedNodeTests(ITestOutputHelper output)
{
    /// <summary>
    /// The server takes a name holder heard from within the last 375 ms for alive and denies the name at once
    /// (docs/protocol.md, "The discovery server"); only a quieter holder is probed. A real restart takes longer than
    /// that; on a warm machine a process can start in ~300 ms, so the test lets this much pass after the kill
    /// (the measured admission times below include it).
    /// </summary>
    private static readonly TimeSpan RestartDelay = TimeSpan.FromMilliseconds(500);

    [Fact]
    public async Task KilledNodeRestartedUnderItsNameIsAdmittedAsANewIncarnationWhoseMessagesAreNotConfusedWithTheOld()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            var (a, b, oldC) = await StartGroupAsync(cluster);
            var oldId = oldC.First("joined")!.Str("id")!;
            var fromOld = Unique("from-old-c");
            oldC.Broadcast(fromOld);
            oldC.Private("a", fromOld + "-private");
            await DeliveredAsync(a, fromOld);
            await DeliveredAsync(b, fromOld);
            await DeliveredAsync(a, fromOld + "-private");

            var (newC, newId) = await KillAndRestartAsync(cluster, a, b, oldC, oldId);

            var fromNew = Unique("from-new-c");
            newC.Broadcast(fromNew);
            newC.Private("a", fromNew + "-private");
            await DeliveredAsync(a, fromNew);
            await DeliveredAsync(b, fromNew);
            await DeliveredAsync(newC, fromNew);
            await DeliveredAsync(a, fromNew + "-private");

            // Both incarnations speak as "c" but under their own ids; each message once, the new c never sees the old one's.
            foreach (var node in new[] { a, b })
            {
                var lines = node.Transcript();
                Assert.Equal(oldId, Assert.Single(lines, l => l.IsMessage(fromOld)).Str("origin"));
                Assert.Equal(newId, Assert.Single(lines, l => l.IsMessage(fromNew)).Str("origin"));
            }

            Assert.Equal(oldId, Assert.Single(a.Transcript(), l => l.IsMessage(fromOld + "-private")).Str("origin"));
            Assert.Equal(newId, Assert.Single(a.Transcript(), l => l.IsMessage(fromNew + "-private")).Str("origin"));
            // The new c never gets the old one's messages live, nor its private one; the broadcast may come as marked history.
            Assert.DoesNotContain(newC.Transcript(), l => l.IsMessage(fromOld + "-private"));
            Assert.All(newC.Transcript().Where(l => l.IsMessage(fromOld)), l => Assert.True(
                l.Json!.Value.TryGetProperty("history", out var h) && h.GetBoolean() && l.Str("origin") == oldId, $"only as history of the old id: {l.Raw}"));
            AssertNone(
                new[] { a, b }.SelectMany(n => Transcripts.CheckBroadcastsExactlyOnce(n.Label, n.Transcript(), [fromOld, fromNew])
                    .Concat(Transcripts.CheckCausalOrder(n.Label, n.Transcript())))
                    .Concat(Transcripts.CheckPrivates("a", a.Transcript(), new Dictionary<string, List<string>> { ["c"] = [fromOld + "-private", fromNew + "-private"] })),
                a, b, newC);
        });
    }

    [Fact]
    public async Task RestartedNodeIsAFullMemberAgainMessagesFlowBothWaysAndItsNameReachesTheNewIncarnation()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            var (a, b, oldC) = await StartGroupAsync(cluster);
            var oldId = oldC.First("joined")!.Str("id")!;

            var (newC, newId) = await KillAndRestartAsync(cluster, a, b, oldC, oldId);

            var fromNew = Unique("from-new-c");
            var fromB = Unique("from-b");
            newC.Broadcast(fromNew);
            newC.Private("b", "new-c-to-b");
            b.Broadcast(fromB);
            a.Private("c", "a-to-c");
            foreach (var node in new[] { a, b, newC })
            {
                await DeliveredAsync(node, fromNew);
                await DeliveredAsync(node, fromB);
            }

            await DeliveredAsync(b, "new-c-to-b");
            var atNewC = await DeliveredAsync(newC, "a-to-c");
            Assert.Contains($">{newId}:", atNewC.Str("id"), StringComparison.Ordinal); // addressed to the new incarnation
            AssertNone(
                new[] { a, b, newC }.SelectMany(n => Transcripts.CheckBroadcastsExactlyOnce(n.Label, n.Transcript(), [fromNew, fromB]))
                    .Concat(Transcripts.CheckPrivates("b", b.Transcript(), new Dictionary<string, List<string>> { ["c"] = ["new-c-to-b"] }))
                    .Concat(Transcripts.CheckPrivates("c", newC.Transcript(), new Dictionary<string, List<string>> { ["a"] = ["a-to-c"] })),
                a, b, newC);
        });
    }

    /// <summary>
    /// The scenario of the first test, continued: members that delivered a message of the old incarnation send to
    /// the new one. Their messages depend on the old incarnation's stream, which the new incarnation never learns.
    /// </summary>
    [Fact]
    public async Task RestartedNodeDeliversMessagesThatDependOnItsOldIncarnationsMessages()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            var (a, b, oldC) = await StartGroupAsync(cluster);
            var oldId = oldC.First("joined")!.Str("id")!;
            var fromOld = Unique("from-old-c");
            oldC.Broadcast(fromOld);
            await DeliveredAsync(a, fromOld);
            await DeliveredAsync(b, fromOld);

            var (newC, _) = await KillAndRestartAsync(cluster, a, b, oldC, oldId);

            var fromB = Unique("from-b-after-restart");
            b.Broadcast(fromB);
            a.Private("c", "a-to-new-c");
            await DeliveredAsync(newC, fromB);
            await DeliveredAsync(newC, "a-to-new-c");
        });
    }

    /// <summary>A server and the members a, b and c, all seeing each other.</summary>
    private static async Task<(WhisperProcess A, WhisperProcess B, WhisperProcess C)> StartGroupAsync(ProcessCluster cluster)
    {
        await cluster.StartServerAsync();
        var a = await cluster.StartNodeAsync("a");
        var b = await cluster.StartNodeAsync("b");
        var c = await cluster.StartNodeAsync("c");
        await cluster.WaitForFullMembershipAsync();
        return (a, b, c);
    }

    /// <summary>
    /// Kills c with SIGKILL and, <see cref="RestartDelay"/> later, starts a new process named c (a new port); waits until
    /// it joined with a new id, and until a and b report the new incarnation up and the old one down.
    /// </summary>
    private async Task<(WhisperProcess NewC, string NewId)> KillAndRestartAsync(ProcessCluster cluster, WhisperProcess a, WhisperProcess b, WhisperProcess oldC, string oldId)
    {
        var killed = Stopwatch.GetTimestamp();
        await oldC.KillAsync(Wait);
        await Task.Delay(RestartDelay);
        var newC = cluster.LaunchNodeAs("c-restarted", "c");
        var joined = await JoinedAsync(newC);
        output.WriteLine($"the restarted c was admitted {Stopwatch.GetElapsedTime(killed).TotalMilliseconds:0} ms after the old one was killed (process start included)");
        var newId = joined.Str("id")!;
        Assert.NotEqual(oldId, newId);
        Assert.Equal(["a", "b", "c"], JoinedMembers(joined).Order(StringComparer.Ordinal));
        foreach (var node in new[] { a, b })
        {
            await MemberStatusAsync(node, "c", "up", newId);
            await MemberStatusAsync(node, "c", "down", oldId);
        }

        output.WriteLine($"a and b had declared the old c down {Stopwatch.GetElapsedTime(killed).TotalMilliseconds:0} ms after the kill");
        return (newC, newId);
    }
}
