namespace Whisper.Simulation;

/// <summary>The families of seeded worlds the test suite explores. A seed alone picks the family and its parameters.</summary>
public enum ScenarioFamily
{
    /// <summary>Loss 0-30%, duplication, delay and reordering; no partitions or crashes.</summary>
    Lossy = 0,

    /// <summary>Loss up to 10% plus one to three short partitions (isolations and splits) that heal.</summary>
    Partitions = 1,

    /// <summary>One sender crashes while its broadcast's datagrams are leaving: it reaches only some members.</summary>
    SenderCrash = 2,

    /// <summary>One to three nodes crash at random steps (between inputs or mid-drain), with loss and a partition.</summary>
    Crashes = 3,

    /// <summary>The discovery server crashes mid-workload, sometimes with a node crash; the group carries on.</summary>
    DiscoveryCrash = 4,

    /// <summary>Small send windows and heavy bursts of large messages, so flow control refuses sends (WindowFull) and the workload retries.</summary>
    FlowControl = 5,

    /// <summary>
    /// Some datagrams arrive up to 4 s late, longer than <c>DownAfter</c>: stale copies from members already declared
    /// Down (1-4 crashes), or their stale chunks and acks, reach the survivors. Loss up to 20%.
    /// </summary>
    Stragglers = 6,
}

/// <summary>Draws a <see cref="Scenario"/> from a seed: <c>seed % 7</c> picks the <see cref="ScenarioFamily"/>.</summary>
public static class ScenarioCatalog
{
    public const int FamilyCount = 7;

    public static ScenarioFamily FamilyOf(ulong seed) => (ScenarioFamily)(int)(seed % FamilyCount);

    /// <summary>The n-th seed (0-based) of a family: seeds of a family are <c>family + 7 k</c>.</summary>
    public static ulong SeedOf(ScenarioFamily family, int index) => (ulong)family + (FamilyCount * (ulong)index);

    public static Scenario ForSeed(ulong seed)
    {
        var r = SimRandom.Derive(seed, "scenario");
        var family = FamilyOf(seed);
        var baseline = new Scenario
        {
            Name = family.ToString(),
            DelayBase = r.NextTime(TimeSpan.FromMilliseconds(0.1), TimeSpan.FromMilliseconds(5)),
            DelayJitter = r.NextTime(TimeSpan.Zero, TimeSpan.FromMilliseconds(15)),
            Duplication = r.Chance(0.6) ? r.NextDouble(0, 0.1) : 0,
            BroadcastsPerSecond = r.NextDouble(1, 3),
            PrivateBurstsPerSecond = r.NextDouble(0.3, 1),
            ReplyProbability = r.NextDouble(0, 0.06),
            Straggle = r.Chance(0.3) ? r.NextDouble(0, 0.02) : 0,
        };

        return family switch
        {
            ScenarioFamily.Lossy => baseline with { Loss = r.NextDouble(0, 0.3) },
            ScenarioFamily.Partitions => baseline with
            {
                Loss = r.NextDouble(0, 0.1),
                Partitions = r.NextInt(1, 4),
                MaxPartition = TimeSpan.FromMilliseconds(r.NextInt(300, 1001)),
            },
            ScenarioFamily.SenderCrash => baseline with
            {
                Loss = r.NextDouble(0, 0.1),
                Crashes = 1,
                CrashStyle = CrashStyle.MidBroadcast,
                MediumMessageShare = 0.3,
            },
            ScenarioFamily.Crashes => baseline with
            {
                Loss = r.NextDouble(0, 0.15),
                Crashes = r.NextInt(1, 4),
                CrashStyle = CrashStyle.Mixed,
                Partitions = r.NextInt(0, 2),
                MaxPartition = TimeSpan.FromMilliseconds(600),
            },
            ScenarioFamily.DiscoveryCrash => baseline with
            {
                Loss = r.NextDouble(0, 0.15),
                CrashDiscovery = true,
                Crashes = r.NextInt(0, 2),
            },
            ScenarioFamily.FlowControl => baseline with
            {
                Loss = r.NextDouble(0, 0.1),
                Engine = baseline.Engine with { SendWindowChunks = 128, PrivateWindowChunks = 128 },
                BroadcastsPerSecond = r.NextDouble(0.1, 0.2),
                MaxBroadcastBurst = 50,
                PrivateBurstsPerSecond = r.NextDouble(0.05, 0.15),
                MaxBurst = 50,
                MediumMessageShare = 0.2,
                LargeMessageShare = 0.6,
                WorkloadDuration = TimeSpan.FromSeconds(1.5),
            },
            ScenarioFamily.Stragglers => baseline with
            {
                Loss = r.NextDouble(0.05, 0.2),
                Straggle = r.NextDouble(0.02, 0.06),
                StraggleDelay = TimeSpan.FromSeconds(4),
                Crashes = r.NextInt(1, 5),
                CrashStyle = CrashStyle.Mixed,
                ReplyProbability = 0.08,
                BroadcastsPerSecond = r.NextDouble(2, 3),
            },
            _ => throw new ArgumentOutOfRangeException(nameof(seed)),
        };
    }
}
