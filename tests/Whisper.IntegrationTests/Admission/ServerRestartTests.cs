using Whisper.IntegrationTests.Harness;
using Whisper.IntegrationTests.Processes;
using Xunit;
using Xunit.Abstractions;
using static Whisper.IntegrationTests.Admission.Admissions;
using static Whisper.IntegrationTests.Harness.Problems;

namespace Whisper.IntegrationTests.Admission;

/// <summary>
/// A server killed with SIGKILL and restarted on the same port re-learns the group from the members' leases:
/// nobody rejoins, the cap still holds, and slots freed while it was down are free again.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class ServerRestartTests(ITestOutputHelper output)
{
    private static readonly string[] Cap = ["--max-nodes", "3"];

    [Fact]
    public async Task RestartedServerRelearnsAFullGroupFromLeasesAndDeniesANewcomerFull()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            var members = await StartFullGroupAsync(cluster);
            await cluster.KillServerAsync();

            var server = await cluster.RestartServerAsync(Cap);
            var listening = server.First("listening")!;
            var newcomer = cluster.LaunchNode("newcomer");
            var denied = await DeniedAsync(newcomer, "full", "3 members");
            output.WriteLine($"the newcomer was denied full {MillisBetween(listening, denied):0} ms after the restarted server listened (the newcomer's process start included; the server answers no join for its first 1.2 s)");

            // The server learned every member from the leases; none of them joined again or lost anyone.
            var log = string.Join('\n', server.StderrTail());
            foreach (var name in new[] { "a", "b", "c" })
            {
                Assert.True(log.Contains($"re-learned {name} at", StringComparison.Ordinal), $"the restarted server should log that it re-learned {name}\n{server.Describe()}");
            }

            Assert.DoesNotContain("admitted", log, StringComparison.Ordinal);
            AssertNone(members.SelectMany(Departures).Concat(members.Where(m => m.HasExited).Select(m => $"{m.Label} exited")), [.. members]);
            Assert.All(members, m => Assert.Single(m.Transcript(), l => l.Is("joined")));
        });
    }

    [Fact]
    public async Task NewcomerTakesASlotFreedWhileTheServerWasDownByALeaveOrACrash()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            var members = await StartFullGroupAsync(cluster);
            var (a, b, c) = (members[0], members[1], members[2]);

            // 1. The server dies, c leaves while it is down, the server comes back: the newcomer gets c's slot.
            await cluster.KillServerAsync();
            c.CloseInput();
            Assert.Equal(0, await c.WaitForExitAsync(Wait));
            await MemberStatusAsync(a, "c", "left");
            await MemberStatusAsync(b, "c", "left");
            var server = await cluster.RestartServerAsync(Cap);
            var first = cluster.LaunchNode("first");
            var joined = await JoinedAsync(first);
            output.WriteLine($"after a leave: the newcomer joined {MillisBetween(server.First("listening")!, joined):0} ms after the restarted server listened (the newcomer's process start included)");
            Assert.Equal(["a", "b", "first"], JoinedMembers(joined).Order(StringComparer.Ordinal));
            await ProcessCluster.WaitForMembersAsync([a, b, first], ["a", "b", "first"]);

            // 2. Again, but the slot is freed by a crash: first is killed while the server is down.
            await cluster.KillServerAsync();
            await first.KillAsync(Wait);
            await MemberStatusAsync(a, "first", "down");
            await MemberStatusAsync(b, "first", "down");
            server = await cluster.RestartServerAsync(Cap);
            var second = cluster.LaunchNode("second");
            joined = await JoinedAsync(second);
            output.WriteLine($"after a crash: the newcomer joined {MillisBetween(server.First("listening")!, joined):0} ms after the restarted server listened (the newcomer's process start included)");
            Assert.Equal(["a", "b", "second"], JoinedMembers(joined).Order(StringComparer.Ordinal));
            await ProcessCluster.WaitForMembersAsync([a, b, second], ["a", "b", "second"]);

            // The group is full again, and the server knows it.
            var third = cluster.LaunchNode("third");
            await DeniedAsync(third, "full", "3 members");

            var hello = Unique("hello");
            second.Broadcast(hello);
            await DeliveredAsync(a, hello);
            await DeliveredAsync(b, hello);
            await DeliveredAsync(second, hello);
        });
    }

    /// <summary>A server capped at 3 and the members a, b and c, all seeing each other.</summary>
    private static async Task<WhisperProcess[]> StartFullGroupAsync(ProcessCluster cluster)
    {
        await cluster.StartServerAsync(Cap);
        var members = new List<WhisperProcess>();
        foreach (var name in new[] { "a", "b", "c" })
        {
            members.Add(await cluster.StartNodeAsync(name));
        }

        await ProcessCluster.WaitForMembersAsync(members, ["a", "b", "c"]);
        return [.. members];
    }
}
