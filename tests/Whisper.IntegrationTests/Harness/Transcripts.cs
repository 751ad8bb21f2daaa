using System.Globalization;
using System.Text;

namespace Whisper.IntegrationTests.Harness;

/// <summary>Readings and checkers over node transcripts: exactly-once, causal order, FIFO, latency.</summary>
public static class Transcripts
{
    /// <summary>Members this node currently sees up: its joined list plus member lines, in order.</summary>
    public static HashSet<string> UpMembers(IReadOnlyList<TranscriptLine> lines)
    {
        var up = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            if ((line.Is("joined") || line.Is("rejoined")) && line.Json is { } j && j.TryGetProperty("members", out var members))
            {
                foreach (var m in members.EnumerateArray())
                {
                    up.Add(m.GetString()!);
                }
            }
            else if (line.Is("member") && line.Str("name") is { } name)
            {
                if (line.Str("status") is "up" or "suspect")
                {
                    up.Add(name);
                }
                else
                {
                    up.Remove(name);
                }
            }
        }

        return up;
    }

    public static List<TranscriptLine> Broadcasts(IReadOnlyList<TranscriptLine> lines) => [.. lines.Where(l => l.IsBroadcast)];

    public static List<TranscriptLine> Privates(IReadOnlyList<TranscriptLine> lines) => [.. lines.Where(l => l.IsPrivate)];

    /// <summary>Every line is a JSON object (nothing else may appear on a node's stdout).</summary>
    public static IEnumerable<string> NonJsonLines(IReadOnlyList<TranscriptLine> lines) => lines.Where(l => !l.IsJson).Select(l => l.Raw);

    /// <summary>Each expected broadcast text delivered exactly once, and nothing else. Returns problems found.</summary>
    public static IEnumerable<string> CheckBroadcastsExactlyOnce(string node, IReadOnlyList<TranscriptLine> lines, IReadOnlyCollection<string> expected)
    {
        var counts = Broadcasts(lines).GroupBy(l => l.Str("text")!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        foreach (var text in expected)
        {
            counts.TryGetValue(text, out var n);
            if (n != 1)
            {
                yield return $"{node} delivered broadcast '{text}' {n} times";
            }
        }

        foreach (var extra in counts.Keys.Except(expected, StringComparer.Ordinal))
        {
            yield return $"{node} delivered an unexpected broadcast '{extra}'";
        }

        var ids = Broadcasts(lines).GroupBy(l => l.Str("id")).Where(g => g.Count() > 1).Select(g => g.Key);
        foreach (var id in ids)
        {
            yield return $"{node} delivered message id {id} more than once";
        }
    }

    /// <summary>
    /// Causal order from the emitted ids and deps: if message b depends on a (same origin with a lower seq, or
    /// b.deps[a.origin] &gt;= a.seq), every node delivers a before b.
    /// </summary>
    public static IEnumerable<string> CheckCausalOrder(string node, IReadOnlyList<TranscriptLine> lines)
    {
        var delivered = Broadcasts(lines);
        var position = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < delivered.Count; i++)
        {
            position[delivered[i].Str("id")!] = i;
        }

        for (var bi = 0; bi < delivered.Count; bi++)
        {
            var b = delivered[bi];
            var deps = b.Deps();
            var bOrigin = b.Str("origin")!;
            var bSeq = (ulong)b.Num("seq")!.Value;
            for (var ai = bi + 1; ai < delivered.Count; ai++)
            {
                var a = delivered[ai];
                var aOrigin = a.Str("origin")!;
                var aSeq = (ulong)a.Num("seq")!.Value;
                var bDependsOnA = (aOrigin == bOrigin && aSeq < bSeq) || (deps.TryGetValue(aOrigin, out var covered) && covered >= aSeq);
                if (bDependsOnA)
                {
                    yield return $"{node} delivered '{b.Str("text")}' ({b.Str("id")}) before its dependency '{a.Str("text")}' ({a.Str("id")})";
                }
            }
        }
    }

    /// <summary><paramref name="before"/> is delivered, and before <paramref name="after"/> if that is delivered.</summary>
    public static IEnumerable<string> CheckDeliveredBefore(string node, IReadOnlyList<TranscriptLine> lines, string before, string after)
    {
        var messages = lines.Where(l => l.Is("message")).ToList();
        var i = messages.FindIndex(l => l.Str("text") == before);
        var j = messages.FindIndex(l => l.Str("text") == after);
        if (i < 0)
        {
            yield return $"{node} never delivered '{before}'";
        }
        else if (j >= 0 && j < i)
        {
            yield return $"{node} delivered '{after}' before '{before}'";
        }
    }

    /// <summary>Private messages at <paramref name="node"/>: addressed to it, each expected one exactly once, per sender in send order.</summary>
    public static IEnumerable<string> CheckPrivates(string node, IReadOnlyList<TranscriptLine> lines, IReadOnlyDictionary<string, List<string>> expectedBySender)
    {
        var privates = Privates(lines);
        foreach (var p in privates.Where(p => p.Str("to") != node))
        {
            yield return $"{node} delivered a private message for {p.Str("to")}: {p.Raw}";
        }

        var bySender = privates.GroupBy(p => p.Str("from")!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(p => p.Str("text")!).ToList(), StringComparer.Ordinal);
        foreach (var (sender, expected) in expectedBySender)
        {
            bySender.TryGetValue(sender, out var actual);
            actual ??= [];
            if (!actual.SequenceEqual(expected, StringComparer.Ordinal))
            {
                yield return $"{node} got private messages from {sender} as [{string.Join(", ", actual)}], expected exactly [{string.Join(", ", expected)}]";
            }
        }

        foreach (var sender in bySender.Keys.Except(expectedBySender.Keys, StringComparer.Ordinal))
        {
            yield return $"{node} got unexpected private messages from {sender}: [{string.Join(", ", bySender[sender])}]";
        }
    }

    /// <summary>
    /// Broadcast latency from the sender's own delivery (its accept time) to every delivery at the other nodes,
    /// from the transcripts' <c>ts</c> fields (one machine, one clock).
    /// </summary>
    public static LatencyReport Latency(IReadOnlyDictionary<string, IReadOnlyList<TranscriptLine>> transcripts, Func<string, bool>? textFilter = null)
    {
        textFilter ??= static _ => true;
        var sentAt = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (node, lines) in transcripts)
        {
            foreach (var m in Broadcasts(lines).Where(m => m.Str("from") == node && textFilter(m.Str("text")!)))
            {
                sentAt[m.Str("id")!] = m.Num("ts")!.Value;
            }
        }

        var perDelivery = new List<double>();
        var toAll = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (node, lines) in transcripts)
        {
            foreach (var m in Broadcasts(lines).Where(m => m.Str("from") != node))
            {
                if (sentAt.TryGetValue(m.Str("id")!, out var t0))
                {
                    var latency = m.Num("ts")!.Value - t0;
                    perDelivery.Add(latency);
                    var id = m.Str("id")!;
                    toAll[id] = Math.Max(toAll.GetValueOrDefault(id), latency);
                }
            }
        }

        return new LatencyReport(perDelivery, [.. toAll.Values]);
    }
}

/// <summary>Latencies in milliseconds: per (message, receiver), and per message until the last receiver had it.</summary>
public sealed record LatencyReport(IReadOnlyList<double> PerDelivery, IReadOnlyList<double> ToAll)
{
    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"broadcast to all members: n={ToAll.Count} median={Percentile(ToAll, 50):0.00} ms p99={Percentile(ToAll, 99):0.00} ms max={Percentile(ToAll, 100):0.00} ms; ");
        sb.Append(CultureInfo.InvariantCulture, $"per delivery: n={PerDelivery.Count} median={Percentile(PerDelivery, 50):0.00} ms p99={Percentile(PerDelivery, 99):0.00} ms");
        return sb.ToString();
    }
}
