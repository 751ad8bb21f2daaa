using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

public sealed class SimRandomTests
{
    [Fact]
    public void SameSeedDrawsTheSameSequence()
    {
        var a = new SimRandom(42);
        var b = new SimRandom(42);
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(a.NextUInt64(), b.NextUInt64());
        }
    }

    [Fact]
    public void DifferentSeedsDrawDifferentSequences()
    {
        var a = new SimRandom(1);
        var b = new SimRandom(2);
        var same = Enumerable.Range(0, 100).Count(_ => a.NextUInt64() == b.NextUInt64());
        Assert.True(same < 2, $"{same} equal draws");
    }

    [Fact]
    public void DerivedStreamsAreIndependentOfEachOtherAndStable()
    {
        var network = SimRandom.Derive(7, "network").NextUInt64();
        var workload = SimRandom.Derive(7, "workload").NextUInt64();
        Assert.NotEqual(network, workload);
        Assert.Equal(network, SimRandom.Derive(7, "network").NextUInt64());
    }

    [Fact]
    public void BoundedDrawsStayInRangeAndCoverIt()
    {
        var r = new SimRandom(3);
        var seen = new int[7];
        for (var i = 0; i < 7000; i++)
        {
            var v = r.NextInt(7);
            Assert.InRange(v, 0, 6);
            seen[v]++;
        }

        Assert.All(seen, count => Assert.InRange(count, 800, 1200));
        for (var i = 0; i < 1000; i++)
        {
            Assert.InRange(r.NextDouble(), 0.0, 0.9999999999);
            var t = r.NextTime(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(2));
            Assert.InRange(t, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(2));
        }
    }

    [Fact]
    public void ChanceMatchesItsProbability()
    {
        var r = new SimRandom(9);
        var hits = Enumerable.Range(0, 10_000).Count(_ => r.Chance(0.3));
        Assert.InRange(hits, 2800, 3200);
        Assert.DoesNotContain(Enumerable.Range(0, 100), _ => r.Chance(0));
        Assert.All(Enumerable.Range(0, 100), _ => Assert.True(r.Chance(1)));
    }
}
