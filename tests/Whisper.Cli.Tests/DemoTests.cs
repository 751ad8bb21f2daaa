using System.Diagnostics;
using Whisper.Cli.Demo;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Cli.Tests;

/// <summary>
/// <c>whisper demo</c>: the verifier proves it catches each kind of violation on crafted delivery logs, and the real
/// process passes its checks at a short duration (also under 20% loss) and refuses a bad argument with exit code 2.
/// </summary>
public sealed class DemoTests
{
    private static readonly MemberId A = new(0xAAAA_0000_0000_0001); // shown as a#aaaa
    private static readonly MemberId B = new(0xBBBB_0000_0000_0002);
    private static readonly MemberId C = new(0xCCCC_0000_0000_0003);
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);

    private static string Whisper => Path.Combine(AppContext.BaseDirectory, "whisper.dll");

    // A says "q" (a1), B answers after delivering it (b1, deps a1), A sends a second broadcast (a2) and a private to C (p1, p2).
    private static readonly DemoSend A1 = new(0, Broadcast(A, 1), "a", null, At(1), "question");
    private static readonly DemoSend B1 = new(1, Broadcast(B, 1), "b", null, At(2), "answer", A1.Id);
    private static readonly DemoSend A2 = new(2, Broadcast(A, 2), "a", null, At(3), "second");
    private static readonly DemoSend P1 = new(3, Private(A, C, 1), "a", "c", At(4), "psst 1");
    private static readonly DemoSend P2 = new(4, Private(A, C, 2), "a", "c", At(5), "psst 2");

    [Fact]
    public void VerifierPassesACorrectLog()
    {
        var checks = DemoVerifier.Verify(Log(CorrectDeliveries()));

        Assert.All(checks, c => Assert.True(c.Passed, $"{c.Name}: {c.Detail}"));
    }

    [Fact]
    public void VerifierCatchesABroadcastDeliveredTwice()
    {
        var deliveries = CorrectDeliveries();
        deliveries.Add(Delivered(C, A2));

        var failed = Failed(DemoVerifier.Verify(Log(deliveries)));

        var check = Assert.Single(failed);
        Assert.Equal("Broadcasts delivered exactly once", check.Name);
        Assert.Contains("delivered 2 times to c#cccc", check.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void VerifierCatchesABroadcastMissingAtALiveMember()
    {
        var deliveries = CorrectDeliveries();
        deliveries.RemoveAll(d => d.Receiver == B && d.Id == A2.Id);

        var failed = Failed(DemoVerifier.Verify(Log(deliveries)));

        var check = Assert.Single(failed);
        Assert.Equal("Broadcasts delivered exactly once", check.Name);
        Assert.Contains("a's broadcast #2 never reached b#bbbb", check.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void VerifierDoesNotRequireDeliveryAtAMemberThatCrashedOrJoinedAfterTheSend()
    {
        var deliveries = CorrectDeliveries();
        deliveries.RemoveAll(d => d.Receiver == B && d.Id == A2.Id);
        var incarnations = new[] { Member("a", A), Member("b", B) with { CrashedAt = At(2.5) }, Member("c", C) };

        var late = new DemoIncarnation("d", new MemberId(0xDDDD_0000_0000_0004), At(10));
        var checks = DemoVerifier.Verify(new DemoLog([.. incarnations, late], [A1, B1, A2, P1, P2], deliveries));

        Assert.All(checks, c => Assert.True(c.Passed, $"{c.Name}: {c.Detail}"));
    }

    [Fact]
    public void VerifierCatchesAnAnswerDeliveredBeforeTheQuestionItDependsOn()
    {
        var deliveries = CorrectDeliveries();
        var atC = deliveries.Where(d => d.Receiver == C).ToList();
        deliveries.RemoveAll(d => d.Receiver == C);
        deliveries.AddRange([atC.Single(d => d.Id == B1.Id), atC.Single(d => d.Id == A1.Id), .. atC.Where(d => d.Id != A1.Id && d.Id != B1.Id)]);

        var failed = Failed(DemoVerifier.Verify(Log(deliveries)));

        Assert.Equal(["Causal order (vector clocks)", "Reply chains: answers after what they answer"], failed.Select(c => c.Name));
        Assert.Contains("c#cccc delivered b's broadcast #1 (live) before a's broadcast #0 (live)", failed[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void VerifierCatchesAnAnswerShownAsHistoryBeforeItsLiveQuestion()
    {
        // History carries no dependency clock, so only the script's reply knowledge sees this (the open finding in docs/demo.md).
        var deliveries = CorrectDeliveries();
        deliveries.RemoveAll(d => d.Receiver == C && (d.Id == A1.Id || d.Id == B1.Id));
        deliveries.InsertRange(0, [Delivered(C, B1, VectorClock.Empty) with { Arrival = Arrival.History }, Delivered(C, A1)]);

        var failed = Failed(DemoVerifier.Verify(Log(deliveries)));

        var check = Assert.Single(failed);
        Assert.Equal("Reply chains: answers after what they answer", check.Name);
        Assert.Contains("c#cccc delivered b's broadcast #1 (history) before a's broadcast #0 (live)", check.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void VerifierCatchesACausalViolationFromTheVectorClockAlone()
    {
        // B's broadcast depends on A's (deps a:1) without the script knowing it as a reply.
        var b1 = B1 with { ReplyTo = null };
        var deliveries = new List<DemoDelivery>
        {
            Delivered(A, A1), Delivered(A, b1),
            Delivered(B, A1), Delivered(B, b1),
            Delivered(C, b1), Delivered(C, A1),
        };

        var failed = Failed(DemoVerifier.Verify(new DemoLog([Member("a", A), Member("b", B), Member("c", C)], [A1, b1], deliveries)));

        Assert.Equal("Causal order (vector clocks)", Assert.Single(failed).Name);
    }

    [Fact]
    public void VerifierCatchesBroadcastsOfOneSenderDeliveredOutOfOrder()
    {
        var a2 = A2 with { }; // no dependency between a1 and a2 in its clock: only FIFO catches the swap
        var deliveries = new List<DemoDelivery>
        {
            Delivered(A, A1), Delivered(A, a2),
            Delivered(B, a2, VectorClock.Empty), Delivered(B, A1, VectorClock.Empty),
            Delivered(C, A1), Delivered(C, a2),
        };

        var failed = Failed(DemoVerifier.Verify(new DemoLog([Member("a", A), Member("b", B), Member("c", C)], [A1, a2], deliveries)));

        var check = Assert.Single(failed);
        Assert.Equal("FIFO per sender (broadcasts)", check.Name);
        Assert.Contains("b#bbbb delivered a's broadcast #0 after a's broadcast #2", check.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void VerifierCatchesPrivateMessagesOfOnePairDeliveredOutOfOrder()
    {
        var deliveries = CorrectDeliveries();
        var p1 = deliveries.Single(d => d.Id == P1.Id);
        deliveries.Remove(p1);
        deliveries.Add(p1 with { Deps = VectorClock.Empty });

        var failed = Failed(DemoVerifier.Verify(Log(deliveries)));

        Assert.Equal("FIFO per pair (private messages)", Assert.Single(failed).Name);
    }

    [Fact]
    public void VerifierCatchesAPrivateMessageDeliveredTwiceOrToSomeoneElse()
    {
        var deliveries = CorrectDeliveries();
        deliveries.Add(Delivered(C, P2));
        deliveries.Add(Delivered(B, P1));

        var failed = Failed(DemoVerifier.Verify(Log(deliveries)));

        var check = Assert.Single(failed);
        Assert.Equal("Private messages exactly once, recipient only", check.Name);
        Assert.Contains("delivered to b#bbbb, who is not its recipient", check.Detail, StringComparison.Ordinal);
        Assert.Contains("delivered 2 times to c#cccc", check.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void VerifierRequiresAllOrNoneOfABroadcastFromACrashedSender()
    {
        // B crashed after sending b1 (which depends on nothing here); a got it, c never did.
        var b1 = B1 with { ReplyTo = null };
        var deliveries = new List<DemoDelivery>
        {
            Delivered(A, A1), Delivered(A, b1, VectorClock.Empty),
            Delivered(B, A1), Delivered(B, b1, VectorClock.Empty),
            Delivered(C, A1),
        };
        var crashedB = new[] { Member("a", A), Member("b", B) with { CrashedAt = At(2.5) }, Member("c", C) };

        var failed = Failed(DemoVerifier.Verify(new DemoLog(crashedB, [A1, b1], deliveries)));

        var check = Assert.Single(failed);
        Assert.Equal("Broadcasts delivered exactly once", check.Name);
        Assert.Contains("b's broadcast #1 (its sender crashed) reached a#aaaa but not c#cccc", check.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("11", null, null, null, "--nodes must be a whole number from 2 to 10")]
    [InlineData("1", null, null, null, "--nodes must be a whole number from 2 to 10")]
    [InlineData(null, "0.95", null, null, "--loss must be a fraction of datagrams from 0 to 0.9")]
    [InlineData(null, "lots", null, null, "--loss must be a fraction")]
    [InlineData(null, null, "x", null, "--seed must be a whole number")]
    [InlineData(null, null, null, "1", "--duration must be a number of seconds from 3 to 300")]
    public void SettingsRefuseOutOfRangeValuesWithOneSentence(string? nodes, string? loss, string? seed, string? duration, string expected)
    {
        Assert.Null(DemoSettings.TryParse(nodes, loss, seed, duration, out var error));
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void DemoProcessPassesEveryCheckWithFourNodes()
    {
        var (exit, output, error) = RunDemo("--nodes", "4", "--duration", "5", "--seed", "7");

        Assert.True(exit == 0, $"exit code {exit}\n{output}\n{error}");
        Assert.Contains("All 11 checks passed.", output, StringComparison.Ordinal);
        Assert.Contains("Broadcasts delivered exactly once", output, StringComparison.Ordinal);
        Assert.Contains("Seed 7", output, StringComparison.Ordinal);
        Assert.DoesNotContain("FAIL", output, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', output); // plain text when redirected
    }

    [Fact]
    public void DemoProcessPassesEveryCheckUnderTwentyPercentLoss()
    {
        var (exit, output, error) = RunDemo("--nodes", "4", "--duration", "5", "--seed", "7", "--loss", "0.2");

        Assert.True(exit == 0, $"exit code {exit}\n{output}\n{error}");
        Assert.Contains("All 11 checks passed.", output, StringComparison.Ordinal);
        Assert.Contains("loses 20% of datagrams", output, StringComparison.Ordinal);
    }

    [Fact]
    public void DemoProcessRefusesElevenNodesWithExitCodeTwo()
    {
        var (exit, output, error) = RunDemo("--nodes", "11");

        Assert.Equal(2, exit);
        Assert.Contains("--nodes must be a whole number from 2 to 10", error, StringComparison.Ordinal);
        Assert.Empty(output);
    }

    private static (int Exit, string Output, string Error) RunDemo(params string[] args)
    {
        Assert.True(File.Exists(Whisper), $"whisper.dll not found next to the tests at {Whisper}");
        using var process = Process.Start(new ProcessStartInfo("dotnet", ["exec", Whisper, "demo", .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(ProcessTimeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"whisper demo {string.Join(' ', args)} did not end within {ProcessTimeout.TotalSeconds} s");
        }

        process.WaitForExit();
        return (process.ExitCode, output.Result, error.Result);
    }

    private static List<DemoCheck> Failed(IReadOnlyList<DemoCheck> checks) => [.. checks.Where(c => !c.Passed)];

    private static DemoLog Log(List<DemoDelivery> deliveries) =>
        new([Member("a", A), Member("b", B), Member("c", C)], [A1, B1, A2, P1, P2], deliveries);

    /// <summary>Every member delivers a1, b1, a2 in causal order; c also gets p1, p2 in order.</summary>
    private static List<DemoDelivery> CorrectDeliveries()
    {
        var list = new List<DemoDelivery>();
        foreach (var r in new[] { A, B, C })
        {
            list.Add(Delivered(r, A1));
            list.Add(Delivered(r, B1));
            list.Add(Delivered(r, A2));
        }

        list.Add(Delivered(C, P1));
        list.Add(Delivered(C, P2));
        return list;
    }

    /// <summary>The dependency clock each crafted message carries: what its sender had delivered when sending.</summary>
    private static VectorClock DepsOf(DemoSend s) => s.Index switch
    {
        0 => VectorClock.Empty,
        1 => VectorClock.From([new ClockEntry(A, 1)]),
        2 => VectorClock.From([new ClockEntry(A, 1), new ClockEntry(B, 1)]),
        _ => VectorClock.From([new ClockEntry(A, 2), new ClockEntry(B, 1)]),
    };

    private static DemoDelivery Delivered(MemberId receiver, DemoSend s, VectorClock? deps = null) =>
        new(receiver, s.Id, deps ?? DepsOf(s), Arrival.Live, s.SentAt + TimeSpan.FromMilliseconds(5));

    private static DemoIncarnation Member(string name, MemberId id) => new(name, id, TimeSpan.Zero);

    private static MessageId Broadcast(MemberId origin, ulong seq) => new(MessageKind.Broadcast, origin, MemberId.None, seq);

    private static MessageId Private(MemberId origin, MemberId to, ulong seq) => new(MessageKind.Private, origin, to, seq);

    private static TimeSpan At(double seconds) => TimeSpan.FromSeconds(seconds);
}
