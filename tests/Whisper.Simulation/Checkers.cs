using System.Globalization;
using System.Numerics;
using Whisper.Protocol.Engine;

namespace Whisper.Simulation;

/// <summary>
/// A broken invariant, with a sentence that names the nodes, the messages and the times; <see cref="At"/> is the
/// virtual time at which it became visible, when one instant is to blame; <see cref="Node"/> and <see cref="Peer"/>
/// the two nodes most involved (reports show their trace up to that instant).
/// </summary>
public sealed record Violation(string Invariant, string Detail, TimeSpan? At = null, int Node = -1, int Peer = -1)
{
    public override string ToString() => $"[{Invariant}] {Detail}";
}

/// <summary>Names of the invariants the checkers verify.</summary>
public static class Invariants
{
    public const string Integrity = "integrity";
    public const string ExactlyOnce = "exactly-once";
    public const string CausalOrder = "causal-order";
    public const string FifoPrivate = "fifo-private";
    public const string PrivateOnlyAtRecipient = "private-only-at-recipient";
    public const string Agreement = "agreement";
    public const string NoLossAfterHeal = "no-loss-after-heal";
    public const string FalseDown = "false-down";
    public const string ViewsConverge = "views-converge";
    public const string Liveness = "liveness";
    public const string EngineError = "engine-error";
    public const string GroupForms = "group-forms";
    public const string SendRefused = "send-refused";
    public const string AdmissionCap = "admission-cap";
    public const string UniqueNames = "unique-names";
    public const string AdmissionOutcome = "admission-outcome";
    public const string AdmissionAgreement = "admission-agreement";
}

/// <summary>Something a live node still owes: a delivery of <see cref="Message"/> at <see cref="Node"/>.</summary>
public sealed record Obligation(SentMessage Message, int Node, string Invariant);

/// <summary>
/// Invariant checkers over a <see cref="History"/>. Safety checkers hold at every moment of a run; the agreement
/// and no-loss checkers hold once the network healed and the run settled. Each returns the violations it found
/// (empty when the history is correct); each can fail, and the unit tests prove it with injected faults.
/// </summary>
public static class Checkers
{
    private const int MaxPerInvariant = 12;

    /// <summary>All safety checkers (valid at any time).</summary>
    public static List<Violation> CheckSafety(History history, bool includePrivatePredecessors = false)
    {
        var all = new List<Violation>();
        all.AddRange(Integrity(history));
        all.AddRange(ExactlyOnce(history));
        all.AddRange(PrivateOnlyAtRecipient(history));
        all.AddRange(FifoPrivate(history));
        all.AddRange(CausalOrder(history, includePrivatePredecessors));
        all.AddRange(FalseDown(history));
        return all;
    }

    /// <summary>Safety plus agreement, no loss and converged views: for the end of a settled run.</summary>
    public static List<Violation> CheckAll(History history, bool includePrivatePredecessors = false)
    {
        var all = CheckSafety(history, includePrivatePredecessors);
        all.AddRange(AgreementAndNoLoss(history));
        all.AddRange(ViewsConverge(history));
        return all;
    }

    /// <summary>Every delivered payload is byte for byte a message that was sent, with the right sender, kind and recipient.</summary>
    public static List<Violation> Integrity(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        foreach (var e in history.Events)
        {
            if (e.Kind == HistoryEventKind.Delivered && e.Problem is not null)
            {
                Add(found, Invariants.Integrity, $"{history.Describe(e)}", e.At, e.Node, e.Peer);
            }
        }

        return found;
    }

    /// <summary>No node delivers the same message twice.</summary>
    public static List<Violation> ExactlyOnce(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        for (var n = 0; n < history.NodeCount; n++)
        {
            var first = new Dictionary<MessageKey, HistoryEvent>();
            foreach (var e in history.Log(n))
            {
                if (e.Kind != HistoryEventKind.Delivered || e.Problem is not null)
                {
                    continue;
                }

                if (!first.TryAdd(e.Key, e))
                {
                    Add(found, Invariants.ExactlyOnce, $"{history.Names[n]} delivered {e.Key} twice: at {Time(first[e.Key].At)} and at {Time(e.At)}", e.At, n, e.Key.Sender);
                }
            }
        }

        return found;
    }

    /// <summary>A private message is delivered only at its recipient.</summary>
    public static List<Violation> PrivateOnlyAtRecipient(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        foreach (var e in history.Events)
        {
            if (e.Kind == HistoryEventKind.Delivered && e.Problem is null && history.TryGetMessage(e.Key, out var m)
                && !m.IsBroadcast && m.Recipient != e.Node)
            {
                Add(found, Invariants.PrivateOnlyAtRecipient, $"{history.Names[e.Node]} delivered {history.Describe(m.Key, m.Kind, m.Recipient)} at {Time(e.At)}", e.At, e.Node, m.Sender);
            }
        }

        return found;
    }

    /// <summary>
    /// FIFO per (sender, recipient): the private messages a recipient delivers from one sender are exactly a prefix of
    /// what that sender sent it, in send order (no reordering, no gaps, even when the sender crashed).
    /// </summary>
    public static List<Violation> FifoPrivate(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        var sent = new Dictionary<(int, int), List<SentMessage>>();
        foreach (var m in history.Messages)
        {
            if (!m.IsBroadcast)
            {
                var pair = (m.Sender, m.Recipient);
                if (!sent.TryGetValue(pair, out var list))
                {
                    sent[pair] = list = [];
                }

                list.Add(m);
            }
        }

        for (var r = 0; r < history.NodeCount; r++)
        {
            var next = new Dictionary<int, int>();
            foreach (var e in history.Log(r))
            {
                if (e.Kind != HistoryEventKind.Delivered || e.Problem is not null || !history.TryGetMessage(e.Key, out var m)
                    || m.IsBroadcast || m.Recipient != r)
                {
                    continue;
                }

                var expectedIndex = next.GetValueOrDefault(m.Sender);
                var stream = sent[(m.Sender, r)];
                if (expectedIndex < stream.Count && stream[expectedIndex].Key == m.Key)
                {
                    next[m.Sender] = expectedIndex + 1;
                    continue;
                }

                var position = stream.FindIndex(x => x.Key == m.Key);
                var what = position < expectedIndex
                    ? "again, after later messages of the stream"
                    : $"before {stream[expectedIndex].Key}, sent earlier on the same stream";
                Add(found, Invariants.FifoPrivate, $"{history.Names[r]} delivered {m.Key} from {history.Names[m.Sender]} at {Time(e.At)} {what}", e.At, r, m.Sender);
                next[m.Sender] = Math.Max(expectedIndex, position + 1);
            }
        }

        return found;
    }

    /// <summary>
    /// Causal order, with happens-before computed from the history: m1 precedes m2 when the sender of m2 had sent or
    /// delivered m1 (or a successor of m1) before sending m2. Every node that delivers m2 must have delivered every
    /// broadcast m1 preceding it that the node is in the audience of, before m2. Private predecessors are covered by
    /// FIFO per pair; with <paramref name="includePrivatePredecessors"/> a private message to the node that precedes
    /// m2 through any chain is required too (a stronger property than the protocol promises).
    /// </summary>
    public static List<Violation> CausalOrder(History history, bool includePrivatePredecessors = false)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        var count = history.Messages.Count;
        var words = (count + 63) / 64;
        var closure = new ulong[count][];
        var knows = new ulong[history.NodeCount][];
        for (var n = 0; n < knows.Length; n++)
        {
            knows[n] = new ulong[words];
        }

        // Pass 1: the happens-before closure of every message, in global order.
        foreach (var e in history.Events)
        {
            if (e.Kind == HistoryEventKind.Sent && history.TryGetMessage(e.Key, out var sent))
            {
                closure[sent.Index] = (ulong[])knows[e.Node].Clone();
                Set(knows[e.Node], sent.Index);
            }
            else if (e.Kind == HistoryEventKind.Delivered && e.Problem is null && history.TryGetMessage(e.Key, out var got))
            {
                Or(knows[e.Node], closure[got.Index]);
                Set(knows[e.Node], got.Index);
            }
        }

        // Pass 2: each node's deliveries against what each message requires of that node.
        for (var n = 0; n < history.NodeCount; n++)
        {
            var required = new ulong[words];
            foreach (var m in history.Messages)
            {
                if (history.IsBroadcastAudience(n, m) || (includePrivatePredecessors && !m.IsBroadcast && m.Recipient == n))
                {
                    Set(required, m.Index);
                }
            }

            var delivered = new ulong[words];
            foreach (var e in history.Log(n))
            {
                if (e.Kind != HistoryEventKind.Delivered || e.Problem is not null || !history.TryGetMessage(e.Key, out var m2))
                {
                    continue;
                }

                var before = closure[m2.Index];
                for (var w = 0; w < words; w++)
                {
                    var missing = before[w] & required[w] & ~delivered[w];
                    while (missing != 0)
                    {
                        var index = (w * 64) + BitOperations.TrailingZeroCount(missing);
                        missing &= missing - 1;
                        var m1 = history.Messages[index];
                        if (!m1.IsBroadcast && m1.Sender == m2.Sender && !m2.IsBroadcast)
                        {
                            continue; // same private stream: FIFO's business
                        }

                        Add(found, Invariants.CausalOrder,
                            $"{history.Names[n]} delivered {history.Describe(m2.Key, m2.Kind, m2.Recipient)} at {Time(e.At)} before {history.Describe(m1.Key, m1.Kind, m1.Recipient)}, " +
                            $"which {Why(history, m1, m2)}; {history.Names[n]} {Later(history, n, m1, e.Order)}", e.At, n, m1.Sender);
                    }
                }

                Set(delivered, m2.Index);
            }
        }

        return found;
    }

    /// <summary>
    /// Agreement among live members and no loss after healing, as the list of deliveries still owed: a broadcast
    /// delivered by any live node, or sent by a live node, is owed to every live node in its audience; a private
    /// message between live nodes is owed to its recipient. Empty once the run has settled.
    /// </summary>
    public static List<Obligation> Outstanding(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var words = (history.Messages.Count + 63) / 64;
        var delivered = new ulong[history.NodeCount][];
        var deliveredByLive = new ulong[words];
        for (var n = 0; n < history.NodeCount; n++)
        {
            delivered[n] = new ulong[words];
            foreach (var e in history.Log(n))
            {
                if (e.Kind == HistoryEventKind.Delivered && e.Problem is null && history.TryGetMessage(e.Key, out var m))
                {
                    Set(delivered[n], m.Index);
                    if (history.IsLive(n))
                    {
                        Set(deliveredByLive, m.Index);
                    }
                }
            }
        }

        var owed = new List<Obligation>();
        foreach (var m in history.Messages)
        {
            var senderLive = history.IsLive(m.Sender);
            if (m.IsBroadcast)
            {
                if (!senderLive && !IsSet(deliveredByLive, m.Index))
                {
                    continue;
                }

                for (var n = 0; n < history.NodeCount; n++)
                {
                    if (history.IsLive(n) && history.IsBroadcastAudience(n, m) && !IsSet(delivered[n], m.Index))
                    {
                        owed.Add(new Obligation(m, n, senderLive ? Invariants.NoLossAfterHeal : Invariants.Agreement));
                    }
                }
            }
            else if (senderLive && history.IsLive(m.Recipient) && !IsSet(delivered[m.Recipient], m.Index))
            {
                owed.Add(new Obligation(m, m.Recipient, Invariants.NoLossAfterHeal));
            }
        }

        return owed;
    }

    /// <summary><see cref="Outstanding"/> as violations (for a run that has settled or hit its bound).</summary>
    public static List<Violation> AgreementAndNoLoss(History history)
    {
        var found = new List<Violation>();
        foreach (var o in Outstanding(history))
        {
            var m = o.Message;
            var who = history.IsLive(m.Sender) ? "its live sender" : "other live members";
            var detail = m.IsBroadcast
                ? $"live {history.Names[o.Node]} never delivered {history.Describe(m.Key, m.Kind, m.Recipient)} sent at {Time(m.At)} (delivered by {who}: {Deliverers(history, m)})"
                : $"live {history.Names[o.Node]} never delivered {history.Describe(m.Key, m.Kind, m.Recipient)} sent at {Time(m.At)} by live {history.Names[m.Sender]}";
            Add(found, o.Invariant, detail, m.At, o.Node, m.Sender);
        }

        return found;
    }

    /// <summary>No node declares a running member (not crashed, not leaving) Down or Left (Down is final in this protocol version).</summary>
    public static List<Violation> FalseDown(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        foreach (var e in history.Events)
        {
            if (e.Kind == HistoryEventKind.Status && e.Status is MemberStatus.Down or MemberStatus.Left && e.Peer >= 0)
            {
                var departed = history.DepartedAt(e.Peer);
                if (departed is null || departed > e.At)
                {
                    Add(found, Invariants.FalseDown, $"{history.Names[e.Node]} declared {history.Names[e.Peer]} {e.Status} at {Time(e.At)} while it was running", e.At, e.Node, e.Peer);
                }
            }
        }

        return found;
    }

    /// <summary>
    /// At the end of a settled run, every live node sees every other live node Up (suspicions resolved) and no
    /// crashed or departed node as Up or Suspect.
    /// </summary>
    public static List<Violation> ViewsConverge(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var found = new List<Violation>();
        for (var n = 0; n < history.NodeCount; n++)
        {
            var view = history.FinalView(n);
            if (!history.IsLive(n) || view is null)
            {
                continue;
            }

            foreach (var problem in ViewProblems(history, n, view))
            {
                Add(found, Invariants.ViewsConverge, problem);
            }
        }

        return found;
    }

    /// <summary>What is wrong with one live node's view (empty when converged).</summary>
    public static IEnumerable<string> ViewProblems(History history, int node, IReadOnlyList<(int Subject, MemberStatus Status)> view)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(view);
        var status = new Dictionary<int, MemberStatus>();
        foreach (var (subject, s) in view)
        {
            if (subject >= 0)
            {
                status[subject] = s;
            }
        }

        for (var s = 0; s < history.NodeCount; s++)
        {
            if (s == node || !history.HasJoined(s))
            {
                continue;
            }

            var seen = status.TryGetValue(s, out var st) ? st.ToString() : "absent";
            if (history.IsLive(s) && seen != nameof(MemberStatus.Up))
            {
                yield return $"{history.Names[node]} sees live {history.Names[s]} as {seen}";
            }
            else if (!history.IsLive(s) && seen is nameof(MemberStatus.Up) or nameof(MemberStatus.Suspect))
            {
                yield return $"{history.Names[node]} sees {(history.CrashedAt(s) is null ? "departed" : "crashed")} {history.Names[s]} as {seen}";
            }
        }
    }

    internal static string Time(TimeSpan t) => t.TotalSeconds.ToString("0.000000", CultureInfo.InvariantCulture) + "s";

    private static string Why(History history, SentMessage m1, SentMessage m2)
    {
        foreach (var e in history.Log(m2.Sender))
        {
            if (e.Order >= m2.Order)
            {
                break;
            }

            if (e.Key == m1.Key && e.Kind is HistoryEventKind.Sent or HistoryEventKind.Delivered)
            {
                return $"{history.Names[m2.Sender]} had {(e.Kind == HistoryEventKind.Sent ? "sent" : "delivered")} at {Time(e.At)} before sending it";
            }
        }

        return $"precedes it through a chain of deliveries";
    }

    private static string Later(History history, int node, SentMessage m1, long after)
    {
        foreach (var e in history.Log(node))
        {
            if (e.Order > after && e.Kind == HistoryEventKind.Delivered && e.Key == m1.Key)
            {
                return $"delivered it only later, at {Time(e.At)}";
            }
        }

        return "never delivered it";
    }

    private static string Deliverers(History history, SentMessage m)
    {
        var names = new SortedSet<int>();
        foreach (var e in history.Events)
        {
            if (e.Kind == HistoryEventKind.Delivered && e.Key == m.Key && e.Problem is null)
            {
                names.Add(e.Node);
            }
        }

        return names.Count == 0 ? "none" : string.Join(',', names.Select(n => history.Names[n] + (history.IsLive(n) ? "" : "(crashed)")));
    }

    internal static void Add(List<Violation> found, string invariant, string detail, TimeSpan? at = null, int node = -1, int peer = -1)
    {
        if (found.Count < MaxPerInvariant)
        {
            found.Add(new Violation(invariant, detail, at, node, peer));
        }
        else if (found.Count == MaxPerInvariant)
        {
            found.Add(new Violation(invariant, "... more violations of this invariant omitted"));
        }
    }

    private static void Set(ulong[] bits, int index) => bits[index >> 6] |= 1UL << (index & 63);

    private static bool IsSet(ulong[] bits, int index) => (bits[index >> 6] & (1UL << (index & 63))) != 0;

    private static void Or(ulong[] into, ulong[] from)
    {
        for (var i = 0; i < into.Length; i++)
        {
            into[i] |= from[i];
        }
    }
}
