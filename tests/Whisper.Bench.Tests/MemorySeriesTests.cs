using Whisper.Bench;
using Xunit;

namespace Whisper.Bench.Tests;

/// <summary>The memory-over-time figures of <c>bench --process-per-node</c>: sampling interval, slope, records.</summary>
public sealed class MemorySeriesTests
{
    private const long Mb = 1024 * 1024;

    [Fact]
    public void IntervalIsTenSecondsForLongWindowsAndATenthOfShortOnes()
    {
        Assert.Equal(TimeSpan.FromSeconds(10), MemorySeries.Interval(TimeSpan.FromSeconds(600)));
        Assert.Equal(TimeSpan.FromSeconds(10), MemorySeries.Interval(TimeSpan.FromSeconds(100)));
        Assert.Equal(TimeSpan.FromSeconds(5), MemorySeries.Interval(TimeSpan.FromSeconds(50)));
        Assert.Equal(TimeSpan.FromMilliseconds(100), MemorySeries.Interval(TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void SlopeIsTheLeastSquaresFit()
    {
        Assert.Equal(2, MemorySeries.Slope([(0, 1), (1, 3), (2, 5), (3, 7)]), 9);
        Assert.Equal(3 / 17.5, MemorySeries.Slope([(0, 4), (1, 6), (2, 4), (3, 6), (4, 4), (5, 6)]), 9); // noise around a level: small
        Assert.Equal(0, MemorySeries.Slope([(5, 1)]));
        Assert.Equal(0, MemorySeries.Slope([(5, 1), (5, 9)])); // no spread in x
    }

    [Fact]
    public void SecondHalfSlopeIgnoresTheWarmUpAndReportsTheSteepestNode()
    {
        var series = new MemorySeries();
        for (var t = 0; t <= 600; t += 60)
        {
            // node 0 grows 20 MB per minute in the first 5 minutes, then stays flat; node 1 grows 1 MB per minute throughout
            var plateau = (50 + (20 * Math.Min(t, 300) / 60)) * Mb;
            var creeping = (60 + (t / 60)) * Mb;
            series.Add(t, [Memory(plateau, 10 * Mb), Memory(creeping, 12 * Mb)]);
        }

        Assert.Equal(1, series.SecondHalfSlopeMbPerMin(static m => m.WorkingSet), 9);
        Assert.Equal(0, series.SecondHalfSlopeMbPerMin(static m => m.HeapAfterGc), 9);

        var records = series.Records("whisper loss=0").ToDictionary(static r => r.Metric, static r => r.Value);
        Assert.Equal(60, records["node_rss_mb_start"], 9); // the largest node at each end
        Assert.Equal(150, records["node_rss_mb_end"], 9);
        Assert.Equal(150, records["node_rss_mb_max"], 9);
        Assert.Equal(1, records["node_rss_mb_slope_second_half_mb_per_min"], 9);
        Assert.Equal(12, records["node_heap_mb_end"], 9);
        Assert.Equal(0, records["node_heap_mb_slope_second_half_mb_per_min"], 9);
        Assert.StartsWith("memory (largest node, MB; t rss/heap/gen2/committed): 0s 60.0/12.0/0.0/0.0 60s 70.0/12.0/0.0/0.0", series.Line(), StringComparison.Ordinal);
    }

    [Fact]
    public void LiveHeapPointsAreOnePerFullCollectionAndTheirSlopeIsTheSteepestNodes()
    {
        var series = new MemorySeries();
        for (var t = 0; t <= 600; t += 10)
        {
            // a full collection at every whole minute from 60 s on; each node reports its last result until the next:
            // node 0's live heap stays at 13 MB, node 1's grows 0.5 MB per collection (a leak of 0.5 MB per minute)
            var collections = t / 60;
            long Live(double mb) => collections == 0 ? 0 : (long)(mb * Mb);
            series.Add(t, [Memory(80 * Mb, 30 * Mb) with { LiveAfterFullGc = Live(13) },
                Memory(80 * Mb, 30 * Mb) with { LiveAfterFullGc = Live(10 + (0.5 * collections)) }]);
        }

        var points = series.LivePoints();
        Assert.Single(points[0]); // the same value again is the same collection's report
        Assert.Equal(10, points[1].Count);
        Assert.Equal((60.0, 10.5), points[1][0]);
        var records = series.Records("whisper loss=0").ToDictionary(static r => r.Metric, static r => r.Value);
        Assert.Equal(13, records["node_live_heap_mb_first"], 9);
        Assert.Equal(15, records["node_live_heap_mb_last"], 9);
        Assert.Equal(0.5, records["node_live_heap_slope_mb_per_min"], 9);
        Assert.Equal(1, records["node_live_heap_points"]);
    }

    [Fact]
    public void WithoutFullCollectionsThereAreNoLiveHeapRecords()
    {
        var series = new MemorySeries();
        series.Add(0, [Memory(80 * Mb, 30 * Mb)]);
        series.Add(10, [Memory(80 * Mb, 30 * Mb)]);
        Assert.DoesNotContain(series.Records("whisper loss=0"), static r => r.Metric.StartsWith("node_live_heap", StringComparison.Ordinal));
        Assert.Null(MemorySeries.CollectInterval(TimeSpan.FromSeconds(100)));
        Assert.Equal(TimeSpan.FromSeconds(60), MemorySeries.CollectInterval(TimeSpan.FromMinutes(10)));
    }

    [Fact]
    public void AnEmptySeriesHasNoRecords()
    {
        var series = new MemorySeries();
        Assert.Empty(series.Records("whisper loss=0"));
        Assert.Equal(0, series.SecondHalfSlopeMbPerMin(static m => m.WorkingSet));
    }

    private static NodeMemory Memory(long workingSet, long heap) => new(workingSet, heap, 0, 0, 0, 0);
}
