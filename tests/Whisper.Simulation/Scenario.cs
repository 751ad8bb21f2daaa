using System.Globalization;
using System.Text;
using Whisper.Protocol.Engine;

namespace Whisper.Simulation;

/// <summary>How an injected node crash meets the node's call contract.</summary>
public enum CrashStyle
{
    /// <summary>Each crash draws one of the styles below.</summary>
    Mixed,

    /// <summary>The node stops between two inputs: everything it emitted so far left, nothing more will.</summary>
    BetweenSteps,

    /// <summary>The node stops in the middle of draining its transmits after its next input: only the first k datagrams leave.</summary>
    MidDrain,

    /// <summary>The node stops while draining the datagrams of its next broadcast: the message reaches only some members.</summary>
    MidBroadcast,
}

/// <summary>
/// The parameters of one simulated world. Together with a seed they determine the run bit for bit
/// (<see cref="Simulation.Run"/>). Probabilities are per datagram and per directed link; each link draws its own
/// values around these means (<see cref="LinkSpread"/>).
/// </summary>
public sealed record Scenario
{
    public string Name { get; init; } = "custom";

    /// <summary>Whisper nodes (the discovery server is extra).</summary>
    public int Nodes { get; init; } = 10;

    public EngineOptions Engine { get; init; } = new();

    // ------------------------------------------------------------------ network

    /// <summary>Mean probability that a datagram is lost while faults are on.</summary>
    public double Loss { get; init; }

    /// <summary>Mean probability that a datagram arrives twice while faults are on.</summary>
    public double Duplication { get; init; }

    /// <summary>Fixed one-way latency of a link (links draw around it).</summary>
    public TimeSpan DelayBase { get; init; } = TimeSpan.FromMilliseconds(0.5);

    /// <summary>Extra uniform latency per datagram; anything above zero reorders datagrams.</summary>
    public TimeSpan DelayJitter { get; init; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Mean probability that a datagram straggles: arrives up to <see cref="StraggleDelay"/> late (while faults are on).</summary>
    public double Straggle { get; init; }

    public TimeSpan StraggleDelay { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>Per-link spread of the means: each link uses mean * U(1 - spread, 1 + spread).</summary>
    public double LinkSpread { get; init; } = 0.5;

    /// <summary>Whether loss and duplication already apply while the group forms.</summary>
    public bool FaultsDuringJoin { get; init; } = true;

    // ------------------------------------------------------------------ partitions

    /// <summary>Partitions during the workload, one after another, each healed before the next.</summary>
    public int Partitions { get; init; }

    public TimeSpan MinPartition { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Keep well under <see cref="EngineOptions.DownAfter"/>: Down is final in this protocol version.</summary>
    public TimeSpan MaxPartition { get; init; } = TimeSpan.FromMilliseconds(800);

    // ------------------------------------------------------------------ crashes

    /// <summary>Nodes that crash (stop forever) at random times during the workload.</summary>
    public int Crashes { get; init; }

    /// <summary>Processes frozen during the workload (timers stop, datagrams queue), each for <see cref="MinPause"/>-<see cref="MaxPause"/>, then resumed.</summary>
    public int Pauses { get; init; }

    public TimeSpan MinPause { get; init; } = TimeSpan.FromMilliseconds(300);

    public TimeSpan MaxPause { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Faults may last longer than <c>DownAfter</c> (long pauses and partitions): members are then rightly declared down
    /// while running and must find out and stop (<see cref="EvictedEvent"/>; the simulator counts the evicted incarnation as
    /// crashed). Without it an eviction, like a false down, is a violation.
    /// </summary>
    public bool EvictionsExpected { get; init; }

    /// <summary>
    /// Extra nodes, not started with the group, that stand in for the new incarnations of evicted members: when a
    /// member is evicted, the next spare starts under its name and joins through the member that told it (as
    /// <c>WhisperNode</c> does), so merges are exercised too. Spares count as nodes only once started.
    /// </summary>
    public int RejoinSpares { get; init; }

    public CrashStyle CrashStyle { get; init; } = CrashStyle.Mixed;

    /// <summary>Whether the discovery server crashes during the workload.</summary>
    public bool CrashDiscovery { get; init; }

    // ------------------------------------------------------------------ admission

    /// <summary>The discovery server's cap (<c>DiscoveryOptions.MaxMembers</c>); null: as many as there are nodes (at most 16).</summary>
    public int? DiscoveryMaxMembers { get; init; }

    /// <summary>Admission races to play instead of the standard script's orderly joins; null for the standard script.</summary>
    public AdmissionScenario? Admission { get; init; }

    // ------------------------------------------------------------------ workload

    /// <summary>How long the workload and the faults last, after the group has formed.</summary>
    public TimeSpan WorkloadDuration { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Spontaneous broadcasts per node and second (a Poisson process).</summary>
    public double BroadcastsPerSecond { get; init; } = 2;

    /// <summary>Each spontaneous broadcast is a burst of 1 to this many messages sent back to back (flow control under test).</summary>
    public int MaxBroadcastBurst { get; init; } = 1;

    /// <summary>Bursts of private messages per node and second, each to one random member.</summary>
    public double PrivateBurstsPerSecond { get; init; } = 0.7;

    /// <summary>Private messages in a burst: 1 to this, sent back to back (FIFO under test).</summary>
    public int MaxBurst { get; init; } = 4;

    /// <summary>Probability that a node replies with a broadcast right after delivering another node's broadcast.</summary>
    public double ReplyProbability { get; init; } = 0.04;

    /// <summary>Replies to replies stop at this depth, so chains stay bounded.</summary>
    public int MaxReplyDepth { get; init; } = 4;

    /// <summary>Share of messages of 1-3 KB (a few chunks).</summary>
    public double MediumMessageShare { get; init; } = 0.1;

    /// <summary>Share of messages of 4-10 KB (many chunks).</summary>
    public double LargeMessageShare { get; init; } = 0.02;

    /// <summary>Wait before retrying a send refused with <see cref="SendStatus.WindowFull"/>.</summary>
    public TimeSpan RetryInterval { get; init; } = TimeSpan.FromMilliseconds(20);

    // ------------------------------------------------------------------ bounds (drive_bounded)

    /// <summary>The group must form (every node sees every node Up) within this.</summary>
    public TimeSpan JoinLimit { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>After the faults stop, everything owed must be delivered and views converge within this.</summary>
    public TimeSpan SettleLimit { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Once settled, the run continues this long to catch late duplicates and spurious status changes.</summary>
    public TimeSpan QuietPeriod { get; init; } = TimeSpan.FromMilliseconds(400);

    /// <summary>Upper bound on processed events (livelock guard).</summary>
    public long MaxEvents { get; init; } = 3_000_000;

    /// <summary>One line with every parameter, printed in every failure report.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append(c, $"{Name}: nodes={Nodes} loss={Loss:0.###} dup={Duplication:0.###} delay={Ms(DelayBase)}+{Ms(DelayJitter)}ms spread={LinkSpread:0.##} straggle={Straggle:0.###}x{Ms(StraggleDelay)}ms");
        sb.Append(c, $" faultsDuringJoin={FaultsDuringJoin} partitions={Partitions}x{Ms(MinPartition)}-{Ms(MaxPartition)}ms");
        sb.Append(c, $" crashes={Crashes}({CrashStyle}) crashDiscovery={CrashDiscovery} pauses={Pauses}x{Ms(MinPause)}-{Ms(MaxPause)}ms evictions={(EvictionsExpected ? "expected" : "violation")} spares={RejoinSpares}");
        sb.Append(c, $" workload={Ms(WorkloadDuration)}ms bcast/s={BroadcastsPerSecond:0.##} bursts/s={PrivateBurstsPerSecond:0.##} maxBurst={MaxBurst} bcastBurst={MaxBroadcastBurst} reply={ReplyProbability:0.###}");
        sb.Append(c, $" medium={MediumMessageShare:0.##} large={LargeMessageShare:0.##}");
        sb.Append(c, $" engine(hb={Ms(Engine.HeartbeatInterval)} suspect={Ms(Engine.SuspectAfter)} down={Ms(Engine.DownAfter)} window={Engine.SendWindowChunks}/{Engine.PrivateWindowChunks})");
        if (Admission is { } admission)
        {
            sb.Append(c, $" cap(engine={Engine.MaxMembers} server={DiscoveryMaxMembers?.ToString(c) ?? "nodes"}) {admission.Describe()}");
        }

        return sb.ToString();
    }

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0.##", CultureInfo.InvariantCulture);
}
