using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// Seeded worlds of 10 nodes and a discovery server (<see cref="ScenarioCatalog"/>): 300 seeds per delivery family by
/// default (2,100 in all) and 200 per admission family (800; <c>WHISPER_SIM_SEEDS</c> sets both). Every run is checked
/// for exactly-once, causal order, FIFO, private-only-at-recipient, integrity, no false Down, and after healing
/// agreement, no loss and converged views; admission runs also for the cap, unique names, justified denials and
/// agreement on who joined (<see cref="AdmissionCheckers"/>), at every instant of the run.
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

    [Fact]
    public void TwelveNodesJoiningAtOnceThroughTheServerAdmitExactlyTenAndDenyTwoFull() =>
        SeedRunner.RunFamily(ScenarioFamily.Crowd, output);

    [Fact]
    public void TwoNodesClaimingOneNameAtOnceAdmitOneAndDenyTheOtherNameTaken() =>
        SeedRunner.RunFamily(ScenarioFamily.NameClash, output);

    [Fact]
    public void DiscoveryServerCrashingAndRestartingDuringJoinsKeepsTheCapAndUniqueNames() =>
        SeedRunner.RunFamily(ScenarioFamily.DiscoveryRestart, output);

    [Fact]
    public void ConcurrentJoinsThroughDifferentMembersWithoutTheServerKeepTheCapAndUniqueNames() =>
        SeedRunner.RunFamily(ScenarioFamily.JoinThroughMembers, output);

    [Fact]
    public void MembersFrozenPastTheDownTimeoutAreEvictedOnResumeAndSurvivorsKeepEveryGuarantee() =>
        SeedRunner.RunFamily(ScenarioFamily.Pauses, output);

    [Fact]
    public void AfterALongPartitionHealsTheSmallerSideIsEvictedAndSurvivorsKeepEveryGuarantee() =>
        SeedRunner.RunFamily(ScenarioFamily.LongPartitions, output);

    // Was an open finding (docs/testing.md): a member resuming from a freeze delivered messages of a member the group
    // had already closed and passed on messages depending on them (e.g. seed 2000000150). Fixed by the quarantine
    // after a stall (WhisperEngine.Quarantine.cs) and by dropping listed-but-silent members the group removed.
    [Fact]
    public void FrozenMembersComeBackAsNewIncarnationsAndEveryoneKeepsEveryGuarantee() =>
        SeedRunner.RunFamily(ScenarioFamily.PausesWithRejoin, output);

    [Fact]
    public void TheSmallerSideOfAHealedPartitionComesBackAsNewIncarnationsAndEveryoneKeepsEveryGuarantee() =>
        SeedRunner.RunFamily(ScenarioFamily.LongPartitionsWithRejoin, output);
}

