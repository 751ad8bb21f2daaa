using System.Diagnostics;
using System.Text.Json;

namespace Whisper.Cli.Tests;

/// <summary>
/// <c>whisper bench --process-per-node</c> keeps working: real child processes (hidden <c>bench-node</c>) form a group,
/// deliver, and the order check of the run is clean. Never asserts a speed.
/// </summary>
public sealed class BenchProcessPerNodeTests
{
    private static string Whisper => Path.Combine(AppContext.BaseDirectory, "whisper.dll");

    [Fact]
    public async Task OneProcessPerNodeRunsDeliversAndChecksOrderClean()
    {
        var json = Path.Combine(Path.GetTempPath(), $"whisper-bench-{Guid.NewGuid():N}.json");
        try
        {
            using var p = Process.Start(new ProcessStartInfo("dotnet",
                [Whisper, "bench", "--process-per-node", "--nodes", "3", "--size", "32", "--duration", "1", "--loss", "0", "--scenarios", "whisper", "--json", json])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            try
            {
                await p.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                throw;
            }

            Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}\n{await stdout}\n{await stderr}");
            using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            double Metric(string name) => doc.RootElement.EnumerateArray().Single(e => e.GetProperty("metric").GetString() == name).GetProperty("value").GetDouble();
            Assert.Equal(1, Metric("process_per_node"));
            Assert.Equal(0, Metric("order_violations"));
            Assert.True(Metric("tput_deliveries_per_s") > 0);
            Assert.True(Metric("lat_samples") > 0);
            Assert.True(Metric("cpu_cores_used") > 0, "the children's CPU is reported");
            Assert.True(Metric("node_rss_mb_max") > 0, "the children's memory is sampled through the window");
            Assert.Contains("memory (largest node, MB;", await stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(json);
        }
    }
}
