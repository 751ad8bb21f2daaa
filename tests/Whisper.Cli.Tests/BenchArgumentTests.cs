using System.Diagnostics;

namespace Whisper.Cli.Tests;

/// <summary>The real <c>whisper bench</c> process refuses a bad option with exit code 2, one sentence on stderr, and no table.</summary>
public sealed class BenchArgumentTests
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);

    private static string Whisper => Path.Combine(AppContext.BaseDirectory, "whisper.dll");

    [Theory]
    [InlineData("--scenarios", "udp-raw,whispr", "whisper bench: --scenarios: unknown scenario 'whispr' (known: udp-raw, litenetlib, whisper, idle).")]
    [InlineData("--loss", "0,abc", "whisper bench: --loss must be comma-separated probabilities such as 0,0.1; 'abc' is not a number.")]
    [InlineData("--nodes", "11", "whisper bench: --nodes must be a whole number from 2 to 10 (a group holds at most 10 members), not 11.")]
    [InlineData("--duration", "NaN", "whisper bench: --duration must be a number of seconds up to 3600, not NaN.")]
    public async Task BadOptionExitsWithCodeTwoBeforeMeasuringAnything(string option, string value, string expected)
    {
        Assert.True(File.Exists(Whisper), $"whisper.dll not found next to the tests at {Whisper}");
        using var process = Process.Start(new ProcessStartInfo("dotnet", ["exec", Whisper, "bench", option, value])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(ProcessTimeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"whisper bench {option} {value} did not end within {ProcessTimeout.TotalSeconds} s");
        }

        Assert.Equal(2, process.ExitCode);
        Assert.Equal(expected, (await error).Trim());
        Assert.Empty(await output);
    }
}
