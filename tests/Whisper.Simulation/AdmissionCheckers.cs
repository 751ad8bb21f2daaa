using System.Globalization;
using Whisper.Protocol.Wire;

namespace Whisper.Simulation;

/// <summary>
/// What an admission checker needs besides the <see cref="History"/>: the group's cap (the smaller of the engines'
/// and the discovery server's <c>MaxMembers</c>), and per node how many of its join requests reached a contact able
/// to answer them (the server up and past its re-learn window, or a joined member); null when not counted.
/// </summary>
public sealed record AdmissionRules(int Cap)
{
    /// <summary>A node may give up as <see cref="DenyReason.Unreachable"/> only when fewer than this many of its requests reached a contact able to answer.</summary>
    public const int UnreachableBelowAnswerable = 10;

    /// <summary>Per node: join requests that arrived at a contact able to answer (see the type's summary).</summary>
    public IReadOnlyList<int>? AnswerableRequests { get; init; }
}

/// <summary>
/// Admission invariants over a <see cref="History"/> that recorded starts, denials and views
/// (<see cref="History.RecordStarted"/>, <see cref="History.RecordDenied"/>, <see cref="History.RecordView"/>).
/// Like <see cref="Checkers"/>, each returns what it found and each can fail (the unit tests inject the faults).
/// <list type="bullet">
/// <item><see cref="Cap"/>: at no instant does a node's view hold more than the cap of members that are still running
/// (a crashed incarnation still Suspect in a view is a stale entry: the engine only drops it after <c>DownAfter</c>),
/// and at no instant are more than the cap of running nodes joined.</item>
/// <item><see cref="UniqueNames"/>: no two running joined nodes share a name ignoring case, and no view holds two running
/// members of one name.</item>
/// <item><see cref="Outcomes"/>: every started node that is still running ended joined or denied, never still joining;
/// every denial has its reason: <c>Full</c> only when at least the cap of nodes joined (and had not crashed before) or
/// may hold a slot the checker cannot see (a node that gave up unanswered), <c>NameTaken</c> only when another such
/// node holds the name ignoring case, <c>Unreachable</c> only when fewer than
/// <see cref="AdmissionRules.UnreachableBelowAnswerable"/> of the node's requests reached a contact able to answer,
/// and no other reason ever.</item>
/// <item><see cref="Agreement"/>: a node that ends denied never appears as a member in anyone's view.</item>
/// </list>
/// </summary>
public static class AdmissionCheckers
{
    /// <summary>Every admission checker.</summary>
    public static List<Violation> CheckAll(History history, AdmissionRules rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var all = Cap(history, rules.Cap);
        all.AddRange(UniqueNames(history));
        all.AddRange(Outcomes(history, rules));
        all.AddRange(Agreement(history));
        return all;
    }

    /// <summary>No view and no instant holds more than <paramref name="cap"/> running members.</summary>
    public static List<Violation> Cap(History history, int cap)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        foreach (var v in history.Views)
        {
            var running = v.Members.Where(s => s < 0 || !CrashedBy(history, s, v.At)).ToList();
            if (running.Count > cap)
            {
                Checkers.Add(found, Invariants.AdmissionCap,
                    $"{history.Names[v.Node]} saw {running.Count} running members at {Checkers.Time(v.At)}, over the cap of {cap}: {Members(history, running)}",
                    v.At, v.Node);
            }
        }

        var joined = new SortedSet<int>();
        foreach (var e in history.Events)
        {
            switch (e.Kind)
            {
                case HistoryEventKind.Joined when history.CrashedAt(e.Node) is not { } c || c > e.At:
                    joined.Add(e.Node);
                    if (joined.Count > cap)
                    {
                        Checkers.Add(found, Invariants.AdmissionCap,
                            $"{history.Names[e.Node]} joined at {Checkers.Time(e.At)} as member number {joined.Count}, over the cap of {cap}: {Members(history, joined)}",
                            e.At, e.Node);
                    }

                    break;
                case HistoryEventKind.Crashed or HistoryEventKind.Left:
                    joined.Remove(e.Node);
                    break;
                default:
                    break;
            }
        }

        return found;
    }

    /// <summary>No two running joined nodes, and no two running members of one view, share a name ignoring case.</summary>
    public static List<Violation> UniqueNames(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        var joined = new List<int>();
        foreach (var e in history.Events)
        {
            switch (e.Kind)
            {
                case HistoryEventKind.Joined when !joined.Contains(e.Node) && (history.CrashedAt(e.Node) is not { } c || c > e.At):
                    foreach (var other in joined)
                    {
                        if (SameName(history, e.Node, other))
                        {
                            Checkers.Add(found, Invariants.UniqueNames,
                                $"{Who(history, e.Node)} joined at {Checkers.Time(e.At)} while {Who(history, other)} (joined at {Checkers.Time(JoinedAt(history, other))}) is a running member",
                                e.At, e.Node, other);
                        }
                    }

                    joined.Add(e.Node);
                    break;
                case HistoryEventKind.Crashed or HistoryEventKind.Left:
                    joined.Remove(e.Node);
                    break;
                default:
                    break;
            }
        }

        foreach (var v in history.Views)
        {
            var running = v.Members.Where(s => s >= 0 && !CrashedBy(history, s, v.At)).ToList();
            for (var i = 0; i < running.Count; i++)
            {
                for (var j = i + 1; j < running.Count; j++)
                {
                    if (SameName(history, running[i], running[j]))
                    {
                        Checkers.Add(found, Invariants.UniqueNames,
                            $"{history.Names[v.Node]} saw both {Who(history, running[i])} and {Who(history, running[j])} as members at {Checkers.Time(v.At)}",
                            v.At, running[i], running[j]);
                    }
                }
            }
        }

        return found;
    }

    /// <summary>Every started, running node ended joined or justly denied (see the type's summary).</summary>
    public static List<Violation> Outcomes(History history, AdmissionRules rules)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(rules);
        var found = new List<Violation>();
        var gaveUp = Enumerable.Range(0, history.NodeCount)
            .Where(n => history.DeniedAt(n) is not null && history.DenyReasonOf(n) == DenyReason.Unreachable)
            .ToList();
        for (var n = 0; n < history.NodeCount; n++)
        {
            if (history.StartedAt(n) is null || history.HasJoined(n))
            {
                continue;
            }

            if (history.DeniedAt(n) is not { } at)
            {
                if (history.CrashedAt(n) is null && history.LeftAt(n) is null)
                {
                    Checkers.Add(found, Invariants.AdmissionOutcome,
                        $"{Who(history, n)} is still joining at the end: neither joined nor denied (started {Checkers.Time(history.StartedAt(n)!.Value)} through {history.ContactOf(n)})",
                        null, n);
                }

                continue;
            }

            var reason = history.DenyReasonOf(n);
            switch (reason)
            {
                case DenyReason.Full:
                    var holders = Enumerable.Range(0, history.NodeCount).Where(m => m != n && Holds(history, m, at)).ToList();
                    if (holders.Count + gaveUp.Count < rules.Cap)
                    {
                        Checkers.Add(found, Invariants.AdmissionOutcome,
                            $"{Who(history, n)} was denied Full at {Checkers.Time(at)}, but only {holders.Count} node(s) ever joined and were running then ({Members(history, holders)}) and {gaveUp.Count} gave up unanswered, under the cap of {rules.Cap}",
                            at, n);
                    }

                    break;
                case DenyReason.NameTaken:
                    var holder = Enumerable.Range(0, history.NodeCount)
                        .Where(m => m != n && SameName(history, n, m) && (Holds(history, m, at) || gaveUp.Contains(m)))
                        .DefaultIfEmpty(-1)
                        .First();
                    if (holder < 0)
                    {
                        Checkers.Add(found, Invariants.AdmissionOutcome,
                            $"{Who(history, n)} was denied NameTaken at {Checkers.Time(at)}, but no node of that name (ignoring case) joined and was running then",
                            at, n);
                    }

                    break;
                case DenyReason.Unreachable:
                    var answerable = rules.AnswerableRequests is { } counts && n < counts.Count ? counts[n] : 0;
                    if (answerable >= AdmissionRules.UnreachableBelowAnswerable)
                    {
                        Checkers.Add(found, Invariants.AdmissionOutcome,
                            $"{Who(history, n)} gave up as Unreachable at {Checkers.Time(at)}, although {answerable} of its join requests reached a contact able to answer (through {history.ContactOf(n)})",
                            at, n);
                    }

                    break;
                default:
                    Checkers.Add(found, Invariants.AdmissionOutcome,
                        $"{Who(history, n)} was denied {reason} at {Checkers.Time(at)}: never expected of a valid, unique-enough name",
                        at, n);
                    break;
            }
        }

        return found;
    }

    /// <summary>
    /// A node that ends denied never was a member in anyone's view: the group and the node agree on whether it joined
    /// (a node that heard nothing from its contact but was listed to the others, and answered their introductions, would
    /// otherwise be seen Up, then Down, by members while its own application was told it never got in).
    /// </summary>
    public static List<Violation> Agreement(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        var reported = new HashSet<(int, int)>();
        foreach (var v in history.Views)
        {
            foreach (var s in v.Members)
            {
                if (s >= 0 && s != v.Node && history.DeniedAt(s) is not null && reported.Add((v.Node, s)))
                {
                    Checkers.Add(found, Invariants.AdmissionAgreement,
                        $"{history.Names[v.Node]} saw {Who(history, s)} as a member from {Checkers.Time(v.At)}, but {history.Names[s]} never joined: it was denied {history.DenyReasonOf(s)} at {Checkers.Time(history.DeniedAt(s)!.Value)}",
                        v.At, v.Node, s);
                }
            }
        }

        return found;
    }

    /// <summary>One line per started node: name, contact, start and outcome (for reports).</summary>
    public static IEnumerable<string> Describe(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        for (var n = 0; n < history.NodeCount; n++)
        {
            if (history.StartedAt(n) is not { } start)
            {
                continue;
            }

            var outcome = history.HasJoined(n) ? $"joined {Checkers.Time(JoinedAt(history, n))}"
                : history.DeniedAt(n) is { } d ? $"denied {history.DenyReasonOf(n)} {Checkers.Time(d)}"
                : "never joined";
            var crash = history.CrashedAt(n) is { } c ? $", crashed {Checkers.Time(c)}" : "";
            yield return string.Create(CultureInfo.InvariantCulture,
                $"{history.Names[n],-4} '{history.MemberNameOf(n)}' through {history.ContactOf(n)}, started {Checkers.Time(start)}: {outcome}{crash}");
        }
    }

    /// <summary>Joined at some point and had not crashed (or left) before <paramref name="at"/>.</summary>
    private static bool Holds(History history, int node, TimeSpan at) =>
        history.HasJoined(node) && (history.DepartedAt(node) is not { } d || d >= at);

    private static bool CrashedBy(History history, int node, TimeSpan at) => history.CrashedAt(node) is { } c && c <= at;

    private static bool SameName(History history, int a, int b) =>
        string.Equals(history.MemberNameOf(a), history.MemberNameOf(b), StringComparison.OrdinalIgnoreCase);

    private static TimeSpan JoinedAt(History history, int node) => history.Events[(int)history.JoinedOrder(node)].At;

    private static string Who(History history, int node) =>
        node < 0 ? "an unknown member" : $"{history.NameOf(node)} '{history.MemberNameOf(node)}'";

    private static string Members(History history, IEnumerable<int> nodes) => string.Join(", ", nodes.Select(n => Who(history, n)));
}
