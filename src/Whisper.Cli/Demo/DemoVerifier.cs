using System.Globalization;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Cli.Demo;

/// <summary>
/// Checks a <see cref="DemoLog"/> against Whisper's guarantees, from what every incarnation actually delivered.
/// <list type="bullet">
/// <item><b>Broadcasts exactly once:</b> no incarnation delivers a broadcast twice, nobody delivers a message the
/// demo never sent, and every incarnation live for a broadcast (member before it was sent, never crashed) delivers
/// it, the sender included. A broadcast from an incarnation that crashed is delivered by all of those or by none.</item>
/// <item><b>Private messages exactly once:</b> only the addressed incarnation delivers it, at most once, and exactly
/// once when both it and the sender stayed alive and it was live for the message.</item>
/// <item><b>Causal order:</b> a live delivery's dependency clock (<see cref="ChatMessage.Deps"/>, the sender's
/// delivered clock when it sent) covers broadcasts (origin, seq ≤ clock entry); each of them that the receiver
/// delivered came before it, and the receiver skipped none it was live for.</item>
/// <item><b>Reply chains:</b> the same, from the script's own knowledge: a reply comes after the message it answers.</item>
/// <item><b>FIFO per sender / per pair:</b> each incarnation delivers one sender's broadcasts, and one pair's private
/// messages, in the order they were sent.</item>
/// <item><b>Chat without the server:</b> broadcasts were sent after the server stopped and all were delivered.</item>
/// </list>
/// Pure: no clocks, no I/O; the runner feeds it a log, tests feed it crafted ones.
/// </summary>
internal static class DemoVerifier
{
    private const int MaxExamples = 3;

    public static IReadOnlyList<DemoCheck> Verify(DemoLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var view = new LogView(log);
        var checks = new List<DemoCheck>
        {
            BroadcastsExactlyOnce(view),
            PrivatesExactlyOnce(view),
            CausalOrder(view),
            ReplyChains(view),
            Fifo(view, broadcasts: true),
            Fifo(view, broadcasts: false),
        };
        if (log.ServerStoppedAt is { } stopped)
        {
            checks.Add(ChatWithoutServer(view, stopped));
        }

        return checks;
    }

    /// <summary>How many deliveries the exactly-once checks still require (the runner waits for zero before verifying).</summary>
    public static int Outstanding(DemoLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var view = new LogView(log);
        return view.Log.Sends.Sum(s => view.Required(s).Count(r => !view.Delivered(r.Id, s.Id)));
    }

    /// <summary>Send-to-delivery latencies in milliseconds of live deliveries at incarnations other than the sender, sorted.</summary>
    public static double[] Latencies(DemoLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var sends = log.Sends.ToDictionary(s => s.Id);
        var list = new List<double>();
        foreach (var d in log.Deliveries)
        {
            if (d.Arrival == Arrival.Live && d.Receiver != d.Id.Origin && sends.TryGetValue(d.Id, out var s))
            {
                list.Add((d.At - s.SentAt).TotalMilliseconds);
            }
        }

        list.Sort();
        return [.. list];
    }

    /// <summary>The value below which <paramref name="p"/> of the sorted values lie (nearest rank); NaN when empty.</summary>
    public static double Percentile(double[] sorted, double p)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    private static DemoCheck BroadcastsExactlyOnce(LogView v)
    {
        var problems = new Problems();
        long delivered = 0, required = 0;
        foreach (var s in v.Log.Sends.Where(s => s.IsBroadcast))
        {
            var live = v.LiveFor(s).ToList();
            var got = live.Where(r => v.Delivered(r.Id, s.Id)).ToList();
            if (v.SenderCrashed(s))
            {
                if (got.Count != 0 && got.Count != live.Count)
                {
                    problems.Add($"{s} (its sender crashed) reached {Names(got)} but not {Names(live.Except(got))}");
                }

                continue;
            }

            required += live.Count;
            delivered += got.Count;
            foreach (var r in live.Except(got))
            {
                problems.Add($"{s} never reached {r.Label}");
            }
        }

        Duplicates(v, MessageKind.Broadcast, problems);
        return Check("Broadcasts delivered exactly once", problems,
            $"{delivered}/{required} required deliveries of {v.Log.Sends.Count(s => s.IsBroadcast)} broadcasts");
    }

    private static DemoCheck PrivatesExactlyOnce(LogView v)
    {
        var problems = new Problems();
        long delivered = 0, required = 0;
        foreach (var s in v.Log.Sends.Where(s => !s.IsBroadcast))
        {
            foreach (var r in v.Required(s))
            {
                required++;
                if (v.Delivered(r.Id, s.Id))
                {
                    delivered++;
                }
                else
                {
                    problems.Add($"{s} never reached {r.Label}");
                }
            }
        }

        foreach (var d in v.Log.Deliveries.Where(d => d.Id.Kind == MessageKind.Private && d.Receiver != d.Id.Recipient))
        {
            problems.Add($"{v.Describe(d.Id)} was delivered to {v.Name(d.Receiver)}, who is not its recipient");
        }

        Duplicates(v, MessageKind.Private, problems);
        return Check("Private messages exactly once, recipient only", problems,
            $"{delivered}/{required} of {v.Log.Sends.Count(s => !s.IsBroadcast)} private messages");
    }

    private static void Duplicates(LogView v, MessageKind kind, Problems problems)
    {
        foreach (var group in v.Log.Deliveries.Where(d => d.Id.Kind == kind).GroupBy(d => (d.Receiver, d.Id)).Where(g => g.Count() > 1))
        {
            problems.Add($"{v.Describe(group.Key.Id)} was delivered {group.Count()} times to {v.Name(group.Key.Receiver)}");
        }

        foreach (var d in v.Log.Deliveries.Where(d => d.Id.Kind == kind && !v.Sends.ContainsKey(d.Id)))
        {
            problems.Add($"{v.Name(d.Receiver)} delivered {d.Id}, which the demo never sent");
        }
    }

    private static DemoCheck CausalOrder(LogView v)
    {
        var problems = new Problems();
        long checkedDeps = 0;
        foreach (var d in v.Log.Deliveries.Where(d => d.Arrival == Arrival.Live))
        {
            foreach (var entry in d.Deps.Entries)
            {
                foreach (var dep in v.BroadcastsOf(entry.Member).TakeWhile(s => s.Id.Seq <= entry.Value))
                {
                    if (dep.Id == d.Id)
                    {
                        continue;
                    }

                    checkedDeps++;
                    OrderedBefore(v, d.Receiver, dep, d.Id, "which it depends on (vector clock)", problems);
                }
            }
        }

        return Check("Causal order (vector clocks)", problems, $"{checkedDeps} happens-before pairs checked");
    }

    private static DemoCheck ReplyChains(LogView v)
    {
        var problems = new Problems();
        long pairs = 0;
        foreach (var reply in v.Log.Sends.Where(s => s.ReplyTo is not null))
        {
            if (!v.Sends.TryGetValue(reply.ReplyTo!.Value, out var parent))
            {
                continue;
            }

            foreach (var r in v.Log.Incarnations.Where(r => v.Delivered(r.Id, reply.Id)))
            {
                pairs++;
                OrderedBefore(v, r.Id, parent, reply.Id, "which it answers", problems);
            }
        }

        return Check("Reply chains: answers after what they answer", problems,
            $"{v.Log.Sends.Count(s => s.ReplyTo is not null)} replies, {pairs} deliveries checked");
    }

    /// <summary>At <paramref name="receiver"/>, which delivered <paramref name="later"/>: <paramref name="earlier"/> came first (or was not required there).</summary>
    private static void OrderedBefore(LogView v, MemberId receiver, DemoSend earlier, MessageId later, string relation, Problems problems)
    {
        var at = v.Position(receiver, later);
        if (v.Position(receiver, earlier.Id) is { } first)
        {
            if (first > at)
            {
                problems.Add($"{v.Name(receiver)} delivered {v.Describe(later)} ({v.ArrivalOf(receiver, later)}) before {earlier} ({v.ArrivalOf(receiver, earlier.Id)}), {relation}");
            }
        }
        else if (earlier.IsBroadcast ? v.LiveFor(earlier).Any(r => r.Id == receiver) : earlier.Id.Recipient == receiver)
        {
            problems.Add($"{v.Name(receiver)} delivered {v.Describe(later)} ({v.ArrivalOf(receiver, later)}) without ever delivering {earlier}, {relation}");
        }
    }

    private static DemoCheck Fifo(LogView v, bool broadcasts)
    {
        var problems = new Problems();
        long streams = 0;
        foreach (var perReceiver in v.Log.Deliveries.GroupBy(d => d.Receiver))
        {
            var last = new Dictionary<(MemberId Origin, MemberId Recipient), DemoSend>();
            foreach (var d in perReceiver)
            {
                if ((d.Id.Kind == MessageKind.Broadcast) != broadcasts || !v.Sends.TryGetValue(d.Id, out var s))
                {
                    continue;
                }

                var stream = (d.Id.Origin, d.Id.Recipient);
                if (last.TryGetValue(stream, out var previous) && previous.Index > s.Index)
                {
                    problems.Add($"{v.Name(perReceiver.Key)} delivered {s} after {previous}, which was sent later");
                }
                else if (!last.ContainsKey(stream))
                {
                    streams++;
                }

                if (previous is null || previous.Index < s.Index)
                {
                    last[stream] = s;
                }
            }
        }

        return broadcasts
            ? Check("FIFO per sender (broadcasts)", problems, $"{streams} sender-receiver streams")
            : Check("FIFO per pair (private messages)", problems, $"{streams} pair streams");
    }

    private static DemoCheck ChatWithoutServer(LogView v, TimeSpan stopped)
    {
        var after = v.Log.Sends.Where(s => s.IsBroadcast && s.SentAt >= stopped && !v.SenderCrashed(s)).ToList();
        var problems = new Problems();
        if (after.Count == 0)
        {
            problems.Add("no broadcast was sent after the server stopped");
        }

        var missing = after.Sum(s => v.LiveFor(s).Count(r => !v.Delivered(r.Id, s.Id)));
        if (missing > 0)
        {
            problems.Add($"{missing} deliveries of them are missing");
        }

        return Check("Group chats on after the server stopped", problems,
            string.Create(CultureInfo.InvariantCulture, $"{after.Count} broadcasts sent after it stopped at {stopped.TotalSeconds:0.0} s"));
    }

    private static DemoCheck Check(string name, Problems problems, string summary) =>
        new(name, problems.Count == 0, problems.Count == 0 ? summary : $"{problems.Count} violation(s): {problems}");

    private static string Names(IEnumerable<DemoIncarnation> incarnations) => string.Join(", ", incarnations.Select(i => i.Label));

    /// <summary>Indexes over one log: sends by id, delivery positions per receiver.</summary>
    private sealed class LogView
    {
        private readonly Dictionary<MemberId, DemoIncarnation> _incarnations = [];
        private readonly Dictionary<(MemberId Receiver, MessageId Id), int> _positions = [];
        private readonly Dictionary<(MemberId Receiver, MessageId Id), Arrival> _arrivals = [];
        private readonly Dictionary<MemberId, List<DemoSend>> _broadcastsByOrigin = [];

        public LogView(DemoLog log)
        {
            Log = log;
            foreach (var i in log.Incarnations)
            {
                _incarnations[i.Id] = i;
            }

            Sends = log.Sends.ToDictionary(s => s.Id);
            foreach (var s in log.Sends.Where(s => s.IsBroadcast).OrderBy(s => s.Id.Seq))
            {
                if (!_broadcastsByOrigin.TryGetValue(s.Id.Origin, out var list))
                {
                    _broadcastsByOrigin[s.Id.Origin] = list = [];
                }

                list.Add(s);
            }

            var counters = new Dictionary<MemberId, int>();
            foreach (var d in log.Deliveries)
            {
                var n = counters.GetValueOrDefault(d.Receiver);
                counters[d.Receiver] = n + 1;
                _positions.TryAdd((d.Receiver, d.Id), n);
                _arrivals.TryAdd((d.Receiver, d.Id), d.Arrival);
            }
        }

        public DemoLog Log { get; }

        public Dictionary<MessageId, DemoSend> Sends { get; }

        public IEnumerable<DemoIncarnation> LiveFor(DemoSend s) => Log.Incarnations.Where(i => i.LiveFor(s));

        public bool SenderCrashed(DemoSend s) => _incarnations.TryGetValue(s.Id.Origin, out var sender) && sender.CrashedAt is not null;

        /// <summary>The incarnations that must deliver <paramref name="s"/> exactly once.</summary>
        public IEnumerable<DemoIncarnation> Required(DemoSend s)
        {
            if (SenderCrashed(s))
            {
                return [];
            }

            return s.IsBroadcast ? LiveFor(s) : LiveFor(s).Where(i => i.Id == s.Id.Recipient);
        }

        public IEnumerable<DemoSend> BroadcastsOf(MemberId origin) => _broadcastsByOrigin.GetValueOrDefault(origin) ?? [];

        public bool Delivered(MemberId receiver, MessageId id) => _positions.ContainsKey((receiver, id));

        public int? Position(MemberId receiver, MessageId id) => _positions.TryGetValue((receiver, id), out var p) ? p : null;

        public string ArrivalOf(MemberId receiver, MessageId id) =>
            _arrivals.TryGetValue((receiver, id), out var a) ? a.ToString().ToLowerInvariant() : "not delivered";

        public string Name(MemberId id) => _incarnations.TryGetValue(id, out var i) ? i.Label : id.ToString();

        public string Describe(MessageId id) => Sends.TryGetValue(id, out var s) ? s.ToString() : id.ToString();
    }

    /// <summary>Counts violations and keeps the first few for the summary.</summary>
    private sealed class Problems
    {
        private readonly List<string> _examples = [];

        public int Count { get; private set; }

        public void Add(string problem)
        {
            Count++;
            if (_examples.Count < MaxExamples)
            {
                _examples.Add(problem);
            }
        }

        public override string ToString() => string.Join("; ", _examples) + (Count > _examples.Count ? "; ..." : string.Empty);
    }
}
