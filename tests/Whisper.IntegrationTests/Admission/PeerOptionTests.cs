using Whisper.IntegrationTests.Harness;
using Whisper.IntegrationTests.Processes;
using Xunit;
using Xunit.Abstractions;
using static Whisper.IntegrationTests.Admission.Admissions;

namespace Whisper.IntegrationTests.Admission;

/// <summary>The <c>--peer</c> option of <c>whisper node</c> on its own.</summary>
[Collection(ProcessCollection.Name)]
public sealed class PeerOptionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ANodeJoinedThroughAMemberKeepsTheServerInformedSoItsNameCannotBeTakenThroughTheServer()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var port = FreePort.Udp();
            var a = cluster.LaunchNode("a", "--port", Port(port));
            await JoinedAsync(a);

            var p = cluster.LaunchNodeThroughPeer("p", "p", port);
            await JoinedAsync(p);
            var server = cluster.Server!;
            var deadline = DateTime.UtcNow + ProcessCluster.Expectation;
            while (!server.StderrTail().Any(l => l.Contains("re-learned p at", StringComparison.Ordinal)))
            {
                Assert.True(DateTime.UtcNow < deadline, "the server should learn p from p's own lease\n" + server.Describe());
                await Task.Delay(50); // polling the server's log: bounded by the deadline above
            }

            var impostor = cluster.LaunchNodeAs("p-impostor", "p");
            await DeniedAsync(impostor, "name-taken", "'p'");
        });
    }

    [Fact]
    public async Task PeerWhereNobodyListensIsDeniedUnreachableWithExitCodeTwo()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            var silentPort = FreePort.Udp();
            var node = cluster.LaunchNodeThroughPeer("lonely", "lonely", silentPort);

            await DeniedAsync(node, "unreachable", Port(silentPort));
        });
    }
}
