using System.Diagnostics;
using Whisper.IntegrationTests.Harness;
using Whisper.IntegrationTests.Processes;
using Xunit;
using Xunit.Abstractions;
using static Whisper.IntegrationTests.Admission.Admissions;
using static Whisper.IntegrationTests.Harness.Problems;

namespace Whisper.IntegrationTests.Admission;

/// <summary>After the discovery server is killed (SIGKILL), the group carries on and admits newcomers through its members.</summary>
[Collection(ProcessCollection.Name)]
public sealed class LifeWithoutTheServerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task GroupKeepsBroadcastsPrivatesFailureDetectionAndGracefulLeaveAfterTheServerIsKilled()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            string[] names = ["a", "b", "c", "d"];
            foreach (var name in names)
            {
                await cluster.StartNodeAsync(name);
            }

            await cluster.WaitForFullMembershipAsync();
            var (a, b, c, d) = (cluster["a"], cluster["b"], cluster["c"], cluster["d"]);
            await cluster.KillServerAsync();

            // Broadcasts and private messages.
            var fromA = Unique("from-a");
            var fromB = Unique("from-b");
            var secret = Unique("b-to-c");
            a.Broadcast(fromA);
            b.Broadcast(fromB);
            b.Private("c", secret);
            foreach (var node in new[] { a, b, c, d })
            {
                await DeliveredAsync(node, fromA);
                await DeliveredAsync(node, fromB);
            }

            var atC = await DeliveredAsync(c, secret);
            Assert.Equal("private", atC.Str("kind"));
            Assert.Equal("b", atC.Str("from"));

            // Failure detection: d is killed; everyone else reports it down.
            var killed = Stopwatch.GetTimestamp();
            await d.KillAsync(Wait);
            foreach (var node in new[] { a, b, c })
            {
                await MemberStatusAsync(node, "d", "down");
            }

            output.WriteLine($"a, b and c reported d down {Stopwatch.GetElapsedTime(killed).TotalMilliseconds:0} ms after SIGKILL (down after 2.5 s of silence)");

            // Graceful leave: c's last broadcast still reaches everyone, then a and b report c left.
            var lastFromC = Unique("last-from-c");
            c.Broadcast(lastFromC);
            c.CloseInput();
            Assert.Equal(0, await c.WaitForExitAsync(Wait));
            Assert.True(c.Transcript()[^1].Is("left"), c.Describe());
            foreach (var node in new[] { a, b })
            {
                await DeliveredAsync(node, lastFromC);
                await MemberStatusAsync(node, "c", "left");
            }

            // The two that remain still talk.
            var after = Unique("after-all-that");
            a.Broadcast(after);
            a.Private("b", after + "-private");
            await DeliveredAsync(b, after);
            await DeliveredAsync(b, after + "-private");
            await DeliveredAsync(a, after); // a's own delivery line can reach its transcript after b's: check a once it is there

            var expected = new[] { fromA, fromB, lastFromC, after };
            AssertNone(
                new[] { a, b }.SelectMany(n => Transcripts.CheckBroadcastsExactlyOnce(n.Label, n.Transcript(), expected)
                    .Concat(Transcripts.CheckCausalOrder(n.Label, n.Transcript())))
                    .Concat(Transcripts.CheckPrivates("b", b.Transcript(), new Dictionary<string, List<string>> { ["a"] = [after + "-private"] }))
                    .Concat(Transcripts.CheckPrivates("c", c.Transcript(), new Dictionary<string, List<string>> { ["b"] = [secret] })),
                a, b, c);
        });
    }

    [Fact]
    public async Task NewcomerJoinsThroughAMemberWhileTheServerIsDownAndMessagesFlowBothWays()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var (members, ports) = await FormGroupOnKnownPortsAsync(cluster, "a", "b", "c");
            var (a, b, c) = (members[0], members[1], members[2]);
            await cluster.KillServerAsync();

            var launched = Stopwatch.GetTimestamp();
            var newcomer = cluster.LaunchNodeThroughPeer("newcomer", "newcomer", ports[1]);
            var joined = await JoinedAsync(newcomer);
            output.WriteLine($"joined through b {Stopwatch.GetElapsedTime(launched).TotalMilliseconds:0} ms after launch (process start included)");
            Assert.Equal(["a", "b", "c", "newcomer"], JoinedMembers(joined).Order(StringComparer.Ordinal));

            var everyone = members.Append(newcomer).ToArray();
            await ProcessCluster.WaitForMembersAsync(everyone, ["a", "b", "c", "newcomer"]);

            var fromNewcomer = Unique("from-newcomer");
            var fromA = Unique("from-a");
            newcomer.Broadcast(fromNewcomer);
            newcomer.Private("c", "newcomer-to-c");
            a.Broadcast(fromA);
            b.Private("newcomer", "b-to-newcomer");
            foreach (var node in everyone)
            {
                await DeliveredAsync(node, fromNewcomer);
                await DeliveredAsync(node, fromA);
            }

            await DeliveredAsync(c, "newcomer-to-c");
            await DeliveredAsync(newcomer, "b-to-newcomer");

            AssertNone(
                everyone.SelectMany(n => Transcripts.CheckBroadcastsExactlyOnce(n.Label, n.Transcript(), [fromNewcomer, fromA]))
                    .Concat(Transcripts.CheckPrivates("c", c.Transcript(), new Dictionary<string, List<string>> { ["newcomer"] = ["newcomer-to-c"] }))
                    .Concat(Transcripts.CheckPrivates("newcomer", newcomer.Transcript(), new Dictionary<string, List<string>> { ["b"] = ["b-to-newcomer"] })),
                everyone);
        });
    }

    [Fact]
    public async Task WithTheServerDownTwoNewcomersClaimingOneNameThroughDifferentMembersGetOneJoinAndOneNameTaken()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var (members, ports) = await FormGroupOnKnownPortsAsync(cluster, "a", "b", "c");
            await cluster.KillServerAsync();

            var first = cluster.LaunchNodeThroughPeer("twin-via-a", "twin", ports[0]);
            var second = cluster.LaunchNodeThroughPeer("twin-via-c", "twin", ports[2]);
            var outcomes = await Task.WhenAll(OutcomeAsync(first), OutcomeAsync(second));
            Assert.True(outcomes.Count(o => o.Is("joined")) == 1, $"expected exactly one joined: {outcomes[0].Raw} / {outcomes[1].Raw}");
            var (winner, loser) = outcomes[0].Is("joined") ? (first, second) : (second, first);
            await DeniedAsync(loser, "name-taken", "'twin'");

            // A member's name in another case, through yet another member, is taken too.
            var shoutingB = cluster.LaunchNodeThroughPeer("B", "B", ports[1]);
            await DeniedAsync(shoutingB, "name-taken", "'B'");

            await ProcessCluster.WaitForMembersAsync([.. members, winner], ["a", "b", "c", "twin"]);
        });
    }

    [Fact]
    public async Task NodeJoinedThroughAMemberKeepsItsNameAfterTheServerRestarts()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var ports = FreePort.UdpMany(2);
            var a = cluster.LaunchNode("a", "--port", Port(ports[0]));
            var b = cluster.LaunchNode("b", "--port", Port(ports[1]));
            await JoinedAsync(a);
            await JoinedAsync(b);
            await cluster.KillServerAsync();
            var p = cluster.LaunchNodeThroughPeer("p", "p", ports[0]);
            await JoinedAsync(p);
            await ProcessCluster.WaitForMembersAsync([a, b, p], ["a", "b", "p"]);

            // What is under test is the state once a whole lease period (5 s) has passed since the restart: p must
            // still hold its name then. Nothing observable marks that moment when all is well, hence a plain wait.
            await cluster.RestartServerAsync();
            await Task.Delay(TimeSpan.FromSeconds(6.5));

            var impostor = cluster.LaunchNodeAs("p-impostor", "p");
            await DeniedAsync(impostor, "name-taken", "'p'");
        });
    }
}
