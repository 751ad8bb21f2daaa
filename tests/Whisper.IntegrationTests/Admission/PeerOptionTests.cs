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
    public async Task PeerTogetherWithAnExplicitServerIsAUsageErrorWithExitCodeOne()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            var node = cluster.LaunchNodeThroughPeer("both", "both", FreePort.Udp(), "--server", cluster.ServerAddress);

            Assert.Equal(1, await node.WaitForExitAsync(Wait));
            Assert.Contains(node.StderrTail(), l => l.Contains("--peer and --server are mutually exclusive", StringComparison.Ordinal));
            Assert.DoesNotContain(node.Transcript(), l => l.Is("joined") || l.Is("denied"));
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
