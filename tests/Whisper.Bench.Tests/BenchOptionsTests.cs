using Whisper.Bench;
using Xunit;

namespace Whisper.Bench.Tests;

/// <summary>
/// <c>whisper bench</c> options out of range are refused before anything runs, with one sentence that names the
/// option; the defaults and the edges of each range are accepted.
/// </summary>
public sealed class BenchOptionsTests
{
    [Fact]
    public void DefaultOptionsHaveNoProblem() => Assert.Null(new BenchOptions().Problem());

    [Fact]
    public void EdgesOfEveryRangeAreAccepted()
    {
        var options = new BenchOptions
        {
            Nodes = 2,
            Size = Payload.HeaderBytes,
            Duration = BenchOptions.MaxPhase,
            Idle = TimeSpan.Zero,
            LatencySamples = 0,
            Losses = [0, 0.999],
            Scenarios = [.. BenchOptions.KnownScenarios],
        };

        Assert.Null(options.Problem());
        Assert.Null((options with { Nodes = BenchOptions.MaxNodes, Size = BenchOptions.MaxSize }).Problem());
    }

    public static TheoryData<string, BenchOptions, string> OutOfRange => new()
    {
        { "eleven nodes", new BenchOptions { Nodes = 11 }, "--nodes must be a whole number from 2 to 10 (a group holds at most 10 members), not 11." },
        { "one node", new BenchOptions { Nodes = 1 }, "--nodes must be a whole number from 2 to 10" },
        { "message shorter than its header", new BenchOptions { Size = 9 }, "--size must be from 10 bytes" },
        { "message beyond one datagram", new BenchOptions { Size = 65_000 }, "to 60000, not 65000." },
        { "no duration", new BenchOptions { Duration = TimeSpan.Zero }, "--duration must be more than 0" },
        { "duration beyond an hour", new BenchOptions { Duration = TimeSpan.FromHours(2) }, "--duration must be more than 0 and at most 3600 seconds, not 7200." },
        { "negative idle", new BenchOptions { Idle = TimeSpan.FromSeconds(-1) }, "--idle must be from 0 (skip) to 3600 seconds, not -1." },
        { "negative latency samples", new BenchOptions { LatencySamples = -1 }, "--latency-samples must be 0 (skip the latency phase) or more, not -1." },
        { "no loss", new BenchOptions { Losses = [] }, "--loss needs at least one probability" },
        { "certain loss", new BenchOptions { Losses = [0, 1] }, "--loss probabilities must be from 0 up to (not including) 1, not 1." },
        { "NaN loss", new BenchOptions { Losses = [double.NaN] }, "not NaN." },
        { "negative loss", new BenchOptions { Losses = [-0.1] }, "not -0.1." },
        { "no scenario", new BenchOptions { Scenarios = [] }, "--scenarios needs at least one of udp-raw, litenetlib, whisper, idle." },
        { "misspelt scenario", new BenchOptions { Scenarios = ["whisper", "whispr"] }, "--scenarios: unknown scenario 'whispr'" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void AnOptionOutOfRangeIsNamedInOneSentence(string why, BenchOptions options, string expected)
    {
        var problem = options.Problem();

        Assert.True(problem is not null, $"{why}: accepted");
        Assert.Contains(expected, problem, StringComparison.Ordinal);
        Assert.EndsWith(".", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void LossListParsesInvariantNumbersAndSkipsEmptyEntries()
    {
        var losses = BenchOptions.ParseLosses("0, 0.1,,0.25", out var error);

        Assert.Null(error);
        Assert.Equal([0, 0.1, 0.25], losses);
    }

    [Fact]
    public void LossListNamesTheEntryThatIsNotANumber()
    {
        var losses = BenchOptions.ParseLosses("0,0,1", out var error);
        Assert.Null(error); // "0,0,1" is three numbers; the range check refuses the 1
        Assert.Equal([0, 0, 1], losses);

        Assert.Null(BenchOptions.ParseLosses("0,ten%", out error));
        Assert.Equal("--loss must be comma-separated probabilities such as 0,0.1; 'ten%' is not a number.", error);
    }
}
