using System.Globalization;
using System.Text;

namespace Whisper.Simulation;

/// <summary>The admission races a world plays out (<see cref="AdmissionScenario.Kind"/>).</summary>
public enum AdmissionKind
{
    /// <summary>Every node joins through the discovery server within <see cref="AdmissionScenario.StartSpread"/> of each other.</summary>
    Crowd,

    /// <summary>
    /// <see cref="AdmissionScenario.InitialMembers"/> nodes join through the server, and two more claim one name (maybe
    /// in another case) at the same instant. Optionally a member then crashes and one more node claims its name.
    /// </summary>
    NameClash,

    /// <summary>Every node joins through the server, which crashes during the joins and restarts after a delay (or never).</summary>
    ServerRestart,

    /// <summary>
    /// <see cref="AdmissionScenario.InitialMembers"/> nodes form the group through the server, the server crashes for
    /// good, and the other nodes join concurrently through different members (the coordinator admits).
    /// </summary>
    Serverless,
}

/// <summary>
/// The admission part of a <see cref="Scenario"/>: who joins when, under which name, through whom, and what happens to
/// the discovery server meanwhile. With it, <see cref="Simulation.Run"/> plays the admission script instead of the
/// standard one: denials are outcomes to judge (not failures), every view is recorded, and the admission checkers
/// (<see cref="AdmissionCheckers"/>) run besides the delivery checkers. The concrete start times, names and contacts
/// are drawn from the seed's <c>"admission"</c> stream and noted in the trace and the report. Only scalars, so two
/// equal scenarios compare equal.
/// </summary>
public sealed record AdmissionScenario
{
    public AdmissionKind Kind { get; init; }

    /// <summary>Nodes that form the group first (<see cref="AdmissionKind.NameClash"/>, <see cref="AdmissionKind.Serverless"/>); the rest are newcomers.</summary>
    public int InitialMembers { get; init; }

    /// <summary>Newcomers start within this of each other (a few ms: concurrent joins).</summary>
    public TimeSpan StartSpread { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The newcomers start while the server is still in its re-learn window (their first requests go unanswered).</summary>
    public bool StartDuringRelearn { get; init; }

    /// <summary>Two newcomers claim one name at the same instant.</summary>
    public bool ClashPair { get; init; }

    /// <summary>The two names of <see cref="ClashPair"/> are identical, not just equal ignoring case.</summary>
    public bool ClashSameCase { get; init; }

    /// <summary>Newcomers that ask for the name of an initial member, in another case (<see cref="AdmissionKind.Serverless"/>).</summary>
    public int ClashWithMembers { get; init; }

    /// <summary>
    /// A member crashes, and the last node claims its name after it went silent (<see cref="AdmissionKind.NameClash"/>):
    /// the server must give the name away after its probe timeout.
    /// </summary>
    public bool ReclaimCrashedName { get; init; }

    /// <summary>The server crashes at a random moment during the joins (<see cref="AdmissionKind.ServerRestart"/>).</summary>
    public bool ServerCrash { get; init; }

    /// <summary>The server's crash comes in the middle of draining its answers (only some of them leave).</summary>
    public bool ServerCrashMidDrain { get; init; }

    /// <summary>How long after its crash a fresh server starts at the same address; null: never.</summary>
    public TimeSpan? ServerRestartDelay { get; init; }

    /// <summary>Newcomers joining through a member still name the (dead) server for their leases (<c>--peer</c> with <c>--server</c>).</summary>
    public bool LeaseToServer { get; init; }

    /// <summary>Probability that a datagram carrying join traffic (request, accept, deny, forward, lease) gets one more copy, while faults are on.</summary>
    public double JoinDuplication { get; init; }

    /// <summary>Extra uniform delay of every copy of join traffic, while faults are on: retransmitted requests overtake older ones, answers arrive stale.</summary>
    public TimeSpan JoinReorder { get; init; }

    /// <summary>One line with every parameter, for reports.</summary>
    public string Describe()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(c, $"admission={Kind} initial={InitialMembers} spread={Ms(StartSpread)}ms duringRelearn={StartDuringRelearn}");
        sb.Append(c, $" clashPair={ClashPair}{(ClashPair ? ClashSameCase ? "(same case)" : "(other case)" : "")} clashWithMembers={ClashWithMembers} reclaim={ReclaimCrashedName}");
        sb.Append(c, $" serverCrash={ServerCrash}{(ServerCrashMidDrain ? "(mid-drain)" : "")} restartAfter={(ServerRestartDelay is { } d ? Ms(d) + "ms" : "never")} leaseToServer={LeaseToServer}");
        sb.Append(c, $" joinDup={JoinDuplication:0.###} joinReorder={Ms(JoinReorder)}ms");
        return sb.ToString();
    }

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0.##", CultureInfo.InvariantCulture);
}
