using System.Globalization;
using Whisper.IntegrationTests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Whisper.IntegrationTests.Processes;

/// <summary>
/// Opt-in soak (docs/testing.md): ten real node processes that each drop 20% of the datagrams they receive stay
/// together for <c>WHISPER_SOAK_MINUTES</c> (default 10) with a trickle of broadcasts: no member is ever reported
/// down, none is evicted. Runs only with <c>WHISPER_SOAK=1</c>; the simulator checks the same in virtual time in every run.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class FalseAlarmSoakTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task TenProcessesDroppingTwentyPercentReportNoFalseDownForTenMinutes()
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("WHISPER_SOAK") == "1", "soak: set WHISPER_SOAK=1 (and WHISPER_SOAK_MINUTES, default 10) to run it");
        var minutes = double.TryParse(Environment.GetEnvironmentVariable("WHISPER_SOAK_MINUTES"), NumberStyles.Float, CultureInfo.InvariantCulture, out var m) && m > 0 ? m : 10;
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var nodes = Enumerable.Range(0, 10).Select(i => cluster.LaunchNode($"n{i}", "--drop-rate", "0.2", "--fault-seed", (i + 1).ToString(CultureInfo.InvariantCulture))).ToArray();
            foreach (var node in nodes)
            {
                await node.WaitForAsync(l => l.Is("joined"), TimeSpan.FromSeconds(60), $"{node.Label} joins");
            }

            await cluster.WaitForFullMembershipAsync(TimeSpan.FromSeconds(60));
            var end = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(minutes);
            var sent = 0;
            for (var round = 0; DateTimeOffset.UtcNow < end && round < 100_000; round++)
            {
                nodes[round % nodes.Length].Broadcast($"soak-{round}");
                sent++;
                await Task.Delay(TimeSpan.FromSeconds(1));
            }

            var last = $"soak-{sent - 1}";
            foreach (var node in nodes)
            {
                await node.WaitForAsync(l => l.IsMessage(last), TimeSpan.FromSeconds(60), $"{node.Label} delivers the last soak message");
            }

            var downs = nodes.SelectMany(n => n.Transcript().Where(l => l.Is("member") && l.Str("status") is "down" or "left").Select(l => $"{n.Label}: {l.Raw}")).ToList();
            var suspects = nodes.Sum(n => n.Transcript().Count(l => l.Is("member") && l.Str("status") == "suspect"));
            var evictions = nodes.Sum(n => n.Transcript().Count(l => l.Is("evicted")));
            var deliveries = nodes.Sum(n => n.Transcript().Count(l => l.IsBroadcast));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{minutes:0.#} min, 10 processes dropping 20% of incoming datagrams: {sent} broadcasts, {deliveries} deliveries, {downs.Count} down reports, {suspects} suspect reports, {evictions} evictions"));
            Assert.Empty(downs);
            Assert.Equal(0, evictions);
            Assert.All(nodes, n => Assert.Equal(sent, n.Transcript().Count(l => l.IsBroadcast && l.Str("text")!.StartsWith("soak-", StringComparison.Ordinal))));
        });
    }
}
