using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>One seed, one world: runs are reproducible bit for bit, which is what makes a failing seed replayable.</summary>
public sealed class DeterminismTests
{
    public static TheoryData<ulong> OneSeedPerFamily =>
    [
        14, 22, 30, 38, 46, 54, 62,
        ScenarioCatalog.SeedOf(ScenarioFamily.Crowd, 3),
        ScenarioCatalog.SeedOf(ScenarioFamily.NameClash, 3),
        ScenarioCatalog.SeedOf(ScenarioFamily.DiscoveryRestart, 3),
        ScenarioCatalog.SeedOf(ScenarioFamily.JoinThroughMembers, 3),
        ScenarioCatalog.SeedOf(ScenarioFamily.Pauses, 3),
        ScenarioCatalog.SeedOf(ScenarioFamily.LongPartitions, 3),
    ];

    [Theory]
    [MemberData(nameof(OneSeedPerFamily))]
    public void SameSeedGivesTheIdenticalTraceHashAndHistory(ulong seed)
    {
        var scenario = ScenarioCatalog.ForSeed(seed);
        var first = Simulation.Run(seed, scenario);
        var second = Simulation.Run(seed, scenario);

        Assert.Equal(first.TraceHash, second.TraceHash);
        Assert.Equal(first.Stats, second.Stats);
        Assert.Equal(first.History.Events, second.History.Events);
        Assert.Equal(first.History.Views.Select(Text), second.History.Views.Select(Text));
        Assert.True(first.Stats.Deliveries > 0, $"seed {seed}: nothing was delivered");
    }

    private static string Text(ViewRecord v) => $"{v.Order} {v.At.Ticks} {v.Node}: {string.Join(',', v.Members)}";

    [Fact]
    public void EngineTracingDoesNotChangeTheRun()
    {
        var lines = 0;
        var plain = Simulation.Run(13, ScenarioCatalog.ForSeed(13));
        var traced = Simulation.Run(13, ScenarioCatalog.ForSeed(13), new SimulationOptions { EngineTracing = true, TraceSink = _ => lines++ });

        Assert.Equal(plain.TraceHash, traced.TraceHash);
        Assert.True(lines > plain.Stats.DatagramsSent, "the sink saw every datagram and the engines' own lines");
    }

    [Fact]
    public void DifferentSeedsDrawDifferentWorlds()
    {
        var hashes = Enumerable.Range(100, 5).Select(s => Simulation.Run((ulong)s * 7, ScenarioCatalog.ForSeed((ulong)s * 7)).TraceHash).ToHashSet();
        Assert.Equal(5, hashes.Count);
    }

    [Fact]
    public void ScenarioCatalogIsAPureFunctionOfTheSeed()
    {
        foreach (var seed in Enumerable.Range(0, 50).Select(i => (ulong)i).Concat(Enumerable.Range(0, 20).Select(i => ScenarioCatalog.AdmissionSeedBase + (ulong)i)))
        {
            Assert.Equal(ScenarioCatalog.ForSeed(seed), ScenarioCatalog.ForSeed(seed));
            Assert.Equal(ScenarioCatalog.FamilyOf(seed).ToString(), ScenarioCatalog.ForSeed(seed).Name);
            Assert.Equal(ScenarioCatalog.IsAdmission(ScenarioCatalog.FamilyOf(seed)), ScenarioCatalog.ForSeed(seed).Admission is not null);
        }

        Assert.Equal(ScenarioFamily.Crashes, ScenarioCatalog.FamilyOf(ScenarioCatalog.SeedOf(ScenarioFamily.Crashes, 17)));
        Assert.Equal(ScenarioFamily.NameClash, ScenarioCatalog.FamilyOf(ScenarioCatalog.SeedOf(ScenarioFamily.NameClash, 17)));
    }

    [Fact]
    public void DeliverySeedsKeepTheirFamiliesAndAdmissionSeedsStartAtTheirOwnBase()
    {
        Assert.Equal(45UL, ScenarioCatalog.SeedOf(ScenarioFamily.Crashes, 6));
        Assert.Equal(ScenarioFamily.Stragglers, ScenarioCatalog.FamilyOf(6));
        Assert.Equal(ScenarioCatalog.AdmissionSeedBase, ScenarioCatalog.SeedOf(ScenarioFamily.Crowd, 0));
        Assert.Equal(ScenarioCatalog.AdmissionSeedBase + 9, ScenarioCatalog.SeedOf(ScenarioFamily.NameClash, 2));
        Assert.Equal(ScenarioFamily.JoinThroughMembers, ScenarioCatalog.FamilyOf(ScenarioCatalog.AdmissionSeedBase + 7));
    }
}
