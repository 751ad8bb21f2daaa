using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Whisper.IntegrationTests.Harness;
using Whisper.IntegrationTests.Processes;
using Whisper.Protocol;
using Whisper.Protocol.Wire;
using Xunit;
using Xunit.Abstractions;
using static Whisper.IntegrationTests.Admission.Admissions;

namespace Whisper.IntegrationTests.Admission;

/// <summary>Names: unique in the group ignoring case, and following the rule, whoever judges them.</summary>
[Collection(ProcessCollection.Name)]
public sealed class NameTests(ITestOutputHelper output)
{
    private static readonly string[] InvalidNames = ["bad name!", new string('x', 300), "", "../etc"];

    [Fact]
    public async Task TakenNameIsDeniedNameTakenIgnoringCaseAndTheHolderIsUndisturbed()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var alice = cluster.LaunchNode("alice");
            await JoinedAsync(alice);

            var same = cluster.LaunchNodeAs("alice-again", "alice");
            var shouting = cluster.LaunchNodeAs("ALICE", "ALICE");
            await DeniedAsync(same, "name-taken", "'alice'", "already taken");
            await DeniedAsync(shouting, "name-taken", "already taken");

            Assert.False(alice.HasExited);
            Assert.DoesNotContain(alice.Transcript(), l => l.Is("member"));
        });
    }

    [Fact]
    public async Task InvalidNamesAreDeniedInvalidNameWithTheRuleAndExitCodeTwo()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var nodes = InvalidNames.Select((name, i) => cluster.LaunchNodeAs($"invalid-{i}", name)).ToArray();

            await DeniedAsync(nodes[0], "invalid-name", "contains ' '", NameRule);
            await DeniedAsync(nodes[1], "invalid-name", "300 characters", NameRule);
            await DeniedAsync(nodes[2], "invalid-name", "empty", NameRule);
            await DeniedAsync(nodes[3], "invalid-name", "contains '/'", NameRule);
        });
    }

    /// <summary>
    /// The CLI refuses an invalid name before sending anything, so this test speaks the wire protocol itself:
    /// the server, and a member admitting without the server, deny such requests with the rule too.
    /// </summary>
    [Fact]
    public async Task ServerAndMembersThemselvesDenyInvalidNamesOnTheWireWithTheRule()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var memberPort = FreePort.Udp();
            var member = cluster.LaunchNode("member", "--port", Port(memberPort));
            await JoinedAsync(member);
            string[] names = ["bad name!", new string('x', 255), "", "../etc"];

            foreach (var (target, label) in new[] { (cluster.Port, "server"), (memberPort, "member") })
            {
                foreach (var name in names)
                {
                    var deny = await RawJoinAsync(new IPEndPoint(IPAddress.Loopback, target), name);
                    Assert.True(deny is { Reason: DenyReason.InvalidName }, $"the {label} answered '{name[..Math.Min(name.Length, 20)]}' with {deny}");
                    Assert.Contains(MemberName.Rule, deny.Message, StringComparison.Ordinal);
                }
            }

            Assert.DoesNotContain(member.Transcript(), l => l.Is("member"));
        });
    }

    [Fact]
    public async Task TwoProcessesClaimingOneNameAtTheSameInstantGetOneJoinAndOneNameTaken()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var first = cluster.LaunchNodeAs("twin-1", "twin");
            var second = cluster.LaunchNodeAs("twin-2", "twin");

            var outcomes = await Task.WhenAll(OutcomeAsync(first), OutcomeAsync(second));

            Assert.True(outcomes.Count(o => o.Is("joined")) == 1, $"expected exactly one joined: {outcomes[0].Raw} / {outcomes[1].Raw}");
            var loser = outcomes[0].Is("joined") ? second : first;
            await DeniedAsync(loser, "name-taken", "'twin'");
        });
    }

    /// <summary>Sends a raw JoinRequest every 300 ms (as a node does) until a JoinDeny addressed to it arrives; bounded.</summary>
    private static async Task<JoinDenyFrame?> RawJoinAsync(IPEndPoint contact, string name)
    {
        using var socket = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var id = new MemberId(BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) | 1);
        var request = WireCodec.Encode(new DatagramHeader(id, MemberId.None), new JoinRequestFrame(name));
        var deadline = Stopwatch.GetTimestamp() + (long)(Wait.TotalSeconds * Stopwatch.Frequency);
        var frames = new List<Frame>();
        while (Stopwatch.GetTimestamp() < deadline)
        {
            await socket.SendAsync(request, contact);
            using var attempt = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            try
            {
                while (true)
                {
                    var received = await socket.ReceiveAsync(attempt.Token);
                    frames.Clear();
                    if (WireCodec.TryDecode(received.Buffer, out var header, frames) == DecodeStatus.Ok && header.To == id)
                    {
                        if (frames.OfType<JoinDenyFrame>().FirstOrDefault() is { } deny)
                        {
                            return deny;
                        }

                        if (frames.Exists(f => f is JoinAcceptFrame))
                        {
                            return null;
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // no answer yet (the server may still be re-learning): ask again
            }
            catch (SocketException)
            {
                // an ICMP error from an earlier send: ask again
            }
        }

        throw new TimeoutException($"no answer from {contact} to a join as '{name}' within {Wait.TotalSeconds} s");
    }
}
