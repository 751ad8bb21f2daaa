using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// Runs many seeds of one scenario family in parallel (each run is independent and deterministic) and fails with
/// the seeds that broke an invariant, each re-run with engine tracing for a readable report.
/// Environment: <c>WHISPER_SIM_SEEDS</c> = seeds per family (default 300 per delivery family, seven of them, and 200
/// per admission family, four of them: 2,900 in all); <c>WHISPER_SIM_SEED_OFFSET</c> = first seed index (explore
/// other seeds in soak runs).
/// </summary>
internal static class SeedRunner
{
    public const int DefaultSeedsPerFamily = 300;

    /// <summary>Admission runs are shorter and cheaper (about 80 per second on two cores in Debug), but fewer are enough for their races.</summary>
    public const int DefaultSeedsPerAdmissionFamily = 200;

    /// <summary>Fault-tolerance runs last 8-9 virtual seconds of workload, three times a delivery run.</summary>
    public const int DefaultSeedsPerFaultFamily = 150;

    public static int SeedsFor(ScenarioFamily family) =>
        ReadInt("WHISPER_SIM_SEEDS", ScenarioCatalog.IsAdmission(family) ? DefaultSeedsPerAdmissionFamily
            : ScenarioCatalog.IsFaultTolerance(family) ? DefaultSeedsPerFaultFamily
            : DefaultSeedsPerFamily);

    public static int SeedOffset => ReadInt("WHISPER_SIM_SEED_OFFSET", 0);

    public static void RunFamily(ScenarioFamily family, ITestOutputHelper output)
    {
        var count = SeedsFor(family);
        var offset = SeedOffset;
        var failures = new ConcurrentBag<SimulationResult>();
        long events = 0;
        var virtualTicks = 0L;
        var detection = new ConcurrentBag<TimeSpan>();
        long evictions = 0;
        long falseDowns = 0;
        var clock = Stopwatch.StartNew();
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var seed = ScenarioCatalog.SeedOf(family, offset + i);
            var result = Simulation.Run(seed, ScenarioCatalog.ForSeed(seed));
            Interlocked.Add(ref events, result.Stats.Events);
            Interlocked.Add(ref virtualTicks, result.Stats.VirtualTime.Ticks);
            Interlocked.Add(ref evictions, result.Stats.Evictions);
            Interlocked.Add(ref falseDowns, result.Stats.FalseDowns);
            foreach (var t in result.Stats.Detection)
            {
                detection.Add(t);
            }
            if (!result.Passed)
            {
                failures.Add(result);
            }
        });
        clock.Stop();

        var seconds = clock.Elapsed.TotalSeconds;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{family}: {count} seeds from index {offset} in {seconds:0.0}s on {Environment.ProcessorCount} cores = {count / seconds:0.0} runs/s, {events / seconds:0} events/s, {TimeSpan.FromTicks(virtualTicks).TotalSeconds / seconds:0} virtual s per s; {failures.Count} failed"));
        if (!detection.IsEmpty)
        {
            var sorted = detection.Order().ToArray();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  crash detection (crash -> reported down, per survivor): n={sorted.Length} median={sorted[sorted.Length / 2].TotalMilliseconds:0} ms max={sorted[^1].TotalMilliseconds:0} ms"));
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  down reports about running members: {falseDowns}; evicted incarnations: {evictions}"));

        if (failures.IsEmpty)
        {
            return;
        }

        var ordered = failures.OrderBy(f => f.Seed).ToList();
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{ordered.Count} of {count} {family} seeds violated invariants: {string.Join(", ", ordered.Select(f => f.Seed))}");
        foreach (var f in ordered)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  seed {f.Seed}: {string.Join(" / ", f.Violations.Take(3).Select(v => v.ToString().Length > 300 ? v.ToString()[..300] + "..." : v.ToString()))}");
        }

        foreach (var f in ordered.Take(2))
        {
            var traced = Simulation.Run(f.Seed, f.Scenario, new SimulationOptions { EngineTracing = true, ReportTraceLines = 120, TraceCapacity = 1_000_000 });
            sb.AppendLine();
            if (traced.TraceHash != f.TraceHash)
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"NOT DETERMINISTIC: seed {f.Seed} gave trace hash {f.TraceHash:x16}, then {traced.TraceHash:x16} when traced");
            }

            sb.AppendLine(traced.Report());
        }

        output.WriteLine(sb.ToString());
        Assert.Fail(sb.ToString());
    }

    private static int ReadInt(string name, int fallback)
    {
        var text = Environment.GetEnvironmentVariable(name);
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= 0 ? value : fallback;
    }
}
