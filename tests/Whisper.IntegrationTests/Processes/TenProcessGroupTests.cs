using System.Globalization;
using Whisper.IntegrationTests.Harness;
using Xunit;
using Xunit.Abstractions;
using static Whisper.IntegrationTests.Harness.Problems;

namespace Whisper.IntegrationTests.Processes;

/// <summary>
/// Ten real whisper node processes on loopback run a mixed workload: concurrent broadcasts from everyone,
/// a reply chain across all ten (each node replies only after delivering the previous link), private
/// messages around a ring and one private burst. Checkers then read the full transcripts.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class TenProcessGroupTests(ITestOutputHelper output)
{
    private const int Nodes = 10;
    private const int BulkPerNode = 4;
    private const int RingPrivatesPerNode = 4;
    private const int BurstPrivates = 20;

    [Fact]
    public Task TenProcessesDeliverEveryBroadcastOnceInCausalOrderAndEveryPrivateOnceInFifoOrder() =>
        RunWorkloadAsync(dropRate: 0, waitEach: ProcessCluster.Expectation);

    [Fact]
    public Task TenProcessesKeepEveryGuaranteeWhenEachDropsTwentyPercentOfIncomingDatagrams() =>
        RunWorkloadAsync(dropRate: 0.2, waitEach: TimeSpan.FromSeconds(45));

    private async Task RunWorkloadAsync(double dropRate, TimeSpan waitEach, [System.Runtime.CompilerServices.CallerMemberName] string test = "")
    {
        await using var cluster = new ProcessCluster(output, test);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var names = Enumerable.Range(0, Nodes).Select(i => $"n{i}").ToArray();
            var nodes = names.Select((name, i) => cluster.LaunchNode(name, FaultArgs(dropRate, i))).ToArray();
            foreach (var node in nodes)
            {
                await node.WaitForAsync(l => l.Is("joined"), waitEach, $"{node.Label} joins");
            }

            await cluster.WaitForFullMembershipAsync(waitEach);

            // Concurrent phase: everyone broadcasts and sends privates to the next node on the ring.
            var expectedBroadcasts = new List<string>();
            var expectedPrivates = names.ToDictionary(n => n, _ => new Dictionary<string, List<string>>(StringComparer.Ordinal), StringComparer.Ordinal);
            for (var k = 0; k < Math.Max(BulkPerNode, RingPrivatesPerNode); k++)
            {
                for (var i = 0; i < Nodes; i++)
                {
                    if (k < BulkPerNode)
                    {
                        var text = $"bulk/{names[i]}/{k}";
                        nodes[i].Broadcast(text);
                        expectedBroadcasts.Add(text);
                    }

                    if (k < RingPrivatesPerNode)
                    {
                        var to = names[(i + 1) % Nodes];
                        var text = $"ring/{names[i]}/{to}/{k}";
                        nodes[i].Private(to, text);
                        Expect(expectedPrivates, names[i], to, text);
                    }
                }
            }

            // A private burst on one pair, interleaved with the rest.
            for (var k = 0; k < BurstPrivates; k++)
            {
                var text = $"burst/n0/n5/{k}";
                nodes[0].Private("n5", text);
                Expect(expectedPrivates, "n0", "n5", text);
            }

            // The reply chain: node i replies only after it delivered link i-1.
            nodes[0].Broadcast("chain/0");
            expectedBroadcasts.Add("chain/0");
            for (var i = 1; i < Nodes; i++)
            {
                var previous = $"chain/{i - 1}";
                await nodes[i].WaitForAsync(l => l.IsMessage(previous), waitEach, $"{names[i]} delivers {previous}");
                var text = $"chain/{i}";
                nodes[i].Broadcast(text);
                expectedBroadcasts.Add(text);
            }

            var expectedSet = expectedBroadcasts.ToHashSet(StringComparer.Ordinal);
            foreach (var node in nodes)
            {
                var privateCount = expectedPrivates[node.Label].Values.Sum(l => l.Count);
                await node.WaitUntilAsync(
                    lines => lines.Where(l => l.IsBroadcast).Select(l => l.Str("text")).Where(t => t is not null && expectedSet.Contains(t)).Distinct().Count() == expectedSet.Count
                        && lines.Count(l => l.IsPrivate) >= privateCount,
                    waitEach,
                    $"{node.Label} delivers all {expectedSet.Count} broadcasts and its {privateCount} private messages");
            }

            // Everyone leaves (end of input); every process must say left and exit with 0.
            foreach (var node in nodes)
            {
                node.CloseInput();
            }

            foreach (var node in nodes)
            {
                var code = await node.WaitForExitAsync(waitEach);
                Assert.True(code == 0, $"{node.Label} exited with {code}\n{node.Describe()}");
                Assert.True(node.Transcript()[^1].Is("left"), $"{node.Label} did not end with left\n{node.Describe()}");
            }

            // Checkers over the complete transcripts.
            var transcripts = nodes.ToDictionary(n => n.Label, n => n.Transcript(), StringComparer.Ordinal);
            foreach (var node in nodes)
            {
                var lines = transcripts[node.Label];
                var problems = Transcripts.NonJsonLines(lines).Select(raw => $"{node.Label} wrote a non-JSON line: {raw}")
                    .Concat(lines.Where(l => l.Is("error")).Select(l => $"{node.Label} reported an error: {l.Raw}"))
                    .Concat(Transcripts.CheckBroadcastsExactlyOnce(node.Label, lines, expectedBroadcasts))
                    .Concat(Transcripts.CheckCausalOrder(node.Label, lines))
                    .Concat(Enumerable.Range(1, Nodes - 1).SelectMany(i => Transcripts.CheckDeliveredBefore(node.Label, lines, $"chain/{i - 1}", $"chain/{i}")))
                    .Concat(Transcripts.CheckPrivates(node.Label, lines, expectedPrivates[node.Label]))
                    .Concat(CheckFifoPerOrigin(node.Label, lines));
                AssertNone(problems, node);
            }

            output.WriteLine($"drop rate {dropRate}, all broadcasts: {Transcripts.Latency(transcripts)}");
            output.WriteLine($"drop rate {dropRate}, concurrent burst (40 broadcasts + 60 privates at once): {Transcripts.Latency(transcripts, t => t.StartsWith("bulk/", StringComparison.Ordinal))}");
            output.WriteLine($"drop rate {dropRate}, reply chain (one message in flight): {Transcripts.Latency(transcripts, t => t.StartsWith("chain/", StringComparison.Ordinal))}");
        });
    }

    private static string[] FaultArgs(double dropRate, int index) => dropRate > 0
        ? ["--drop-rate", dropRate.ToString(CultureInfo.InvariantCulture), "--fault-seed", (1000 + index).ToString(CultureInfo.InvariantCulture)]
        : [];

    private static void Expect(Dictionary<string, Dictionary<string, List<string>>> expected, string from, string to, string text)
    {
        if (!expected[to].TryGetValue(from, out var list))
        {
            expected[to][from] = list = [];
        }

        list.Add(text);
    }

    /// <summary>Each origin's broadcasts are delivered in the order it sent them (bulk/NAME/k by k).</summary>
    private static IEnumerable<string> CheckFifoPerOrigin(string node, IReadOnlyList<TranscriptLine> lines)
    {
        foreach (var group in Transcripts.Broadcasts(lines).Where(l => l.Str("text")!.StartsWith("bulk/", StringComparison.Ordinal)).GroupBy(l => l.Str("from")))
        {
            var ks = group.Select(l => int.Parse(l.Str("text")!.Split('/')[2], CultureInfo.InvariantCulture)).ToList();
            if (!ks.SequenceEqual(ks.Order()))
            {
                yield return $"{node} delivered {group.Key}'s broadcasts out of order: {string.Join(',', ks)}";
            }
        }
    }
}
