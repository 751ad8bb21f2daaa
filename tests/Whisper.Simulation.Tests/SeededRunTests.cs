using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// Seeded worlds of 10 nodes and a discovery server (<see cref="ScenarioCatalog"/>): 300 seeds per family by default
/// (2,100 in all; <c>WHISPER_SIM_SEEDS</c> raises it). Every run is checked for exactly-once, causal order, FIFO,
/// private-only-at-recipient, integrity, no false Down, and after healing agreement, no loss and converged views.
/// A failure lists its seeds; replay one with <c>WHISPER_SIM_SEED=&lt;seed&gt; dotnet test tests/Whisper.Simulation.Tests --filter Replay</c>.
/// </summary>
public sealed class SeededRunTests(ITestOutputHelper output)
{
    [Fact]
    public void LossDuplicationAndReorderingNeverBreakDeliveryGuarantees() =>
        SeedRunner.RunFamily(ScenarioFamily.Lossy, output);

    [Fact]
    public void ShortPartitionsHealWithoutLossOrMisorder() =>
        SeedRunner.RunFamily(ScenarioFamily.Partitions, output);

    [Fact]
    public void BroadcastOfASenderCrashingMidSendIsDeliveredByAllLiveMembersOrNone() =>
        SeedRunner.RunFamily(ScenarioFamily.SenderCrash, output);

    [Fact]
    public void CrashesAtRandomStepsKeepSafetyAndSurvivorsAgree() =>
        SeedRunner.RunFamily(ScenarioFamily.Crashes, output);

    [Fact]
    public void DiscoveryServerCrashDoesNotDisturbAFormedGroup() =>
        SeedRunner.RunFamily(ScenarioFamily.DiscoveryCrash, output);

    [Fact]
    public void FlowControlRefusalsAreRetriedAndNothingIsLostOrReordered() =>
        SeedRunner.RunFamily(ScenarioFamily.FlowControl, output);

    [Fact]
    public void DatagramsArrivingSecondsLateFromMembersAlreadyDownAreHarmless() =>
        SeedRunner.RunFamily(ScenarioFamily.Stragglers, output);
}
