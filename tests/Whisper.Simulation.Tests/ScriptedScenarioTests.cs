using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>Hand-scripted worlds with the real engine, using the simulator's verbs (etcd-raft style network tests).</summary>
public sealed class ScriptedScenarioTests
{
    private static readonly Scenario Quiet = new()
    {
        Name = "scripted",
        Nodes = 5,
        BroadcastsPerSecond = 0,
        PrivateBurstsPerSecond = 0,
    };

    [Fact]
    public void BroadcastOfASenderThatCrashedAfterReachingTwoMembersReachesEveryLiveMember()
    {
        var sim = Formed(Quiet, seed: 1);
        sim.ArmCrashOnBroadcast(0, 2);
        var key = sim.Broadcast(0);

        Assert.True(sim.Settle(TimeSpan.FromSeconds(10)), Report(sim));
        var result = sim.Finish();
        Assert.True(result.Passed, result.Report());
        Assert.True(sim.IsCrashed(0));
        Assert.Equal([1, 2, 3, 4], Deliverers(sim, key));
    }

    [Fact]
    public void IsolatedMemberCatchesUpInOrderAfterAShortPartitionHeals()
    {
        var sim = Formed(Quiet, seed: 2);
        sim.Isolate(2);
        var first = sim.Broadcast(0);
        sim.RunFor(TimeSpan.FromMilliseconds(50));
        var second = sim.Broadcast(1, length: 3000);
        var whisper = sim.SendPrivate(0, 2);
        sim.RunFor(TimeSpan.FromMilliseconds(700));
        Assert.DoesNotContain(2, Deliverers(sim, first));
        sim.Heal();

        Assert.True(sim.Settle(TimeSpan.FromSeconds(5)), Report(sim));
        var result = sim.Finish();
        Assert.True(result.Passed, result.Report());
        Assert.Equal([0, 1, 2, 3, 4], Deliverers(sim, second));
        Assert.Equal([2], Deliverers(sim, whisper));
    }

    [Fact]
    public void MessagesInFlightWhenTheDiscoveryServerCrashesStillArrive()
    {
        var sim = Formed(Quiet with { Loss = 0.2 }, seed: 3);
        sim.Crash(sim.DiscoveryIndex);
        var keys = Enumerable.Range(0, 5).Select(n => sim.Broadcast(n, length: 1500)).ToList();
        sim.RunFor(TimeSpan.FromSeconds(1));
        sim.Network.FaultsEnabled = false;

        Assert.True(sim.Settle(TimeSpan.FromSeconds(5)), Report(sim));
        var result = sim.Finish();
        Assert.True(result.Passed, result.Report());
        Assert.All(keys, k => Assert.Equal([0, 1, 2, 3, 4], Deliverers(sim, k)));
    }

    [Fact]
    public void MemberLeavingRightAfterABroadcastIsSeenLeftAndItsBroadcastArrives()
    {
        var sim = Formed(Quiet with { Loss = 0.1 }, seed: 4);
        var last = sim.Broadcast(1, length: 2500);
        sim.RunFor(TimeSpan.FromMilliseconds(1));
        sim.Leave(1);

        Assert.True(sim.Settle(TimeSpan.FromSeconds(5)), Report(sim));
        var result = sim.Finish();
        Assert.True(result.Passed, result.Report());
        Assert.Equal([0, 1, 2, 3, 4], Deliverers(sim, last));
        Assert.All(new[] { 0, 2, 3, 4 }, n => Assert.Contains(sim.History.Log(n), e => e.Kind == HistoryEventKind.Status && e.Peer == 1 && e.Status == Protocol.Engine.MemberStatus.Left));
    }

    private static Simulation Formed(Scenario scenario, ulong seed)
    {
        var sim = new Simulation(seed, scenario);
        sim.StartAll(TimeSpan.FromMilliseconds(100));
        Assert.True(sim.RunUntil(sim.GroupFormed, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20)), Report(sim));
        return sim;
    }

    private static string Report(Simulation sim) =>
        string.Join(Environment.NewLine, sim.DriverViolations.Select(v => v.ToString()).Concat(sim.Trace.Tail(80)));

    private static int[] Deliverers(Simulation sim, MessageKey key) =>
        [.. sim.History.Events.Where(e => e.Kind == HistoryEventKind.Delivered && e.Key == key).Select(e => e.Node).Order()];
}
