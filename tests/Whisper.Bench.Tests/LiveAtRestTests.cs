using Whisper.Bench;
using Xunit;

namespace Whisper.Bench.Tests;

public sealed class LiveAtRestTests
{
    [Fact]
    public async Task WaitsForDeliveriesToStopThenReturnsWhatEachNodeReportsAfterItsFullCollection()
    {
        var nodes = new FakeNodes(deliveriesUntilRest: [100, 250, 300, 300]);
        var live = (await ScenarioRunner.MemoryAtRestAsync(nodes, TimeSpan.Zero, CancellationToken.None)).Select(static m => m.LiveAfterFullGc);

        Assert.Equal([13_000_000, 14_000_000], live);
        Assert.Equal(1, nodes.Collections);
        Assert.True(nodes.CountersAsked >= 4, $"asked {nodes.CountersAsked} times; the deliveries moved until the fourth");
    }

    [Fact]
    public async Task NodesThatNeverReportTheirCollectionTimeOut()
    {
        var nodes = new FakeNodes(deliveriesUntilRest: [5, 5], reports: false);
        await Assert.ThrowsAsync<TimeoutException>(() => ScenarioRunner.MemoryAtRestAsync(nodes, TimeSpan.Zero, CancellationToken.None));
    }

    /// <summary>Two node processes: deliveries move as listed, then rest; a full collection shows in the next reports.</summary>
    private sealed class FakeNodes(long[] deliveriesUntilRest, bool reports = true) : IExternalCost
    {
        public int Collections { get; private set; }

        public int CountersAsked { get; private set; }

        public Task<NodeCounters> CountersAtAsync(long at, CancellationToken ct)
        {
            var deliveries = deliveriesUntilRest[Math.Min(CountersAsked++, deliveriesUntilRest.Length - 1)];
            return Task.FromResult(new NodeCounters(0, deliveries, 0, 0, 0, 0, TimeSpan.Zero, 0));
        }

        public Task<IReadOnlyList<NodeMemory>> MemoryAtAsync(long at, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<NodeMemory>>(
            [
                new(80, 30, 20, 1, 40, 0, Collections > 0 && reports ? 13_000_000 : 0),
                new(80, 30, 20, 1, 40, 0, Collections > 0 && reports ? 14_000_000 : 0),
            ]);

        public Task CollectFullAsync(CancellationToken ct)
        {
            Collections++;
            return Task.CompletedTask;
        }
    }
}
