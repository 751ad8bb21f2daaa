using System.Globalization;
using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// Replays one catalog seed with full tracing:
/// <code>WHISPER_SIM_SEED=1234 dotnet test tests/Whisper.Simulation.Tests --filter Replay --logger "console;verbosity=detailed"</code>
/// The report (seed, scenario, violations, trace tail) is printed; the full trace, engine lines included, goes to
/// <c>WHISPER_SIM_TRACE</c> (default: whisper-sim-&lt;seed&gt;.trace.txt in the temp directory). Skipped without a seed.
/// </summary>
public sealed class SeedReplay(ITestOutputHelper output)
{
    [SkippableFact]
    public void Replay()
    {
        var text = Environment.GetEnvironmentVariable("WHISPER_SIM_SEED");
        Skip.If(string.IsNullOrWhiteSpace(text), "set WHISPER_SIM_SEED=<seed> to replay one seed with full tracing");
        var seed = ulong.Parse(text!, NumberStyles.Integer, CultureInfo.InvariantCulture);
        var path = Environment.GetEnvironmentVariable("WHISPER_SIM_TRACE") is { Length: > 0 } p
            ? p
            : Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"whisper-sim-{seed}.trace.txt"));

        SimulationResult result;
        using (var writer = new StreamWriter(path))
        {
            result = Simulation.Run(seed, ScenarioCatalog.ForSeed(seed), new SimulationOptions
            {
                EngineTracing = true,
                TraceSink = writer.WriteLine,
                ReportTraceLines = 400,
                TraceCapacity = 1_000_000,
            });
        }

        var report = result.Report() + $"full trace: {path}{Environment.NewLine}";
        output.WriteLine(report);
        Assert.True(result.Passed, report);
    }
}
