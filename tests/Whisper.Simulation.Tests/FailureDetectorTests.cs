using System.Globalization;
using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// The failure detector's two promises, in virtual time (deterministic, so a bound here is a property of the engine,
/// not of a noisy machine): a crash is reported by every survivor within 3 s, and heavy loss alone never makes a
/// member report a running one down.
/// </summary>
public sealed class FailureDetectorTests(ITestOutputHelper output)
{
    private static readonly TimeSpan DetectionTarget = TimeSpan.FromSeconds(3);

    [Fact]
    public void EverySurvivorReportsACrashedMemberDownWithinThreeSeconds()
    {
        var times = new List<TimeSpan>();
        for (var i = 0; i < 60; i++)
        {
            var seed = ScenarioCatalog.SeedOf(ScenarioFamily.Crashes, i);
            var result = Simulation.Run(seed, ScenarioCatalog.ForSeed(seed));
            Assert.True(result.Passed, result.Report());
            Assert.All(result.Stats.Detection, t => Assert.True(t <= DetectionTarget, $"seed {seed}: a survivor took {t.TotalMilliseconds:0} ms\n{result.Report()}"));
            times.AddRange(result.Stats.Detection);
        }

        Assert.NotEmpty(times);
        times.Sort();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"crash -> down at each survivor, 60 Crashes seeds (loss up to 15%, partitions up to 600 ms): n={times.Count} median={times[times.Count / 2].TotalMilliseconds:0} ms max={times[^1].TotalMilliseconds:0} ms"));
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    public void TenMinutesAtTwentyPercentLossBringNoFalseDown(ulong seed)
    {
        var scenario = new Scenario
        {
            Name = "TenMinutesAtTwentyPercentLoss",
            Nodes = 10,
            Loss = 0.2,
            LinkSpread = 0,
            Duplication = 0.01,
            DelayBase = TimeSpan.FromMilliseconds(0.3),
            DelayJitter = TimeSpan.FromMilliseconds(2),
            WorkloadDuration = TimeSpan.FromMinutes(10),
            BroadcastsPerSecond = 0.05,
            PrivateBurstsPerSecond = 0.02,
            MediumMessageShare = 0,
            LargeMessageShare = 0,
            FaultsDuringJoin = false,
            MaxEvents = 40_000_000,
        };

        var result = Simulation.Run(seed, scenario);

        output.WriteLine(result.Stats.ToString());
        Assert.True(result.Passed, result.Report()); // the false-down and eviction checkers are part of every run
        Assert.Equal(0, result.Stats.FalseDowns);
        Assert.Equal(0, result.Stats.Evictions);
        Assert.True(result.Stats.VirtualTime >= TimeSpan.FromMinutes(10));
        Assert.True(result.Stats.DatagramsLost > result.Stats.DatagramsSent / 6, "the run must really have lost about 20% of its datagrams");
    }
}
