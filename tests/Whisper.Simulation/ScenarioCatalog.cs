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

    /// <summary>
    /// Admission: 12 nodes ask the discovery server within 5 ms of each other (sometimes while it still re-learns), with
    /// duplicated and reordered join traffic: exactly 10 join, 2 are denied Full.
    /// </summary>
    Crowd = 7,

    /// <summary>
    /// Admission: 2-7 nodes join through the server, and two more claim one name (identical or in another case) at the
    /// same instant: one joins, the other is denied NameTaken. Sometimes a member then crashes and a last node claims
    /// its name: the server gives it away once the holder stayed silent for its probe timeout.
    /// </summary>
    NameClash = 8,

    /// <summary>
    /// Admission: 8-12 nodes join through the server (sometimes two of them under one name), which crashes at a random
    /// moment during the joins (sometimes mid-drain) and restarts after 50 ms-6 s, or never: the cap and unique names
    /// hold, nodes join or are denied, and give up unanswered only when the server was away longer than their retries.
    /// </summary>
    DiscoveryRestart = 9,

    /// <summary>
    /// Admission without the server: a group of 7-9 formed, the server crashed for good, and 2-5 newcomers join at once
    /// through different members (some under a member's name in another case, sometimes two under one name): the
    /// coordinator keeps the cap and unique names.
    /// </summary>
    JoinThroughMembers = 10,

    /// <summary>
    /// Fault tolerance: one or two members freeze for 0.3-7 s (longer than <c>DownAfter</c> in about half the runs) and
    /// resume, sometimes with a crash, under loss and duplication: a member frozen too long is declared down, finds out
    /// on resume and stops (evicted); a short freeze costs nothing; safety and agreement among survivors hold.
    /// </summary>
    Pauses = 11,

    /// <summary>
    /// Fault tolerance: a partition of 3-6 s (isolation or a split) heals: each side declares the other down and keeps
    /// chatting; after the heal the smaller side (or the side without the most senior member) is evicted, the larger
    /// side carries on, and safety and agreement hold among the survivors.
    /// </summary>
    LongPartitions = 12,

    /// <summary><see cref="Pauses"/>, and each evicted member comes back as a new incarnation (a spare node under its name).</summary>
    PausesWithRejoin = 13,

    /// <summary><see cref="LongPartitions"/>, and each evicted member comes back as a new incarnation (a spare node under its name).</summary>
    LongPartitionsWithRejoin = 14,
}

/// <summary>
/// Draws a <see cref="Scenario"/> from a seed. Two seed spaces: below <see cref="AdmissionSeedBase"/>,
/// <c>seed % 7</c> picks a delivery family (unchanged since the first catalog, so old seeds replay the same worlds);
/// from <see cref="AdmissionSeedBase"/> on, <c>(seed - base) % 4</c> picks an admission family.
/// </summary>
public static class ScenarioCatalog
{
    /// <summary>Delivery families (<see cref="ScenarioFamily.Lossy"/> to <see cref="ScenarioFamily.Stragglers"/>): <c>seed % 7</c>.</summary>
    public const int DeliveryFamilyCount = 7;

    /// <summary>Admission families (<see cref="ScenarioFamily.Crowd"/> to <see cref="ScenarioFamily.JoinThroughMembers"/>).</summary>
    public const int AdmissionFamilyCount = 4;

    public const int FamilyCount = DeliveryFamilyCount + AdmissionFamilyCount + FaultFamilyCount;

    /// <summary>The first admission seed: seeds of admission family f are <c>base + (f - 7) + 4 k</c>.</summary>
    public const ulong AdmissionSeedBase = 1_000_000_000;

    /// <summary>Fault-tolerance families (<see cref="ScenarioFamily.Pauses"/>, <see cref="ScenarioFamily.LongPartitions"/>).</summary>
    public const int FaultFamilyCount = 4;

    /// <summary>The first fault-tolerance seed: seeds of fault family f are <c>base + (f - 11) + 2 k</c>.</summary>
    public const ulong FaultSeedBase = 2_000_000_000;

    public static bool IsAdmission(ScenarioFamily family) => (int)family >= DeliveryFamilyCount && (int)family < DeliveryFamilyCount + AdmissionFamilyCount;

    public static bool IsFaultTolerance(ScenarioFamily family) => (int)family >= DeliveryFamilyCount + AdmissionFamilyCount;

    public static ScenarioFamily FamilyOf(ulong seed) => seed >= FaultSeedBase
        ? (ScenarioFamily)(DeliveryFamilyCount + AdmissionFamilyCount + (int)((seed - FaultSeedBase) % FaultFamilyCount))
        : seed >= AdmissionSeedBase
        ? (ScenarioFamily)(DeliveryFamilyCount + (int)((seed - AdmissionSeedBase) % AdmissionFamilyCount))
        : (ScenarioFamily)(int)(seed % DeliveryFamilyCount);

    /// <summary>The n-th seed (0-based) of a family: <c>family + 7 k</c> for delivery families, <c>base + (family - 7) + 4 k</c> for admission ones.</summary>
    public static ulong SeedOf(ScenarioFamily family, int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        if (IsFaultTolerance(family))
        {
            return FaultSeedBase + (ulong)(family - DeliveryFamilyCount - AdmissionFamilyCount) + (FaultFamilyCount * (ulong)index);
        }

        if (IsAdmission(family))
        {
            return AdmissionSeedBase + (ulong)(family - DeliveryFamilyCount) + (AdmissionFamilyCount * (ulong)index);
        }

        var seed = (ulong)family + (DeliveryFamilyCount * (ulong)index);
        return seed < AdmissionSeedBase ? seed : throw new ArgumentOutOfRangeException(nameof(index), index, "delivery seeds end where admission seeds begin");
    }

    public static Scenario ForSeed(ulong seed)
    {
        var r = SimRandom.Derive(seed, "scenario");
        var family = FamilyOf(seed);
        if (IsAdmission(family))
        {
            return AdmissionScenarioFor(family, r);
        }

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
            ScenarioFamily.Pauses or ScenarioFamily.PausesWithRejoin => baseline with
            {
                Loss = r.NextDouble(0, 0.1),
                Pauses = r.NextInt(1, 3),
                MinPause = TimeSpan.FromMilliseconds(300),
                MaxPause = TimeSpan.FromSeconds(7),
                Crashes = r.Chance(0.3) ? 1 : 0,
                WorkloadDuration = TimeSpan.FromSeconds(9),
                BroadcastsPerSecond = r.NextDouble(0.5, 1.5),
                EvictionsExpected = true,
                RejoinSpares = family == ScenarioFamily.PausesWithRejoin ? 3 : 0,
            },
            ScenarioFamily.LongPartitions or ScenarioFamily.LongPartitionsWithRejoin => baseline with
            {
                Loss = r.NextDouble(0, 0.1),
                Partitions = 1,
                MinPartition = TimeSpan.FromSeconds(3),
                MaxPartition = TimeSpan.FromSeconds(6),
                WorkloadDuration = TimeSpan.FromSeconds(8),
                BroadcastsPerSecond = r.NextDouble(0.5, 1.5),
                EvictionsExpected = true,
                RejoinSpares = family == ScenarioFamily.LongPartitionsWithRejoin ? 6 : 0,
            },
            _ => throw new ArgumentOutOfRangeException(nameof(seed)),
        };
    }

    /// <summary>
    /// Admission worlds: faults on from the start (loss capped at 10% per link while nodes join), duplicated and
    /// reordered join traffic, a cap of 10 at the server and in every engine, then a short workload among the admitted.
    /// </summary>
    private static Scenario AdmissionScenarioFor(ScenarioFamily family, SimRandom r)
    {
        var joinTraffic = new AdmissionScenario
        {
            JoinDuplication = r.NextDouble(0, 0.4),
            JoinReorder = r.NextTime(TimeSpan.Zero, TimeSpan.FromMilliseconds(300)),
        };
        var baseline = new Scenario
        {
            Name = family.ToString(),
            DiscoveryMaxMembers = 10,
            DelayBase = r.NextTime(TimeSpan.FromMilliseconds(0.1), TimeSpan.FromMilliseconds(5)),
            DelayJitter = r.NextTime(TimeSpan.Zero, TimeSpan.FromMilliseconds(15)),
            Duplication = r.Chance(0.6) ? r.NextDouble(0, 0.1) : 0,
            Loss = r.NextDouble(0, 0.15),
            WorkloadDuration = TimeSpan.FromSeconds(1),
            BroadcastsPerSecond = r.NextDouble(1, 2),
            PrivateBurstsPerSecond = r.NextDouble(0.3, 0.7),
            ReplyProbability = r.NextDouble(0, 0.05),
            JoinLimit = TimeSpan.FromSeconds(20),
        };

        switch (family)
        {
            case ScenarioFamily.Crowd:
                return baseline with
                {
                    Nodes = 12,
                    Admission = joinTraffic with
                    {
                        Kind = AdmissionKind.Crowd,
                        StartSpread = r.NextTime(TimeSpan.Zero, TimeSpan.FromMilliseconds(5)),
                        StartDuringRelearn = r.Chance(0.5),
                    },
                };
            case ScenarioFamily.NameClash:
            {
                var initial = r.NextInt(2, 8);
                var reclaim = r.Chance(0.35);
                return baseline with
                {
                    Nodes = initial + 2 + (reclaim ? 1 : 0),

                    // A newcomer may adopt the crashed holder from a member that already suspects it, and only drops it
                    // DownAfter later: the quiet period outlasts that, so the final views are settled ones.
                    QuietPeriod = reclaim ? TimeSpan.FromSeconds(3) : baseline.QuietPeriod,
                    Admission = joinTraffic with
                    {
                        Kind = AdmissionKind.NameClash,
                        InitialMembers = initial,
                        ClashPair = true,
                        ClashSameCase = r.Chance(0.4),
                        ReclaimCrashedName = reclaim,
                    },
                };
            }

            case ScenarioFamily.DiscoveryRestart:
                return baseline with
                {
                    Nodes = r.NextInt(8, 13),
                    Admission = joinTraffic with
                    {
                        Kind = AdmissionKind.ServerRestart,
                        StartSpread = r.NextTime(TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(400)),
                        ClashPair = r.Chance(0.4),
                        ClashSameCase = r.Chance(0.4),
                        ServerCrash = true,
                        ServerCrashMidDrain = r.Chance(0.4),
                        ServerRestartDelay = r.Chance(0.25) ? null : r.NextTime(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(6)),
                    },
                };
            case ScenarioFamily.JoinThroughMembers:
            {
                var initial = r.NextInt(7, 10);
                var newcomers = r.NextInt(2, 6);
                var withMembers = r.NextInt(0, 2);
                return baseline with
                {
                    Nodes = initial + newcomers,
                    Admission = joinTraffic with
                    {
                        Kind = AdmissionKind.Serverless,
                        InitialMembers = initial,
                        ClashWithMembers = withMembers,
                        ClashPair = newcomers - withMembers >= 2 && r.Chance(0.4),
                        ClashSameCase = r.Chance(0.4),
                        LeaseToServer = r.Chance(0.5),
                        StartSpread = r.NextTime(TimeSpan.Zero, TimeSpan.FromMilliseconds(5)),
                    },
                };
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(family));
        }
    }
}
