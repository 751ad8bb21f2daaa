using System.Diagnostics;
using Whisper.IntegrationTests.Harness;
using Whisper.IntegrationTests.Processes;
using Xunit;
using Xunit.Abstractions;
using static Whisper.IntegrationTests.Admission.Admissions;
using static Whisper.IntegrationTests.Harness.Problems;

namespace Whisper.IntegrationTests.Admission;

/// <summary>The cap of 10 members holds for simultaneous joins, through the server and, with the server gone, through members.</summary>
[Collection(ProcessCollection.Name)]
public sealed class CapacityTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TwelveSimultaneousJoinsAdmitExactlyTenAndEveryNodeBeyondTenIsDeniedFullNamingTenMembers()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync(); // the default cap: 10

            var started = Stopwatch.GetTimestamp();
            var nodes = Enumerable.Range(1, 12).Select(i => cluster.LaunchNode($"n{i:00}")).ToArray();
            output.WriteLine($"12 processes launched within {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms");
            var outcomes = await Task.WhenAll(nodes.Select(OutcomeAsync));
            output.WriteLine($"all 12 answered {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms after the first launch");

            var joined = nodes.Where((_, i) => outcomes[i].Is("joined")).ToList();
            var denied = nodes.Where((_, i) => outcomes[i].Is("denied")).ToList();
            Assert.True(joined.Count == 10 && denied.Count == 2,
                $"expected 10 joined and 2 denied, got {joined.Count} joined ({string.Join(',', joined.Select(n => n.Label))}) and {denied.Count} denied");
            foreach (var node in denied)
            {
                await DeniedAsync(node, "full", "10 members");
            }

            var members = joined.Select(n => n.Label).ToList();
            await ProcessCluster.WaitForMembersAsync(joined, members);

            // Any later node is the 11th: denied full, naming the 10 members, exit code 2.
            var late = cluster.LaunchNode("late");
            var answer = await DeniedAsync(late, "full", "10 members");
            output.WriteLine($"the 11th node was told: {answer.Str("message")}");

            AssertNone(joined.SelectMany(Departures), [.. joined]);
            AssertNone(joined.SelectMany(n => n.Transcript().Where(l => l.Is("member") && !members.Contains(l.Str("name")!)).Select(l => $"{n.Label} saw a denied node: {l.Raw}")), [.. joined]);
        });
    }

    [Fact]
    public async Task WithTheServerGoneSimultaneousJoinsThroughDifferentMembersNeverExceedTenAndTakenNamesAreRefused()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var (members, ports) = await FormGroupOnKnownPortsAsync(cluster, [.. Enumerable.Range(0, 8).Select(i => $"m{i}")]);
            await cluster.KillServerAsync();

            // Three newcomers at once, each through a different member: only two slots are left.
            var newcomers = new[]
            {
                cluster.LaunchNodeThroughPeer("p1", "p1", ports[1]),
                cluster.LaunchNodeThroughPeer("p2", "p2", ports[4]),
                cluster.LaunchNodeThroughPeer("p3", "p3", ports[7]),
            };
            var outcomes = await Task.WhenAll(newcomers.Select(OutcomeAsync));
            var joined = newcomers.Where((_, i) => outcomes[i].Is("joined")).ToList();
            var denied = newcomers.Where((_, i) => outcomes[i].Is("denied")).ToList();
            Assert.True(joined.Count == 2 && denied.Count == 1,
                $"expected 2 joined and 1 denied, got {string.Join(", ", outcomes.Select((o, i) => $"{newcomers[i].Label}: {o.Raw}"))}");
            await DeniedAsync(denied[0], "full", "10 members");

            var group = members.Concat(joined).ToList();
            await ProcessCluster.WaitForMembersAsync(group, [.. group.Select(m => m.Label)]);

            // The group of ten, still without a server: a new name is denied full, a taken one (any case) name-taken.
            var eleventh = cluster.LaunchNodeThroughPeer("eleventh", "eleventh", ports[2]);
            var impostor = cluster.LaunchNodeThroughPeer("impostor", "M5", ports[6]);
            await DeniedAsync(eleventh, "full", "10 members");
            await DeniedAsync(impostor, "name-taken", "'M5'");

            // The two admitted through members are full members: a broadcast from one reaches all ten.
            var hello = Unique("hello-from-peer-joined");
            joined[0].Broadcast(hello);
            foreach (var node in group)
            {
                await DeliveredAsync(node, hello);
            }

            AssertNone(group.SelectMany(n => Transcripts.CheckBroadcastsExactlyOnce(n.Label, n.Transcript(), [hello])), [.. group]);
        });
    }
}
