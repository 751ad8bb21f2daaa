using Whisper.Bench;
using Xunit;

namespace Whisper.Bench.Tests;

/// <summary>Keeps the benchmark working: it runs, delivers, and Whisper's order check is clean. Never asserts a speed.</summary>
public sealed class BenchSmokeTests
{
    [Theory]
    [InlineData("udp-raw", 0.0)]
    [InlineData("litenetlib", 0.0)]
    [InlineData("whisper", 0.0)]
    [InlineData("whisper", 0.1)]
    public async Task ScenarioRunsDeliversAndChecksOrder(string scenario, double loss)
    {
        var options = new BenchOptions
        {
            Nodes = 3,
            Size = 32,
            Duration = TimeSpan.FromSeconds(1),
            Warmup = TimeSpan.FromMilliseconds(200),
            Losses = [loss],
            Scenarios = [scenario],
        };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));

        var records = await ScenarioRunner.RunAsync(options, null, cts.Token);

        Assert.DoesNotContain(records, r => r.Metric == "failed");
        Assert.Contains(records, r => r.Metric == "lat_samples" && r.Value > 0);
        Assert.Contains(records, r => r.Metric == "tput_deliveries_per_s" && r.Value > 0);
        if (scenario == "whisper")
        {
            Assert.Contains(records, r => r.Metric == "order_violations" && r.Value == 0);
        }
    }

    [Fact]
    public async Task IdleScenarioReportsCpuAndMemoryPerNode()
    {
        var options = new BenchOptions
        {
            Nodes = 3,
            Duration = TimeSpan.FromSeconds(1),
            Warmup = TimeSpan.FromMilliseconds(200),
            Losses = [0],
            Scenarios = ["idle"],
        };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));

        var records = await ScenarioRunner.RunAsync(options, null, cts.Token);

        Assert.DoesNotContain(records, r => r.Metric == "failed");
        Assert.All(records, r => Assert.Equal("whisper idle", r.Scenario));
        Assert.Contains(records, r => r.Metric == "idle_cpu_cores_per_node" && r.Value >= 0);
        Assert.Contains(records, r => r.Metric == "working_set_mb_process" && r.Value > 0);
        Assert.Contains(records, r => r.Metric == "idle_datagrams_s_per_node" && r.Value > 0); // heartbeats go on
    }
}
