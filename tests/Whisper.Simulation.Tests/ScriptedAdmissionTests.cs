using Whisper.Protocol.Wire;
using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// Hand-scripted admission worlds with the real engines, using the verbs that start nodes at chosen times under chosen
/// names through chosen contacts and restart the discovery server. Every run ends with the delivery and admission
/// checkers; two worlds prove that the admission checkers catch an over-admission and a duplicate name end to end.
/// </summary>
public sealed class ScriptedAdmissionTests
{
    private static readonly TimeSpan Relearn = TimeSpan.FromMilliseconds(1200);

    private static readonly Scenario Quiet = new()
    {
        Name = "scripted-admission",
        BroadcastsPerSecond = 0,
        PrivateBurstsPerSecond = 0,
        DiscoveryMaxMembers = 10,
        Admission = new AdmissionScenario(),
    };

    [Fact]
    public void RestartedServerRelearnsAFullGroupFromLeasesBeforeItDeniesTheNextNewcomerFull()
    {
        var sim = Formed(Quiet with { Nodes = 11 }, seed: 1, members: 10);
        sim.Crash(sim.DiscoveryIndex);
        sim.RunFor(TimeSpan.FromMilliseconds(300));
        sim.Restart(sim.DiscoveryIndex);
        var restartedAt = sim.Now;
        sim.StartNode(10, sim.Now, JoinContact.Server);

        Assert.True(sim.RunUntil(sim.AdmissionFormed, sim.Now + TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20)), Report(sim));
        Assert.Equal(DenyReason.Full, sim.History.DenyReasonOf(10));
        Assert.True(sim.History.DeniedAt(10) >= restartedAt + Relearn, "the restarted server answered during its re-learn window");
        Finish(sim);
    }

    [Fact]
    public void NewcomersJoinThroughDifferentMembersWhileTheServerIsDown()
    {
        var sim = Formed(Quiet with { Nodes = 7, Loss = 0.05 }, seed: 2, members: 5);
        sim.Crash(sim.DiscoveryIndex);
        sim.StartNode(5, sim.Now, JoinContact.Through(1));
        sim.StartNode(6, sim.Now, JoinContact.Through(3, leaseToServer: true));

        Assert.True(sim.RunUntil(sim.AdmissionFormed, sim.Now + TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20)), Report(sim));
        Assert.True(sim.History.HasJoined(5) && sim.History.HasJoined(6), Report(sim));
        Assert.Equal("n1", sim.History.ContactOf(5));
        Finish(sim);
    }

    [Fact]
    public void LiveMemberKeepsItsNameAgainstANewcomerAskingForItInAnotherCase()
    {
        var sim = Formed(Quiet with { Nodes = 4 }, seed: 3, members: 3);
        var start = sim.Now;
        sim.StartNode(3, start, JoinContact.Server, "N1");

        Assert.True(sim.RunUntil(sim.AdmissionFormed, sim.Now + TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20)), Report(sim));
        Assert.Equal(DenyReason.NameTaken, sim.History.DenyReasonOf(3));
        Assert.True(sim.History.DeniedAt(3) < start + TimeSpan.FromSeconds(1), "the live holder answers the server's probe at once");
        Finish(sim);
    }

    [Fact]
    public void ServerGivesASilentMembersNameAwayOnlyAfterItsProbeTimeout()
    {
        var sim = Formed(Quiet with { Nodes = 4 }, seed: 4, members: 3);
        sim.Crash(1);
        sim.RunFor(TimeSpan.FromMilliseconds(200));
        var start = sim.Now;
        sim.StartNode(3, start, JoinContact.Server, "N1");

        Assert.True(sim.RunUntil(() => sim.History.HasJoined(3), sim.Now + TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20)), Report(sim));
        var joinedAt = sim.History.Events[(int)sim.History.JoinedOrder(3)].At;
        Assert.InRange(joinedAt - start, TimeSpan.FromMilliseconds(1500), TimeSpan.FromSeconds(3));
        sim.RunFor(TimeSpan.FromSeconds(3)); // the newcomer learned the crashed holder from members that suspect it: it goes Down too
        Finish(sim);
    }

    [Fact]
    public void ServerAdmittingMoreThanTheEnginesCapIsCaughtByTheCapChecker()
    {
        // A misconfigured world: the server admits 12 while the engines' cap is 10. The recorded views must show it.
        var result = Simulation.Run(5, Quiet with
        {
            Nodes = 12,
            DiscoveryMaxMembers = 12,
            Admission = new AdmissionScenario { Kind = AdmissionKind.Crowd },
        });

        Assert.Contains(result.Violations, v => v.Invariant == Invariants.AdmissionCap && v.Detail.Contains("over the cap of 10", StringComparison.Ordinal));
        Assert.Contains("admission (node, name asked for", result.Report(), StringComparison.Ordinal);
    }

    [Fact]
    public void PausedHolderWhoseNameWasGivenAwayIsCaughtByTheUniqueNamesChecker()
    {
        // A paused process is silent like a dead one: the server gives its name away, and it comes back under it.
        var sim = Formed(Quiet with { Nodes = 4 }, seed: 6, members: 3);
        sim.Pause(1);
        sim.StartNode(3, sim.Now, JoinContact.Server, "n1");
        Assert.True(sim.RunUntil(() => sim.History.HasJoined(3), sim.Now + TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20)), Report(sim));
        sim.Resume(1);
        sim.RunFor(TimeSpan.FromSeconds(1));

        var result = sim.Finish();
        Assert.Contains(result.Violations, v => v.Invariant == Invariants.UniqueNames && v.Detail.Contains("'n1'", StringComparison.Ordinal));
    }

    private static Simulation Formed(Scenario scenario, ulong seed, int members)
    {
        var sim = new Simulation(seed, scenario);
        sim.StartServer();
        for (var i = 0; i < members; i++)
        {
            sim.StartNode(i, Relearn + TimeSpan.FromMilliseconds(10 * i), JoinContact.Server);
        }

        Assert.True(sim.RunUntil(sim.AdmissionFormed, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20)), Report(sim));
        return sim;
    }

    private static void Finish(Simulation sim)
    {
        Assert.True(sim.Settle(TimeSpan.FromSeconds(10)), Report(sim));
        sim.Finish().ThrowIfFailed();
    }

    private static string Report(Simulation sim) =>
        string.Join(Environment.NewLine, sim.DriverViolations.Select(v => v.ToString()).Concat(sim.Trace.Tail(80)));
}
