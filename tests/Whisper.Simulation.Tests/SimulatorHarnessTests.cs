using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// The simulator end to end with a deliberately naive <see cref="ToyEngine"/>: proves that injected duplication,
/// loss, reordering and mid-broadcast crashes reach the engines and that the checkers then fail the run.
/// </summary>
public sealed class SimulatorHarnessTests
{
    private static readonly Scenario ToyWorld = new()
    {
        Name = "toy",
        Nodes = 4,
        DelayBase = TimeSpan.FromMilliseconds(1),
        DelayJitter = TimeSpan.Zero,
        MediumMessageShare = 0,
        LargeMessageShare = 0,
        WorkloadDuration = TimeSpan.FromSeconds(1),
        BroadcastsPerSecond = 5,
        SettleLimit = TimeSpan.FromSeconds(1),
        QuietPeriod = TimeSpan.FromMilliseconds(100),
    };

    [Fact]
    public void DuplicatingNetworkMakesANaiveEngineFailExactlyOnce()
    {
        var result = Simulation.Run(1, ToyWorld with { Duplication = 0.5 }, Toy(suppressDuplicates: false));
        Assert.Contains(result.Violations, v => v.Invariant == Invariants.ExactlyOnce);
        Assert.True(result.Stats.DatagramsDuplicated > 0);
    }

    [Fact]
    public void LossyNetworkMakesANaiveEngineFailToSettle()
    {
        var result = Simulation.Run(1, ToyWorld with { Loss = 0.2 }, Toy(suppressDuplicates: true));
        var v = Assert.Single(result.Violations, v => v.Invariant == Invariants.Liveness);
        Assert.Contains("deliveries owed", v.Detail, StringComparison.Ordinal);
        Assert.Contains("seed=1", result.Report(), StringComparison.Ordinal);
    }

    [Fact]
    public void ReorderingNetworkMakesANaiveEngineFailCausalOrder()
    {
        var world = ToyWorld with { DelayJitter = TimeSpan.FromMilliseconds(40), ReplyProbability = 0.5, BroadcastsPerSecond = 10 };
        var result = Simulation.Run(1, world, Toy(suppressDuplicates: true));
        Assert.Contains(result.Violations, v => v.Invariant == Invariants.CausalOrder);
        Assert.Contains(result.Violations, v => v.Invariant == Invariants.FifoPrivate);
    }

    [Fact]
    public void CleanNetworkLetsTheNaiveEnginePass()
    {
        var result = Simulation.Run(1, ToyWorld, Toy(suppressDuplicates: true));
        Assert.True(result.Passed, result.Report());
        Assert.True(result.Stats.Deliveries > 0);
    }

    [Fact]
    public void SenderCrashingMidBroadcastReachesOnlyTheMembersItsFirstDatagramsWentTo()
    {
        var sim = new Simulation(1, ToyWorld with { Nodes = 5 }, Toy(suppressDuplicates: true));
        sim.StartAll(TimeSpan.FromMilliseconds(10));
        Assert.True(sim.RunUntil(sim.GroupFormed, TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(10)));
        sim.ArmCrashOnBroadcast(0, 2);
        var key = sim.Broadcast(0);
        sim.RunFor(TimeSpan.FromMilliseconds(100));

        Assert.True(sim.IsCrashed(0));
        var deliverers = sim.History.Events.Where(e => e.Kind == HistoryEventKind.Delivered && e.Key == key).Select(e => e.Node).ToList();
        Assert.Equal(2, deliverers.Count); // the two members its first two datagrams reached
        Assert.DoesNotContain(0, deliverers); // it crashed before its application drained its own delivery
        Assert.False(sim.Settle(TimeSpan.FromMilliseconds(500)));
        var result = sim.Finish();
        Assert.Contains(result.Violations, v => v.Invariant == Invariants.Liveness && v.Detail.Contains("(agreement)", StringComparison.Ordinal));
    }

    [Fact]
    public void PartitionStopsDatagramsBetweenGroupsUntilHealed()
    {
        var sim = new Simulation(1, ToyWorld, Toy(suppressDuplicates: true));
        sim.StartAll(TimeSpan.FromMilliseconds(10));
        Assert.True(sim.RunUntil(sim.GroupFormed, TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(10)));
        sim.Partition([0, 1]);
        var during = sim.Broadcast(0);
        sim.RunFor(TimeSpan.FromMilliseconds(50));
        sim.Heal();
        var after = sim.Broadcast(0);
        sim.RunFor(TimeSpan.FromMilliseconds(50));

        Assert.Equal([0, 1], Deliverers(sim, during));
        Assert.Equal([0, 1, 2, 3], Deliverers(sim, after));
    }

    [Fact]
    public void PausedNodeGetsItsQueuedDatagramsOnResume()
    {
        var sim = new Simulation(1, ToyWorld, Toy(suppressDuplicates: true));
        sim.StartAll(TimeSpan.FromMilliseconds(10));
        Assert.True(sim.RunUntil(sim.GroupFormed, TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(10)));
        sim.Pause(3);
        var key = sim.Broadcast(0);
        sim.RunFor(TimeSpan.FromMilliseconds(50));
        Assert.Equal([0, 1, 2], Deliverers(sim, key));
        sim.Resume(3);
        sim.RunFor(TimeSpan.FromMilliseconds(1));
        Assert.Equal([0, 1, 2, 3], Deliverers(sim, key));
    }

    [Fact]
    public void FailureReportNamesSeedScenarioViolationAndTraceTail()
    {
        var result = Simulation.Run(77, ToyWorld with { Duplication = 0.5 }, Toy(suppressDuplicates: false));
        var report = result.Report();
        Assert.Contains("seed=77 FAILED", report, StringComparison.Ordinal);
        Assert.Contains("scenario: toy: nodes=4", report, StringComparison.Ordinal);
        Assert.Contains("[exactly-once]", report, StringComparison.Ordinal);
        Assert.Contains("trace tail", report, StringComparison.Ordinal);
        Assert.Contains("deliver broadcast", report, StringComparison.Ordinal);
        Assert.Contains("history: crashes, sends and deliveries of the messages involved", report, StringComparison.Ordinal);
        Assert.Contains("up to the first violation", report, StringComparison.Ordinal);
        var ex = Assert.Throws<SimulationFailedException>(result.ThrowIfFailed);
        Assert.Equal(report, ex.Message);
    }

    private static int[] Deliverers(Simulation sim, MessageKey key) =>
        [.. sim.History.Events.Where(e => e.Kind == HistoryEventKind.Delivered && e.Key == key).Select(e => e.Node).Order()];

    private static SimulationOptions Toy(bool suppressDuplicates) =>
        new() { EngineFactory = spec => new ToyEngine(spec, suppressDuplicates) };
}
