using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Whisper.Bench;

/// <summary>Options of one benchmark run.</summary>
public sealed record BenchOptions
{
    public int Nodes { get; init; } = 10;
    public int Size { get; init; } = 100;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(5);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);
    public IReadOnlyList<double> Losses { get; init; } = [0, 0.1];
    public IReadOnlyList<string> Scenarios { get; init; } = ["udp-raw", "litenetlib", "whisper"];
    public int Seed { get; init; } = 42;
    public int InFlightPerNode { get; init; } = 64;

    /// <summary>Run the Whisper mesh with one process per node (<see cref="ProcessWhisperMesh"/>), started with <see cref="Launcher"/>.</summary>
    public bool ProcessPerNode { get; init; }

    /// <summary>How to start a node process (the <c>whisper</c> executable); required with <see cref="ProcessPerNode"/>.</summary>
    public ChildLauncher? Launcher { get; init; }

    /// <summary>Before the latency phase, the formed mesh sits idle this long (heartbeats only) to measure idle CPU (and memory per node process).</summary>
    public TimeSpan Idle { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Most latency samples per mesh and loss (0 skips the latency phase); the phase also ends after min(<see cref="Duration"/>, 3 s).</summary>
    public int LatencySamples { get; init; } = 2000;

    /// <summary>
    /// Also measure latency with the meshes interleaved in one phase (<see cref="PairedLatencyPhase"/>), when raw UDP and Whisper
    /// run in this process at loss 0: records <c>udp-raw paired</c>, <c>whisper paired</c> (and <c>litenetlib paired</c>).
    /// </summary>
    public bool PairedLatency { get; init; } = true;

    /// <summary>Meshes a run can measure (<see cref="Scenarios"/>).</summary>
    public static IReadOnlyList<string> KnownScenarios { get; } = ["udp-raw", "litenetlib", "whisper", "idle"];

    /// <summary>Most nodes per mesh: a Whisper group holds at most 10 members.</summary>
    public const int MaxNodes = 10;

    /// <summary>Largest message: one datagram of the raw-UDP baseline (65,507 bytes on IPv4), below Whisper's 64-KiB cap.</summary>
    public const int MaxSize = 60_000;

    /// <summary>Longest phase a run accepts (an hour), so a typo cannot start a run that never ends.</summary>
    public static TimeSpan MaxPhase { get; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Why these options cannot run, in one sentence naming the option as the command line spells it, or null when
    /// they can.
    /// </summary>
    public string? Problem()
    {
        if (Nodes is < 2 or > MaxNodes)
        {
            return $"--nodes must be a whole number from 2 to {MaxNodes} (a group holds at most {MaxNodes} members), not {Nodes}.";
        }

        if (Size is < Payload.HeaderBytes or > MaxSize)
        {
            return $"--size must be from {Payload.HeaderBytes} bytes (the sequence header every message carries) to {MaxSize}, not {Size}.";
        }

        if (Duration <= TimeSpan.Zero || Duration > MaxPhase)
        {
            return string.Create(CultureInfo.InvariantCulture, $"--duration must be more than 0 and at most {MaxPhase.TotalSeconds:0} seconds, not {Duration.TotalSeconds:0.###}.");
        }

        if (Idle < TimeSpan.Zero || Idle > MaxPhase)
        {
            return string.Create(CultureInfo.InvariantCulture, $"--idle must be from 0 (skip) to {MaxPhase.TotalSeconds:0} seconds, not {Idle.TotalSeconds:0.###}.");
        }

        if (LatencySamples < 0)
        {
            return $"--latency-samples must be 0 (skip the latency phase) or more, not {LatencySamples}.";
        }

        if (Losses.Count == 0)
        {
            return "--loss needs at least one probability, for example --loss 0,0.1.";
        }

        foreach (var p in Losses)
        {
            if (double.IsNaN(p) || p is < 0 or >= 1)
            {
                return string.Create(CultureInfo.InvariantCulture, $"--loss probabilities must be from 0 up to (not including) 1, not {p}.");
            }
        }

        if (Scenarios.Count == 0)
        {
            return $"--scenarios needs at least one of {string.Join(", ", KnownScenarios)}.";
        }

        if (Scenarios.FirstOrDefault(static s => !KnownScenarios.Contains(s)) is { } unknown)
        {
            return $"--scenarios: unknown scenario '{unknown}' (known: {string.Join(", ", KnownScenarios)}).";
        }

        return null;
    }

    /// <summary>
    /// Parses a comma-separated list of loss probabilities (invariant culture, for example <c>0,0.1</c>); null and the
    /// reason when an entry is not a number. The range is checked by <see cref="Problem"/>.
    /// </summary>
    public static IReadOnlyList<double>? ParseLosses(string text, out string? error)
    {
        var losses = new List<double>();
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(entry, NumberStyles.Float, CultureInfo.InvariantCulture, out var p))
            {
                error = $"--loss must be comma-separated probabilities such as 0,0.1; '{entry}' is not a number.";
                return null;
            }

            losses.Add(p);
        }

        error = null;
        return losses;
    }
}

/// <summary>One figure: {scenario, metric, value, unit}.</summary>
public sealed record BenchRecord(string Scenario, string Metric, double Value, string Unit);

/// <summary>Runs the meshes with the same workload and measures them in this process.</summary>
public static class ScenarioRunner
{
    public static async Task<List<BenchRecord>> RunAsync(BenchOptions o, TextWriter? log, CancellationToken ct)
    {
        var records = new List<BenchRecord>();
        if (o.Scenarios.Contains("idle"))
        {
            log?.WriteLine("running whisper idle ...");
            try
            {
                records.AddRange(await MeasureIdleAsync(o, ct).ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
            {
                log?.WriteLine($"whisper idle failed: {ex.Message}");
                records.Add(new BenchRecord("whisper idle", "failed", 1, "bool"));
            }
        }

        foreach (var loss in o.Losses)
        {
            foreach (var name in o.Scenarios.Where(static s => s != "idle"))
            {
                var scenario = string.Create(CultureInfo.InvariantCulture, $"{name} loss={loss:0.##}");
                log?.WriteLine($"running {scenario} ...");
                try
                {
                    await using var mesh = await CreateAsync(name, o, ct).ConfigureAwait(false);
                    records.AddRange(await MeasureAsync(mesh, scenario, loss, o, log, ct).ConfigureAwait(false));
                }
                catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
                {
                    log?.WriteLine($"{scenario} failed: {ex.Message}");
                    records.Add(new BenchRecord(scenario, "failed", 1, "bool"));
                }
            }
        }

        if (PairedLatencyPhase.Applies(o))
        {
            log?.WriteLine($"running latency {PairedLatencyPhase.Suffix} (the meshes take turns in blocks of {PairedLatencyPhase.BlockSamples} samples) ...");
            try
            {
                records.AddRange(await PairedLatencyPhase.MeasureAsync(o, log, ct).ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
            {
                log?.WriteLine($"latency {PairedLatencyPhase.Suffix} failed: {ex.Message}");
                records.Add(new BenchRecord($"whisper {PairedLatencyPhase.Suffix}", "failed", 1, "bool"));
            }
        }

        return records;
    }

    internal static async Task<IMesh> CreateAsync(string name, BenchOptions o, CancellationToken ct) => name switch
    {
        "udp-raw" => new RawUdpMesh(o.Nodes, o.Size, o.Seed),
        "litenetlib" => await LiteNetLibMesh.StartAsync(o.Nodes, o.Size, o.Seed, ct).ConfigureAwait(false),
        "whisper" when o.ProcessPerNode => await ProcessWhisperMesh.StartAsync(
            o.Launcher ?? throw new ArgumentException("--process-per-node needs a launcher for the node processes", nameof(o)),
            o.Nodes, o.Size, o.Seed, ct).ConfigureAwait(false),
        "whisper" => await WhisperMesh.StartAsync(o.Nodes, o.Size, o.Seed, ct).ConfigureAwait(false),
        _ => throw new ArgumentException($"unknown scenario {name}", nameof(name)),
    };

    private static async Task<List<BenchRecord>> MeasureAsync(IMesh mesh, string scenario, double loss, BenchOptions o, TextWriter? log, CancellationToken ct)
    {
        var r = new List<BenchRecord>();
        mesh.SetLoss(loss);
        var n = mesh.Nodes;
        var probe = new LatencyProbe(mesh);
        var seqs = probe.Seqs;
        if (o.Idle > TimeSpan.Zero && loss == 0)
        {
            r.AddRange(await MeasureIdleInMeshAsync(mesh, scenario, o.Idle, ct).ConfigureAwait(false));
        }

        var samples = new List<double>();
        var sendSamples = new List<double>(); // until the send call returned
        var firstSamples = new List<double>(); // until the first member delivered
        var observedSamples = new List<double>(); // until the harness's wait resumed
        var incomplete = 0;
        var sampleTimeout = loss > 0 ? TimeSpan.FromSeconds(2) : TimeSpan.FromSeconds(1);
        if (mesh is RawUdpMesh && loss > 0)
        {
            sampleTimeout = TimeSpan.FromMilliseconds(20); // raw UDP never repairs a loss
        }

        // Warm-up (LatencyProbe.WarmUp): untimed samples for o.Warmup and then until this process's JIT has been quiet
        // for a while (at most JitQuiet.MaxExtra longer), so that the samples measure tiered-up code (the engine's methods start as quick
        // JIT code and are recompiled in the background after 30 calls) and warm caches, as the throughput phase's
        // warm-up does. Until 2026-12-03 it also stopped after LatencySamples samples (2000: about 0.2 s), and on two
        // cores the background recompilation, which takes most of a core for a second or two, overlapped the samples
        // (for Whisper, with far more code than raw UDP, most of them).
        var warmupStart = Stopwatch.GetTimestamp();
        if (o.LatencySamples > 0)
        {
            _ = probe.WarmUp(o.Warmup, sampleTimeout, ct);
        }

        r.Add(new(scenario, "lat_warmup_s", Stopwatch.GetElapsedTime(warmupStart).TotalSeconds, "s"));

        var lc0 = mesh is WhisperMesh lm0 ? await lm0.CountersAsync(ct).ConfigureAwait(false) : default;
        using var self = Process.GetCurrentProcess();
        var latencyCpu0 = self.TotalProcessorTime;
        var latencyEnd = Stopwatch.GetTimestamp() + (long)(Math.Min(o.Duration.TotalSeconds, 3) * Stopwatch.Frequency);
        for (var i = 0; i < o.LatencySamples && Stopwatch.GetTimestamp() < latencyEnd; i++)
        {
            if (probe.Sample(i, sampleTimeout, ct) is { } us)
            {
                samples.Add(us.Total);
                sendSamples.Add(us.Send);
                firstSamples.Add(us.First);
                observedSamples.Add(us.Observed);
            }
            else
            {
                incomplete++;
            }
        }

        self.Refresh();
        var latencyCpu = self.TotalProcessorTime - latencyCpu0;
        var n0 = samples.Count + incomplete;
        if (mesh is WhisperMesh lm1)
        {
            var lc1 = await lm1.CountersAsync(ct).ConfigureAwait(false);
            r.Add(new(scenario, "lat_retransmits_per_broadcast", n0 == 0 ? 0 : (lc1.Retransmitted - lc0.Retransmitted) / (double)n0, "chunks"));
            r.Add(new(scenario, "lat_redundant_dgrams_per_broadcast", n0 == 0 ? 0 : (lc1.Redundant - lc0.Redundant) / (double)n0, "datagrams"));
            r.Add(new(scenario, "lat_datagrams_per_broadcast", n0 == 0 ? 0 : (lc1.Datagrams - lc0.Datagrams) / (double)n0, "datagrams"));
            r.Add(new(scenario, "lat_control_dgrams_per_broadcast", n0 == 0 ? 0 : (lc1.Control - lc0.Control) / (double)n0, "datagrams"));
        }

        samples.Sort();
        r.Add(new(scenario, "lat_p50_us", Pct(samples, 0.5), "us"));
        r.Add(new(scenario, "lat_p90_us", Pct(samples, 0.9), "us"));
        r.Add(new(scenario, "lat_p99_us", Pct(samples, 0.99), "us"));
        sendSamples.Sort();
        firstSamples.Sort();
        r.Add(new(scenario, "lat_send_p50_us", Pct(sendSamples, 0.5), "us")); // the sender's part: until its send call returned
        r.Add(new(scenario, "lat_first_p50_us", Pct(firstSamples, 0.5), "us")); // until the first receiver delivered
        observedSamples.Sort();
        r.Add(new(scenario, "lat_observed_p50_us", Pct(observedSamples, 0.5), "us")); // until the awaiting harness ran again
        r.Add(new(scenario, "lat_max_us", samples.Count == 0 ? 0 : samples[^1], "us"));
        r.Add(new(scenario, "lat_samples", samples.Count, "count"));
        if (mesh is not ProcessWhisperMesh)
        {
            // CPU time of the whole process per broadcast of the latency phase (all of its nodes, the harness included):
            // on a 2-core machine the 9 receivers share two cores, so this is what the latency is made of, and it moves
            // less with the machine's state than the latency does.
            r.Add(new(scenario, "lat_cpu_us_per_broadcast", n0 == 0 ? 0 : latencyCpu.TotalMicroseconds / n0, "us"));
        }
        r.Add(new(scenario, "lat_incomplete", incomplete, "count"));
        await Task.Delay(200, ct).ConfigureAwait(false);

        // A long run with one process per node: the nodes' live heap at rest before the load and after it (a leak shows as
        // growth between the two; under load the live heap also holds whatever is in flight at that moment).
        var restCheck = mesh as IExternalCost is { } restNodes && MemorySeries.CollectInterval(o.Duration) is not null ? restNodes : null;
        var restBefore = restCheck is null ? null : await MemoryAtRestAsync(restCheck, RestLinger, ct).ConfigureAwait(false);

        // Throughput: every node broadcasts as fast as flow control allows, bounded in-flight per node.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        long broadcasts = 0;
        var measuring = false;
        var pause = new SendPause(); // the rest check after the first minute stops the senders for a few seconds
        var senders = Enumerable.Range(0, n).Select(node => Task.Run(async () =>
        {
            var inflight = new Queue<Task>();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    if (pause.Paused)
                    {
                        await Task.Delay(5, stop.Token).ConfigureAwait(false);
                        continue;
                    }

                    var vt = mesh.BroadcastAsync(node, seqs[node], stop.Token);
                    if (vt.IsCompleted)
                    {
                        if (!vt.Result)
                        {
                            await Task.Delay(1, stop.Token).ConfigureAwait(false);
                            continue;
                        }
                    }
                    else
                    {
                        inflight.Enqueue(vt.AsTask());
                        if (inflight.Count >= o.InFlightPerNode)
                        {
                            await inflight.Dequeue().ConfigureAwait(false);
                        }
                    }

                    seqs[node]++;
                    if (Volatile.Read(ref measuring))
                    {
                        Interlocked.Increment(ref broadcasts);
                    }

                    if (mesh is RawUdpMesh && (seqs[node] & 63) == 0)
                    {
                        await Task.Yield();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        })).ToArray();

        var tputWarmupStart = Stopwatch.GetTimestamp();
        await Task.Delay(o.Warmup, ct).ConfigureAwait(false);
        if (mesh is not IExternalCost)
        {
            await JitQuiet.WaitAsync(ct).ConfigureAwait(false); // as in the latency phase (node processes compile on their own)
        }

        r.Add(new(scenario, "tput_warmup_s", Stopwatch.GetElapsedTime(tputWarmupStart).TotalSeconds, "s"));
        var proc = Process.GetCurrentProcess();
        var c0 = mesh is WhisperMesh wm0 ? await wm0.CountersAsync(ct).ConfigureAwait(false) : default;
        var d0 = probe.Deliveries;
        var (w0, b0) = mesh.WireCounters();
        var a0 = GC.GetTotalAllocatedBytes(true);
        var g0 = new[] { GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2) };
        proc.Refresh();
        var cpu0 = proc.TotalProcessorTime;
        var ts0 = Stopwatch.GetTimestamp();
        var t = Stopwatch.StartNew();
        Volatile.Write(ref measuring, true);
        // Node processes: their counters at the window's start are fetched now (their reports are kept for about 7 minutes
        // only), and their memory is sampled through the window.
        var x0Now = (mesh as IExternalCost)?.CountersAtAsync(ts0, ct);
        var memory = mesh is IExternalCost ? new MemorySeries() : null;
        var restAfterFirstMinute = await WaitWindowAsync(mesh as IExternalCost, memory, ts0, o.Duration, restCheck is null ? null : pause, ct).ConfigureAwait(false);
        Volatile.Write(ref measuring, false);
        var wall = t.Elapsed;
        var ts1 = Stopwatch.GetTimestamp();
        var d1 = probe.Deliveries;
        var (w1, b1) = mesh.WireCounters();
        var a1 = GC.GetTotalAllocatedBytes(true);
        proc.Refresh();
        var cpu1 = proc.TotalProcessorTime;
        var sent = Interlocked.Read(ref broadcasts);
        NodeCounters x0 = default, x1 = default;
        if (mesh is IExternalCost external)
        {
            // The nodes' own counts at the window's edges (the pipes to and from them may be backlogged).
            x0 = await x0Now!.ConfigureAwait(false);
            x1 = await external.CountersAtAsync(ts1, ct).ConfigureAwait(false);
            memory!.Add(Stopwatch.GetElapsedTime(ts0, ts1).TotalSeconds, await external.MemoryAtAsync(ts1, ct).ConfigureAwait(false));
            log?.WriteLine($"{scenario} {memory.Line()}");
            if (memory.LivePoints() is { Count: > 0 } live && live.All(static n => n.Count > 0))
            {
                log?.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{scenario} live heap after full collections (largest node, MB): {string.Join(' ', live[0].Select((p, j) => $"{p.Seconds:0}s {live.Max(n => j < n.Count ? n[j].Mb : 0):0.0}"))}"));
            }
            (d0, d1, w0, w1, b0, b1, sent) = (x0.Deliveries, x1.Deliveries, x0.Datagrams, x1.Datagrams, x0.Bytes, x1.Bytes, x1.Sent - x0.Sent);
        }

        if (mesh is WhisperMesh wm1 && sent > 0)
        {
            var c1 = await wm1.CountersAsync(ct).ConfigureAwait(false);
            r.Add(new(scenario, "acks_per_broadcast", (c1.Acks - c0.Acks) / (double)sent, "datagrams"));
            r.Add(new(scenario, "nacks_per_broadcast", (c1.Nacks - c0.Nacks) / (double)sent, "frames"));
            r.Add(new(scenario, "retransmits_per_broadcast", (c1.Retransmitted - c0.Retransmitted) / (double)sent, "chunks"));
            r.Add(new(scenario, "chunks_per_broadcast", (c1.Chunks - c0.Chunks) / (double)sent, "chunks"));
            r.Add(new(scenario, "redundant_dgrams_per_broadcast", (c1.Redundant - c0.Redundant) / (double)sent, "datagrams"));
            r.Add(new(scenario, "deferred_sends_fraction", (c1.Deferred - c0.Deferred) / (double)sent, "fraction"));
            var control = c1.Control - c0.Control;
            var data = c1.Datagrams - c0.Datagrams - control;
            r.Add(new(scenario, "control_dgram_overhead", data <= 0 ? 0 : control / (double)data, "fraction")); // datagrams without chunks / datagrams with
        }

        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(senders).WaitAsync(TimeSpan.FromSeconds(15), CancellationToken.None).ConfigureAwait(false);
        if (restCheck is not null && restBefore is not null)
        {
            var restAfter = await MemoryAtRestAsync(restCheck, RestLinger, ct).ConfigureAwait(false);
            const double Mb = 1024 * 1024;
            static double[] Live(NodeMemory[] nodes) => [.. nodes.Select(static m => m.LiveAfterFullGc / Mb)];
            var (before, after) = (Live(restBefore), Live(restAfter));
            r.Add(new(scenario, "node_live_heap_rest_mb_before", before.Max(), "MB")); // the largest node
            r.Add(new(scenario, "node_live_heap_rest_mb_after", after.Max(), "MB"));
            r.Add(new(scenario, "node_live_heap_rest_growth_mb", before.Zip(after, static (b, a) => a - b).Max(), "MB")); // the node that grew most
            r.Add(new(scenario, "node_pooled_chunks_rest_after", restAfter.Max(static m => m.PooledChunks), "chunks"));
            static string PerNode(NodeMemory[] nodes) => string.Join(' ', nodes.Select(static m =>
                string.Create(CultureInfo.InvariantCulture, $"{m.LiveAfterFullGc / Mb:0.0}/{m.PooledChunks}")));
            var line = $"{scenario} live heap at rest (per node, MB/pooled chunks): before the load {PerNode(restBefore)}";
            if (restAfterFirstMinute is not null)
            {
                // What the first minute of load left behind (pools and buffers at their working size) against what the
                // whole window left: growth between the two is memory that the load keeps adding.
                var first = Live(restAfterFirstMinute);
                r.Add(new(scenario, "node_live_heap_rest_mb_first_minute", first.Max(), "MB"));
                r.Add(new(scenario, "node_live_heap_rest_growth_after_first_minute_mb", first.Zip(after, static (f, a) => a - f).Max(), "MB"));
                r.Add(new(scenario, "node_pooled_chunks_rest_first_minute", restAfterFirstMinute.Max(static m => m.PooledChunks), "chunks"));
                line += $"; after the first minute {PerNode(restAfterFirstMinute)}";
            }

            log?.WriteLine(line + $"; after the window {PerNode(restAfter)}");
        }

        var got = d1 - d0;
        r.Add(new(scenario, "tput_deliveries_per_s", got / wall.TotalSeconds, "1/s"));
        r.Add(new(scenario, "broadcasts_per_s", sent / wall.TotalSeconds, "1/s"));
        if (mesh is RawUdpMesh)
        {
            r.Add(new(scenario, "raw_loss_fraction", sent == 0 ? 0 : Math.Max(0, 1 - got / (double)(sent * (n - 1))), "fraction"));
        }

        r.Add(new(scenario, "datagrams_per_broadcast", sent == 0 ? 0 : (w1 - w0) / (double)sent, "datagrams"));
        r.Add(new(scenario, "bytes_per_broadcast", sent == 0 ? 0 : (b1 - b0) / (double)sent, "bytes"));
        if (mesh is IExternalCost)
        {
            // One process per node: the nodes' own allocations and CPU; this process only relays lines.
            r.Add(new(scenario, "alloc_bytes_per_delivery", got == 0 ? 0 : (x1.Allocated - x0.Allocated) / (double)got, "bytes"));
            r.Add(new(scenario, "cpu_cores_used", (x1.Cpu - x0.Cpu).TotalSeconds / wall.TotalSeconds, "cores"));
            r.Add(new(scenario, "harness_cpu_cores", (cpu1 - cpu0).TotalSeconds / wall.TotalSeconds, "cores"));
            r.Add(new(scenario, "process_per_node", 1, "bool"));
            r.AddRange(memory!.Records(scenario));
        }
        else
        {
            r.Add(new(scenario, "alloc_bytes_per_delivery", got == 0 ? 0 : (a1 - a0) / (double)got, "bytes"));
            r.Add(new(scenario, "cpu_cores_used", (cpu1 - cpu0).TotalSeconds / wall.TotalSeconds, "cores"));
        }

        if (mesh is not IExternalCost)
        {
            r.Add(new(scenario, "gc_gen0", GC.CollectionCount(0) - g0[0], "count"));
            r.Add(new(scenario, "gc_gen1", GC.CollectionCount(1) - g0[1], "count"));
            r.Add(new(scenario, "gc_gen2", GC.CollectionCount(2) - g0[2], "count"));
        }
        if (mesh.OrderViolations >= 0)
        {
            r.Add(new(scenario, "order_violations", mesh.OrderViolations, "count"));
        }

        mesh.Delivered = null;
        return r;
    }

    /// <summary>
    /// Waits out the throughput window of <paramref name="duration"/> from <paramref name="ts0"/>; with node processes, adds
    /// their memory to <paramref name="memory"/> every <see cref="MemorySeries.Interval"/> (the end point is added by the caller).
    /// </summary>
    /// <summary>
    /// How long a measurement at rest waits after deliveries settle: past two of the engines' 10-s reviews of their
    /// delivery buffers, which give back what a burst made them grow.
    /// </summary>
    public static readonly TimeSpan RestLinger = TimeSpan.FromSeconds(25);

    /// <summary>
    /// Each node's memory once the group is at rest: waits until the nodes' delivery count has not moved for 1 s (at
    /// most 20 s: everything sent is delivered and acknowledged, the engines hold nothing in flight), then
    /// <paramref name="linger"/> more, asks every node for a full compacting collection, and returns each node's first
    /// report after it (its <see cref="NodeMemory.LiveAfterFullGc"/> is the live heap; waits at most 10 s for them).
    /// </summary>
    public static async Task<NodeMemory[]> MemoryAtRestAsync(IExternalCost nodes, TimeSpan linger, CancellationToken ct)
    {
        var settleBy = Stopwatch.GetTimestamp() + (20 * Stopwatch.Frequency);
        var last = (await nodes.CountersAtAsync(Stopwatch.GetTimestamp(), ct).ConfigureAwait(false)).Deliveries;
        while (Stopwatch.GetTimestamp() < settleBy)
        {
            await Task.Delay(1000, ct).ConfigureAwait(false);
            var now = (await nodes.CountersAtAsync(Stopwatch.GetTimestamp(), ct).ConfigureAwait(false)).Deliveries;
            if (now == last)
            {
                break;
            }

            last = now;
        }

        if (linger > TimeSpan.Zero)
        {
            await Task.Delay(linger, ct).ConfigureAwait(false);
        }

        var before = (await nodes.MemoryAtAsync(Stopwatch.GetTimestamp(), ct).ConfigureAwait(false)).Select(static m => m.LiveAfterFullGc).ToArray();
        await nodes.CollectFullAsync(ct).ConfigureAwait(false);
        var reportedBy = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (true)
        {
            await Task.Delay(200, ct).ConfigureAwait(false);
            var after = (await nodes.MemoryAtAsync(Stopwatch.GetTimestamp(), ct).ConfigureAwait(false)).ToArray();
            if (after.Length == before.Length && after.Zip(before).All(static p => p.First.LiveAfterFullGc != p.Second && p.First.LiveAfterFullGc > 0))
            {
                return after;
            }

            if (Stopwatch.GetTimestamp() > reportedBy)
            {
                throw new TimeoutException("the node processes did not report a full collection within 10 s");
            }
        }
    }

    /// <summary>
    /// Waits out the throughput window, sampling the node processes' memory (and asking for full collections, see
    /// <see cref="MemorySeries.CollectInterval"/>). With <paramref name="pause"/>, the first of those collections is made
    /// at rest instead (senders paused until deliveries settle); returns what it found, else null.
    /// </summary>
    private static async Task<NodeMemory[]?> WaitWindowAsync(IExternalCost? nodes, MemorySeries? memory, long ts0, TimeSpan duration, SendPause? pause, CancellationToken ct)
    {
        if (nodes is null || memory is null)
        {
            await Task.Delay(duration, ct).ConfigureAwait(false);
            return null;
        }

        NodeMemory[]? rest = null;

        var every = MemorySeries.Interval(duration);
        var collectEvery = MemorySeries.CollectInterval(duration);
        var collectNext = collectEvery;
        for (var k = 0; k * every < duration; k++)
        {
            var due = k * every;
            var wait = due - Stopwatch.GetElapsedTime(ts0);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, ct).ConfigureAwait(false);
            }

            memory.Add(due.TotalSeconds, await nodes.MemoryAtAsync(ts0 + (long)(due.TotalSeconds * Stopwatch.Frequency), ct).ConfigureAwait(false));
            if (collectEvery is { } c && due >= collectNext)
            {
                if (pause is not null && rest is null)
                {
                    pause.Paused = true;
                    try
                    {
                        rest = await MemoryAtRestAsync(nodes, RestLinger, ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        pause.Paused = false;
                    }
                }
                else
                {
                    await nodes.CollectFullAsync(ct).ConfigureAwait(false); // its result shows in the next points
                }

                collectNext += c;
            }
        }

        var left = duration - Stopwatch.GetElapsedTime(ts0);
        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left, ct).ConfigureAwait(false);
        }

        return rest;
    }

    /// <summary>
    /// The formed mesh with no traffic but heartbeats: CPU per node (the node processes' own with one process per node,
    /// else this process's divided by the nodes) and, with one process per node, the largest node's resident memory.
    /// </summary>
    private static async Task<List<BenchRecord>> MeasureIdleInMeshAsync(IMesh mesh, string scenario, TimeSpan idle, CancellationToken ct)
    {
        using var proc = Process.GetCurrentProcess();
        await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false); // joins, introductions and history requests settle
        proc.Refresh();
        var cpu0 = proc.TotalProcessorTime;
        var ts0 = Stopwatch.GetTimestamp();
        await Task.Delay(idle, ct).ConfigureAwait(false);
        proc.Refresh();
        var cpu1 = proc.TotalProcessorTime;
        var ts1 = Stopwatch.GetTimestamp();
        var seconds = Stopwatch.GetElapsedTime(ts0, ts1).TotalSeconds;
        if (mesh is IExternalCost external)
        {
            var x0 = await external.CountersAtAsync(ts0, ct).ConfigureAwait(false);
            var x1 = await external.CountersAtAsync(ts1, ct).ConfigureAwait(false);
            return
            [
                new(scenario, "idle_cpu_cores_per_node", (x1.Cpu - x0.Cpu).TotalSeconds / seconds / mesh.Nodes, "cores"),
                new(scenario, "idle_node_rss_mb", x1.MaxWorkingSet / (1024.0 * 1024.0), "MB"),
            ];
        }

        return [new(scenario, "idle_cpu_cores_per_node", (cpu1 - cpu0).TotalSeconds / seconds / mesh.Nodes, "cores")];
    }

    /// <summary>
    /// A formed group that says nothing: CPU the process uses over <see cref="BenchOptions.Duration"/> (heartbeats, acks,
    /// leases, timers) and memory, both per node. All nodes share this process, so the per-node memory is the growth of
    /// the process's working set (and of the managed heap) from before the server and nodes started, divided by the nodes.
    /// </summary>
    private static async Task<List<BenchRecord>> MeasureIdleAsync(BenchOptions o, CancellationToken ct)
    {
        const string scenario = "whisper idle";
        var proc = Process.GetCurrentProcess();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        proc.Refresh();
        var ws0 = proc.WorkingSet64;
        var heap0 = GC.GetTotalMemory(true);
        await using var mesh = await WhisperMesh.StartAsync(o.Nodes, o.Size, o.Seed, ct).ConfigureAwait(false);
        await Task.Delay(o.Warmup, ct).ConfigureAwait(false);
        var (w0, _) = mesh.WireCounters();
        proc.Refresh();
        var cpu0 = proc.TotalProcessorTime;
        var t = Stopwatch.StartNew();
        await Task.Delay(o.Duration, ct).ConfigureAwait(false);
        var wall = t.Elapsed;
        proc.Refresh();
        var cpu1 = proc.TotalProcessorTime;
        var (w1, _) = mesh.WireCounters();
        var heap1 = GC.GetTotalMemory(true);
        proc.Refresh();
        var ws1 = proc.WorkingSet64;
        var n = mesh.Nodes;
        const double Mb = 1024 * 1024;
        return
        [
            new(scenario, "idle_cpu_cores_per_node", (cpu1 - cpu0).TotalSeconds / wall.TotalSeconds / n, "cores"),
            new(scenario, "idle_datagrams_s_per_node", (w1 - w0) / wall.TotalSeconds / n, "1/s"),
            new(scenario, "working_set_mb_per_node", (ws1 - ws0) / Mb / n, "MB"),
            new(scenario, "managed_heap_mb_per_node", (heap1 - heap0) / Mb / n, "MB"),
            new(scenario, "working_set_mb_process", ws1 / Mb, "MB"),
        ];
    }

    internal static double Pct(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>A plain-text table per loss level: one row per metric, one column per mesh, and ratios.</summary>
    public static string Table(IReadOnlyList<BenchRecord> records)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        foreach (var lossGroup in records.GroupBy(x => x.Scenario[(x.Scenario.IndexOf(' ', StringComparison.Ordinal) + 1)..]))
        {
            var by = lossGroup.ToLookup(x => x.Scenario[..x.Scenario.IndexOf(' ', StringComparison.Ordinal)]);
            double? Get(string mesh, string metric) => by[mesh].FirstOrDefault(x => x.Metric == metric)?.Value;
            sb.AppendLine(inv, $"== {lossGroup.Key} ==");
            sb.AppendLine(inv, $"{"metric",-26}{"udp-raw",14}{"litenetlib",14}{"whisper",14}{"lnl/raw",12}{"wh/raw",12}{"wh/lnl",12}");
            foreach (var metric in lossGroup.Select(x => x.Metric).Distinct())
            {
                var raw = Get("udp-raw", metric);
                var lnl = Get("litenetlib", metric);
                var wh = Get("whisper", metric);
                static string F(double? v) => v is null ? "-" : v.Value.ToString("0.###", CultureInfo.InvariantCulture);
                static string R(double? a, double? b) => a is null || b is null || b == 0 ? "-" : (a.Value / b.Value).ToString("0.00", CultureInfo.InvariantCulture);
                sb.AppendLine(inv, $"{metric,-26}{F(raw),14}{F(lnl),14}{F(wh),14}{R(lnl, raw),12}{R(wh, raw),12}{R(wh, lnl),12}");
            }

            var v = Get("whisper", "order_violations");
            if (v is not null)
            {
                sb.AppendLine(v == 0 ? "order_check clean" : $"order_check violations {v}");
            }

            sb.AppendLine();
        }

        return sb.ToString();
    }
}

/// <summary>
/// Ends a warm-up once the JIT of this process has compiled nothing for <see cref="QuietFor"/> (tiered compilation
/// recompiles hot methods in the background in batches, about 100 ms after the calls that made them hot), and never
/// before the warm-up's own end; at most <see cref="MaxExtra"/> past it, so a process that keeps compiling still runs.
/// </summary>
internal sealed class JitQuiet
{
    public static readonly TimeSpan QuietFor = TimeSpan.FromMilliseconds(300);
    public static readonly TimeSpan MaxExtra = TimeSpan.FromSeconds(5);

    private long _count = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false);
    private long _changedAt = Stopwatch.GetTimestamp();
    private long _cap;

    /// <summary>Waits until this process's JIT is quiet (at most <see cref="MaxExtra"/>).</summary>
    public static async Task WaitAsync(CancellationToken ct)
    {
        var quiet = new JitQuiet();
        while (!quiet.Done(Stopwatch.GetTimestamp()))
        {
            await Task.Delay(50, ct).ConfigureAwait(false); // bounded by the cap
        }
    }

    /// <summary>True once <paramref name="warmupEnd"/> (a Stopwatch timestamp) has passed and the JIT is quiet, or at the cap.</summary>
    public bool Done(long warmupEnd)
    {
        var now = Stopwatch.GetTimestamp();
        if (_cap == 0)
        {
            _cap = warmupEnd + (long)(MaxExtra.TotalSeconds * Stopwatch.Frequency);
        }

        var count = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false);
        if (count != _count)
        {
            _count = count;
            _changedAt = now;
        }

        return now >= _cap || (now >= warmupEnd && Stopwatch.GetElapsedTime(_changedAt, now) >= QuietFor);
    }
}

/// <summary>Set while the throughput senders must hold off (a measurement at rest in the middle of the window).</summary>
internal sealed class SendPause
{
    private volatile bool _paused;

    public bool Paused
    {
        get => _paused;
        set => _paused = value;
    }
}
