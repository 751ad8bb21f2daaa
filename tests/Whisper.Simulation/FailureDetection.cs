namespace Whisper.Simulation;

/// <summary>Failure-detector readings over a <see cref="History"/>: how long each survivor took to report a crash.</summary>
public static class FailureDetection
{
    /// <summary>
    /// For every crashed node (not counting incarnations in <paramref name="evicted"/>, which were declared down before
    /// they stopped) and every other node that reported it down afterwards: the time from the crash to that report.
    /// Observers that were themselves frozen in between (<paramref name="frozen"/>) are left out: their detector stood still.
    /// </summary>
    public static List<TimeSpan> CrashDetectionTimes(History history, IReadOnlySet<int> evicted, Func<int, TimeSpan, TimeSpan, bool>? frozen = null)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(evicted);
        var crashes = new Dictionary<int, TimeSpan>();
        var times = new List<TimeSpan>();
        var seen = new HashSet<(int Observer, int Subject)>();
        foreach (var e in history.Events)
        {
            if (e.Kind == HistoryEventKind.Crashed && !evicted.Contains(e.Node))
            {
                crashes.TryAdd(e.Node, e.At);
            }
            else if (e.Kind == HistoryEventKind.Status && e.Status == Protocol.Engine.MemberStatus.Down && e.Peer >= 0
                && crashes.TryGetValue(e.Peer, out var crashedAt) && seen.Add((e.Node, e.Peer))
                && frozen?.Invoke(e.Node, crashedAt, e.At) != true)
            {
                times.Add(e.At - crashedAt);
            }
        }

        return times;
    }
}
