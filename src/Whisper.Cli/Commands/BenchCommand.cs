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
        var command = new Command("bench", "Benchmark Whisper against raw UDP and LiteNetLib on loopback (ratios from one run).")
        {
            nodes, size, duration, loss, scenarios, json,
        };
        command.SetAction(async (result, ct) =>
        {
            var options = new BenchOptions
            {
                Nodes = result.GetValue(nodes),
                Size = result.GetValue(size),
                Duration = TimeSpan.FromSeconds(result.GetValue(duration)),
                Losses = [.. result.GetValue(loss)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => double.Parse(s, CultureInfo.InvariantCulture))],
                Scenarios = [.. result.GetValue(scenarios)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
            };
            var records = await ScenarioRunner.RunAsync(options, Console.Error, ct).ConfigureAwait(false);
            await Console.Out.WriteAsync(ScenarioRunner.Table(records)).ConfigureAwait(false);
            if (result.GetValue(json) is { } file)
            {
                var rows = records.Select(r => new { scenario = r.Scenario, metric = r.Metric, value = double.IsFinite(r.Value) ? r.Value : (double?)null, unit = r.Unit });
                await File.WriteAllTextAsync(file.FullName, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }), ct).ConfigureAwait(false);
            }

            return records.Any(r => r.Metric == "failed" || (r.Metric == "order_violations" && r.Value > 0)) ? 1 : 0;
        });
        return command;
    }
}
