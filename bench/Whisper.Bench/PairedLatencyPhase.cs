using System.Diagnostics;
using System.Globalization;

namespace Whisper.Bench;

/// <summary>
/// The latency phase with the meshes interleaved: raw UDP, LiteNetLib and Whisper are formed at the same time, each is
/// warmed up, then they take turns in short blocks of <see cref="BlockSamples"/> samples (the order reversed every
/// round) until each has its samples. Measured one after another, the meshes meet different seconds of a shared machine
/// and the ratio of one run swung from 0.9x to 1.8x; interleaved, every mesh meets the same seconds.
/// After each block the mesh's trailing work (Whisper's delayed acks, 5 ms) runs out in a <see cref="Gap"/> before the
/// next mesh starts, and is counted in that block's CPU. The other meshes sit idle meanwhile (their heartbeats and
/// receive timeouts run in the blocks they are not measured in), which the sequential phase does not have.
/// </summary>
public static class PairedLatencyPhase
{
    /// <summary>What the records' scenario names end with: <c>udp-raw paired</c>, <c>whisper paired</c>.</summary>
    public const string Suffix = "paired";

    /// <summary>Samples per block: 50 samples are 5 to 10 ms of one mesh.</summary>
    public const int BlockSamples = 50;

    /// <summary>
    /// Untimed broadcasts at the start of each block: the first after a gap finds the mesh's threads asleep and its
    /// caches cold (about 1.7x the next ones' latency for every mesh), which the back-to-back samples of the sequential
    /// phase never meet.
    /// </summary>
    public const int PrimeSamples = 1;

    /// <summary>Quiet time after each block, longer than Whisper's 5-ms ack delay.</summary>
    public static readonly TimeSpan Gap = TimeSpan.FromMilliseconds(15);

    private static readonly string[] Meshes = ["udp-raw", "litenetlib", "whisper"];

    /// <summary>Whether a run with <paramref name="o"/> has an interleaved phase: raw UDP and Whisper in this process, loss 0 among the losses.</summary>
    public static bool Applies(BenchOptions o) =>
        o.PairedLatency && !o.ProcessPerNode && o.LatencySamples > 0 && o.Losses.Contains(0)
        && o.Scenarios.Contains("udp-raw") && o.Scenarios.Contains("whisper");

    internal static async Task<List<BenchRecord>> MeasureAsync(BenchOptions o, TextWriter? log, CancellationToken ct)
    {
        var arms = new List<Arm>();
        try
        {
            foreach (var name in Meshes.Where(o.Scenarios.Contains))
            {
                arms.Add(new Arm(name, await ScenarioRunner.CreateAsync(name, o, ct).ConfigureAwait(false)));
            }

            var timeout = TimeSpan.FromSeconds(1);
            var warmupStart = Stopwatch.GetTimestamp();
            foreach (var arm in arms)
            {
                arm.Next = arm.Probe.WarmUp(o.Warmup, timeout, ct); // as the sequential phase's
            }

            await JitQuiet.WaitAsync(ct).ConfigureAwait(false); // the last mesh's warm-up may have made shared code hot again

            var warmup = Stopwatch.GetElapsedTime(warmupStart).TotalSeconds;
            var perMesh = Math.Min(o.Duration.TotalSeconds, 3);
            var phaseEnd = Stopwatch.GetTimestamp() + (long)(perMesh * arms.Count * Stopwatch.Frequency);
            for (var round = 0; Stopwatch.GetTimestamp() < phaseEnd && arms.Any(a => a.Taken < o.LatencySamples); round++)
            {
                for (var k = 0; k < arms.Count; k++)
                {
                    var arm = arms[round % 2 == 0 ? k : arms.Count - 1 - k];
                    var block = Math.Min(BlockSamples, o.LatencySamples - arm.Taken);
                    if (block <= 0)
                    {
                        continue;
                    }

                    var cpu0 = Environment.CpuUsage.TotalTime;
                    for (var s = 0; s < PrimeSamples; s++)
                    {
                        _ = arm.Probe.Sample(arm.Next++, timeout, ct);
                        arm.Broadcasts++;
                    }

                    for (var s = 0; s < block; s++)
                    {
                        arm.Add(arm.Probe.Sample(arm.Next++, timeout, ct));
                    }

                    await Task.Delay(Gap, ct).ConfigureAwait(false);
                    arm.Cpu += Environment.CpuUsage.TotalTime - cpu0;
                    arm.Blocks++;
                }
            }

            log?.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"latency {Suffix}: {string.Join(", ", arms.Select(a => $"{a.Name} {a.Samples.Count} samples in {a.Blocks} blocks"))}"));
            var records = new List<BenchRecord>();
            foreach (var arm in arms)
            {
                records.AddRange(arm.Records(warmup));
            }

            return records;
        }
        finally
        {
            foreach (var arm in arms)
            {
                await arm.Mesh.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private sealed class Arm(string name, IMesh mesh)
    {
        public string Name { get; } = name;

        public IMesh Mesh { get; } = mesh;

        public LatencyProbe Probe { get; } = new(mesh);

        public List<double> Samples { get; } = [];

        public List<double> Observed { get; } = [];

        public int Next { get; set; }

        public int Taken { get; private set; }

        public int Incomplete { get; private set; }

        public int Blocks { get; set; }

        public int Broadcasts { get; set; }

        public TimeSpan Cpu { get; set; }

        public void Add(LatencySample? sample)
        {
            Taken++;
            Broadcasts++;
            if (sample is { } s)
            {
                Samples.Add(s.Total);
                Observed.Add(s.Observed);
            }
            else
            {
                Incomplete++;
            }
        }

        public IEnumerable<BenchRecord> Records(double warmupSeconds)
        {
            var scenario = $"{Name} {Suffix}";
            Samples.Sort();
            yield return new(scenario, "lat_warmup_s", warmupSeconds, "s");
            yield return new(scenario, "lat_p50_us", ScenarioRunner.Pct(Samples, 0.5), "us");
            yield return new(scenario, "lat_p90_us", ScenarioRunner.Pct(Samples, 0.9), "us");
            yield return new(scenario, "lat_p99_us", ScenarioRunner.Pct(Samples, 0.99), "us");
            Observed.Sort();
            yield return new(scenario, "lat_observed_p50_us", ScenarioRunner.Pct(Observed, 0.5), "us");
            yield return new(scenario, "lat_max_us", Samples.Count == 0 ? 0 : Samples[^1], "us");
            yield return new(scenario, "lat_samples", Samples.Count, "count");
            yield return new(scenario, "lat_incomplete", Incomplete, "count");
            yield return new(scenario, "lat_blocks", Blocks, "count");

            // The whole process's CPU from each block's start to the end of its gap, per broadcast (the idle meshes' timers included).
            yield return new(scenario, "lat_cpu_us_per_broadcast", Broadcasts == 0 ? 0 : Cpu.TotalMicroseconds / Broadcasts, "us");
            if (Mesh.OrderViolations >= 0)
            {
                yield return new(scenario, "order_violations", Mesh.OrderViolations, "count");
            }
        }
    }
}
