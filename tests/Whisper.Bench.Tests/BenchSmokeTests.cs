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
    public async Task PairedLatencyInterleavesRawUdpAndWhisperAndChecksOrder()
    {
        var options = new BenchOptions
        {
            Nodes = 3,
            Size = 32,
            Duration = TimeSpan.FromSeconds(1),
            Warmup = TimeSpan.FromMilliseconds(200),
            Losses = [0],
            Scenarios = ["udp-raw", "whisper"],
            Idle = TimeSpan.Zero,
            LatencySamples = 120,
        };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        var records = await ScenarioRunner.RunAsync(options, null, cts.Token);

        Assert.DoesNotContain(records, r => r.Metric == "failed");
        double Paired(string mesh, string metric) => Assert.Single(records, r => r.Scenario == $"{mesh} paired" && r.Metric == metric).Value;
        Assert.Equal(120, Paired("udp-raw", "lat_samples") + Paired("udp-raw", "lat_incomplete"));
        Assert.Equal(120, Paired("whisper", "lat_samples") + Paired("whisper", "lat_incomplete"));
        Assert.True(Paired("whisper", "lat_samples") > 0);
        Assert.Equal(Math.Ceiling(120.0 / PairedLatencyPhase.BlockSamples), Paired("whisper", "lat_blocks")); // the meshes took turns in blocks
        Assert.Equal(Paired("udp-raw", "lat_blocks"), Paired("whisper", "lat_blocks"));
        Assert.Equal(0, Paired("whisper", "order_violations"));
        Assert.DoesNotContain(records, r => r.Scenario == "litenetlib paired"); // only the meshes asked for
    }

    [Fact]
    public void PairedLatencyRunsOnlyWithRawUdpAndWhisperInThisProcessAtLossZero()
    {
        Assert.True(PairedLatencyPhase.Applies(new BenchOptions()));
        Assert.True(PairedLatencyPhase.Applies(new BenchOptions { Scenarios = ["udp-raw", "whisper"], Losses = [0.1, 0] }));
        Assert.False(PairedLatencyPhase.Applies(new BenchOptions { PairedLatency = false }));
        Assert.False(PairedLatencyPhase.Applies(new BenchOptions { Scenarios = ["whisper"] }));
        Assert.False(PairedLatencyPhase.Applies(new BenchOptions { Scenarios = ["udp-raw", "litenetlib"] }));
        Assert.False(PairedLatencyPhase.Applies(new BenchOptions { Losses = [0.1] }));
        Assert.False(PairedLatencyPhase.Applies(new BenchOptions { ProcessPerNode = true }));
        Assert.False(PairedLatencyPhase.Applies(new BenchOptions { LatencySamples = 0 }));
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
