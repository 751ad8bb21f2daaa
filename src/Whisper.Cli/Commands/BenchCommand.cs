using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Whisper.Bench;

namespace Whisper.Cli.Commands;

/// <summary><c>whisper bench</c>: raw UDP, LiteNetLib and Whisper meshes in this process on 127.0.0.1, measured in one run.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "Nodes per mesh.", DefaultValueFactory = _ => 10 };
        var size = new Option<int>("--size") { Description = "Message size in bytes.", DefaultValueFactory = _ => 100 };
        var duration = new Option<double>("--duration") { Description = "Seconds of throughput measurement (after 1 s warm-up).", DefaultValueFactory = _ => 5 };
        var loss = new Option<string>("--loss") { Description = "Comma-separated receive-side datagram loss probabilities.", DefaultValueFactory = _ => "0,0.1" };
        var scenarios = new Option<string>("--scenarios") { Description = "Comma-separated meshes: udp-raw, litenetlib, whisper; idle (a silent Whisper group: CPU and memory per node).", DefaultValueFactory = _ => "udp-raw,litenetlib,whisper" };
        var json = new Option<FileInfo?>("--json") { Description = "Also write [{scenario, metric, value, unit}] records to this file." };
        var idle = new Option<double>("--idle") { Description = "Seconds the formed mesh sits idle (after 1 s to settle) to measure idle CPU and memory; 0 skips.", DefaultValueFactory = _ => 3 };
        var latencySamples = new Option<int>("--latency-samples") { Description = "Most latency samples; 0 skips the latency phase (which also ends after min(duration, 3 s)).", DefaultValueFactory = _ => 2000 };
        var paired = new Option<bool>("--paired-latency") { Description = "Also measure latency with the meshes taking turns in short blocks in one phase (needs udp-raw and whisper, loss 0): ratios that hold on a noisy machine.", DefaultValueFactory = _ => true };
        var processPerNode = new Option<bool>("--process-per-node") { Description = "Run each Whisper node as its own process (latency then includes two pipe hops to this process)." };
        var command = new Command("bench", "Benchmark Whisper against raw UDP and LiteNetLib on loopback (ratios from one run).")
        {
            nodes, size, duration, loss, scenarios, json, processPerNode, idle, latencySamples, paired,
        };
        command.SetAction(async (result, ct) =>
        {
            var losses = BenchOptions.ParseLosses(result.GetValue(loss)!, out var lossError);
            var options = new BenchOptions
            {
                Nodes = result.GetValue(nodes),
                Size = result.GetValue(size),
                Duration = Seconds(result.GetValue(duration)),
                Losses = losses ?? [],
                Scenarios = [.. result.GetValue(scenarios)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
                ProcessPerNode = result.GetValue(processPerNode),
                Idle = Seconds(result.GetValue(idle)),
                LatencySamples = result.GetValue(latencySamples),
                PairedLatency = result.GetValue(paired),
                Launcher = SelfLauncher(),
            };
            var wild = new[] { duration, idle }.FirstOrDefault(o => !(Math.Abs(result.GetValue(o)) <= BenchOptions.MaxPhase.TotalSeconds)); // also NaN
            var secondsError = wild is null ? null : $"{wild.Name} must be a number of seconds up to {BenchOptions.MaxPhase.TotalSeconds:0}, not {result.GetValue(wild).ToString(CultureInfo.InvariantCulture)}.";
            if ((secondsError ?? lossError ?? options.Problem()) is { } problem)
            {
                await Console.Error.WriteLineAsync($"whisper bench: {problem}").ConfigureAwait(false);
                return CliSupport.ExitBadArguments;
            }

            List<Whisper.Bench.BenchRecord> records;
            using (Whisper.Bench.AllocationSampler.StartIfRequested(Console.Error))
            {
                records = await ScenarioRunner.RunAsync(options, Console.Error, ct).ConfigureAwait(false);
            }
            await Console.Out.WriteAsync(ScenarioRunner.Table(records)).ConfigureAwait(false);
            if (result.GetValue(json) is { } file)
            {
                var rows = records.Select(r => new { scenario = r.Scenario, metric = r.Metric, value = double.IsFinite(r.Value) ? r.Value : (double?)null, unit = r.Unit });
                await File.WriteAllTextAsync(file.FullName, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }), ct).ConfigureAwait(false);
            }

            return records.Any(r => r.Metric == "failed" || (r.Metric == "order_violations" && r.Value > 0)) ? CliSupport.ExitFailure : CliSupport.ExitOk;
        });
        return command;
    }

    /// <summary>Seconds as a span; a value beyond <see cref="BenchOptions.MaxPhase"/> (or NaN) is refused before it is used.</summary>
    private static TimeSpan Seconds(double seconds) =>
        Math.Abs(seconds) <= BenchOptions.MaxPhase.TotalSeconds ? TimeSpan.FromSeconds(seconds) : TimeSpan.Zero;

    /// <summary>
    /// <c>whisper bench-node</c> (hidden): one node of <c>bench --process-per-node</c>, driven over stdin/stdout by the
    /// parent benchmark.
    /// </summary>
    public static Command CreateNode()
    {
        var index = new Option<int>("--index") { Required = true };
        var nodes = new Option<int>("--nodes") { Required = true };
        var size = new Option<int>("--size") { Required = true };
        var seed = new Option<int>("--seed") { Required = true };
        var server = new Option<string>("--server") { Required = true };
        var command = new Command("bench-node", "One node of 'bench --process-per-node' (started by the benchmark).") { index, nodes, size, seed, server };
        command.Hidden = true;
        command.SetAction(async (result, ct) =>
        {
            var stdout = new StreamWriter(Console.OpenStandardOutput(), bufferSize: 1 << 16) { AutoFlush = false, NewLine = "\n" };
            await using (stdout.ConfigureAwait(false))
            {
                using var stdin = new StreamReader(Console.OpenStandardInput());
                return await BenchNodeHost.RunAsync(
                    result.GetValue(index), result.GetValue(nodes), result.GetValue(size), result.GetValue(seed),
                    System.Net.IPEndPoint.Parse(result.GetValue(server)!), stdin, stdout, ct).ConfigureAwait(false);
            }
        });
        return command;
    }

    /// <summary>This program again: the apphost, or <c>dotnet whisper.dll</c>.</summary>
    private static ChildLauncher SelfLauncher()
    {
        var path = Environment.ProcessPath ?? "dotnet";
        var entry = typeof(BenchCommand).Assembly.Location;
        return string.Equals(Path.GetFileNameWithoutExtension(path), "dotnet", StringComparison.OrdinalIgnoreCase)
            ? new ChildLauncher(path, [entry])
            : new ChildLauncher(path, []);
    }
}
