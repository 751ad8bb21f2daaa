using System.Globalization;
using Whisper.IntegrationTests.Harness;
using Xunit;

namespace Whisper.IntegrationTests.Admission;

/// <summary>Readings and bounded waits shared by the admission tests (real processes, read through their transcripts).</summary>
internal static class Admissions
{
    /// <summary>The bound of every single wait; what is measured is printed, what is asserted is the event.</summary>
    public static readonly TimeSpan Wait = ProcessCluster.Expectation;

    /// <summary>The rule every invalid-name denial quotes (kept literal here, so a changed rule shows up as a failing test).</summary>
    public const string NameRule = "a name is 1-32 characters from ASCII letters, digits, '-', '_' and '.'";

    /// <summary>Waits for the node's answer: its <c>joined</c> or <c>denied</c> line, whichever comes first.</summary>
    public static Task<TranscriptLine> OutcomeAsync(WhisperProcess node) =>
        node.WaitForAsync(l => l.Is("joined") || l.Is("denied"), Wait, $"{node.Label} is admitted or denied");

    /// <summary>Waits for <c>joined</c> and returns that line (failing with the transcript if the node was denied instead).</summary>
    public static async Task<TranscriptLine> JoinedAsync(WhisperProcess node)
    {
        var outcome = await OutcomeAsync(node);
        Assert.True(outcome.Is("joined"), $"{node.Label} should have joined\n{node.Describe()}");
        return outcome;
    }

    /// <summary>
    /// Waits for <c>denied</c>, checks its reason and that the message holds each of <paramref name="messageParts"/>,
    /// then that the process ends with exit code 2 and wrote nothing after the denial.
    /// </summary>
    public static async Task<TranscriptLine> DeniedAsync(WhisperProcess node, string reason, params string[] messageParts)
    {
        var outcome = await OutcomeAsync(node);
        Assert.True(outcome.Is("denied"), $"{node.Label} should have been denied '{reason}'\n{node.Describe()}");
        Assert.True(outcome.Str("reason") == reason, $"{node.Label} was denied '{outcome.Str("reason")}', expected '{reason}'\n{node.Describe()}");
        var message = outcome.Str("message") ?? string.Empty;
        foreach (var part in messageParts)
        {
            Assert.True(message.Contains(part, StringComparison.Ordinal), $"{node.Label}'s denial message '{message}' should contain '{part}'");
        }

        Assert.Equal(2, await node.WaitForExitAsync(Wait));
        Assert.True(node.Transcript()[^1].Is("denied"), $"{node.Label} wrote after its denial\n{node.Describe()}");
        return outcome;
    }

    /// <summary>Waits until <paramref name="node"/> reports <paramref name="name"/> (optionally one incarnation <paramref name="id"/>) with <paramref name="status"/>.</summary>
    public static Task<TranscriptLine> MemberStatusAsync(WhisperProcess node, string name, string status, string? id = null) =>
        node.WaitForAsync(
            l => l.Is("member") && l.Str("name") == name && l.Str("status") == status && (id is null || l.Str("id") == id),
            Wait,
            $"{node.Label} reports {name}{(id is null ? string.Empty : "#" + id)} {status}");

    /// <summary>Waits until <paramref name="node"/> delivered a message with <paramref name="text"/>.</summary>
    public static Task<TranscriptLine> DeliveredAsync(WhisperProcess node, string text) =>
        node.WaitForAsync(l => l.IsMessage(text), Wait, $"{node.Label} delivers '{text}'");

    /// <summary>The names in a <c>joined</c> line's member list.</summary>
    public static IReadOnlyList<string> JoinedMembers(TranscriptLine joined) =>
        joined.Json is { } j && j.TryGetProperty("members", out var members) ? [.. members.EnumerateArray().Select(m => m.GetString()!)] : [];

    /// <summary>Milliseconds between two lines by their own <c>ts</c> stamps (written by the processes; one machine, one clock).</summary>
    public static double MillisBetween(TranscriptLine earlier, TranscriptLine later) => later.Num("ts")!.Value - earlier.Num("ts")!.Value;

    /// <summary>
    /// Lines where <paramref name="node"/> lost a member (<c>down</c> or <c>left</c>), for asserting that nobody did.
    /// A passing <c>suspect</c> is not counted: a starved process on a loaded machine may cause one.
    /// </summary>
    public static IEnumerable<string> Departures(WhisperProcess node) =>
        node.Transcript().Where(l => l.Is("member") && l.Str("status") is "down" or "left").Select(l => $"{node.Label}: {l.Raw}");

    /// <summary>
    /// Starts members on known UDP ports (so newcomers can use them with --peer), waits until each has joined and
    /// every one sees all the others, and returns them with their ports.
    /// </summary>
    public static async Task<(WhisperProcess[] Members, int[] Ports)> FormGroupOnKnownPortsAsync(ProcessCluster cluster, params string[] names)
    {
        var ports = FreePort.UdpMany(names.Length);
        var members = names.Select((name, i) => cluster.LaunchNode(name, "--port", Port(ports[i]))).ToArray();
        foreach (var member in members)
        {
            await JoinedAsync(member);
        }

        await ProcessCluster.WaitForMembersAsync(members, names);
        return (members, ports);
    }

    public static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);
}
