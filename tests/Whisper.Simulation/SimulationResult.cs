using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Whisper.Simulation;

/// <summary>The outcome of one simulated run: violations (empty when it passed), fingerprint, history and trace tail.</summary>
public sealed partial class SimulationResult(
    ulong seed,
    Scenario scenario,
    IReadOnlyList<Violation> violations,
    ulong traceHash,
    History history,
    SimulationStats stats,
    IReadOnlyList<string> traceTail,
    long traceRecords,
    IReadOnlyList<string> engineStats)
{
    /// <summary>The command that replays a seed of the test suite's catalog with full tracing.</summary>
    public const string ReplayCommand = "WHISPER_SIM_SEED={0} dotnet test tests/Whisper.Simulation.Tests --filter Replay --logger \"console;verbosity=detailed\"";

    public ulong Seed { get; } = seed;

    public Scenario Scenario { get; } = scenario;

    public IReadOnlyList<Violation> Violations { get; } = violations;

    public bool Passed => Violations.Count == 0;

    /// <summary>Fingerprint of the whole trace: the same seed and scenario give the same hash.</summary>
    public ulong TraceHash { get; } = traceHash;

    public History History { get; } = history;

    public SimulationStats Stats { get; } = stats;

    public IReadOnlyList<string> TraceTail { get; } = traceTail;

    public IReadOnlyList<string> EngineStats { get; } = engineStats;

    /// <summary>The instant of the first timed violation, when the trace around it was kept.</summary>
    public TimeSpan? FocusAt { get; init; }

    /// <summary>The node whose trace <see cref="TraceFocus"/> shows, then the peer whose notes it adds (all when empty).</summary>
    public IReadOnlyList<string> FocusProcesses { get; init; } = [];

    /// <summary>Trace records shortly before and at <see cref="FocusAt"/>.</summary>
    public IReadOnlyList<string> TraceFocus { get; init; } = [];

    /// <summary>Seed, scenario, how to replay, violations, counters and the tail of the trace.</summary>
    public string Report()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(c, $"Whisper simulation seed={Seed} {(Passed ? "passed" : $"FAILED ({Violations.Count} violation(s))")} trace-hash={TraceHash:x16}");
        sb.AppendLine(c, $"scenario: {Scenario.Describe()}");
        if (ScenarioCatalog.ForSeed(Seed) == Scenario)
        {
            sb.AppendLine(c, $"replay:   {string.Format(c, ReplayCommand, Seed)}");
        }
        else
        {
            sb.AppendLine(c, $"replay:   Simulation.Run({Seed}UL, <this scenario>, new SimulationOptions {{ EngineTracing = true }})");
        }

        sb.AppendLine(c, $"stats:    {Stats}");
        if (!Passed)
        {
            sb.AppendLine("violations:");
            sb.Append(ReportText.Lines(Violations.Select(v => v.ToString())));
        }

        if (Scenario.Admission is not null)
        {
            sb.AppendLine("admission (node, name asked for, contact, start, outcome):");
            sb.Append(ReportText.Lines(AdmissionCheckers.Describe(History)));
        }

        var involved = InvolvedMessages();
        var focusNode = Violations.Where(v => v.At is not null).OrderBy(v => v.At).Select(v => v.Node).FirstOrDefault(-1);
        var story = History.Events
            .Where(e => e.Kind is HistoryEventKind.Crashed or HistoryEventKind.Left
                || (e.Kind is HistoryEventKind.Sent or HistoryEventKind.Delivered && involved.Contains(e.Key))
                || (e.Kind == HistoryEventKind.Status && e.Node == focusNode && focusNode >= 0 && History.HasJoined(focusNode) && e.Order > History.JoinedOrder(focusNode)))
            .Select(History.Describe)
            .ToList();
        if (!Passed && story.Count > 0)
        {
            var whose = focusNode >= 0 && focusNode < History.NodeCount ? $", and the member status changes {History.Names[focusNode]} saw" : "";
            sb.AppendLine(c, $"history: crashes, sends and deliveries of the messages involved{whose}:");
            sb.Append(ReportText.Lines(story));
        }

        sb.AppendLine("engine counters:");
        sb.Append(ReportText.Lines(EngineStats));
        if (FocusAt is { } at)
        {
            var who = FocusProcesses.Count == 0 ? "" : $" of {string.Join(" (with notes of ", FocusProcesses)}{(FocusProcesses.Count > 1 ? ")" : "")}";
            sb.AppendLine(c, $"trace{who} up to the first violation at {Checkers.Time(at)} (last {TraceFocus.Count} records):");
            sb.Append(ReportText.Lines(TraceFocus));
        }

        sb.AppendLine(c, $"trace tail (last {TraceTail.Count} of {traceRecords} records):");
        sb.Append(ReportText.Lines(TraceTail));
        return sb.ToString();
    }

    /// <summary>The messages (up to 6) named in the violations, e.g. <c>n3#17</c>.</summary>
    private HashSet<MessageKey> InvolvedMessages()
    {
        var keys = new HashSet<MessageKey>();
        foreach (var v in Violations)
        {
            foreach (Match m in MessageName().Matches(v.Detail))
            {
                var key = new MessageKey(
                    int.Parse(m.Groups[1].ValueSpan, NumberStyles.Integer, CultureInfo.InvariantCulture),
                    int.Parse(m.Groups[2].ValueSpan, NumberStyles.Integer, CultureInfo.InvariantCulture));
                if (keys.Count < 6 && History.TryGetMessage(key, out _))
                {
                    keys.Add(key);
                }
            }
        }

        return keys;
    }

    [GeneratedRegex("\\bn([0-9]+)#([0-9]+)\\b", RegexOptions.CultureInvariant)]
    private static partial Regex MessageName();

    /// <summary>Throws <see cref="SimulationFailedException"/> with the full report when any invariant was violated.</summary>
    public void ThrowIfFailed()
    {
        if (!Passed)
        {
            throw new SimulationFailedException(Report());
        }
    }
}

/// <summary>A simulated run violated an invariant; the message is the full report (seed, scenario, trace tail).</summary>
public sealed class SimulationFailedException : Exception
{
    public SimulationFailedException()
    {
    }

    public SimulationFailedException(string message)
        : base(message)
    {
    }

    public SimulationFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
