using Whisper.IntegrationTests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Whisper.IntegrationTests.Processes;

/// <summary>Refused joins and process signals, with real whisper processes.</summary>
[Collection(ProcessCollection.Name)]
public sealed class DenialAndSignalTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = ProcessCluster.Expectation;

    [Fact]
    public async Task InvalidNameIsDeniedAsInvalidNameWithTheRuleAndExitCodeTwo()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            var node = cluster.LaunchNode("bad name!");

            var denied = await node.WaitForAsync(l => l.Is("denied"), Wait, "the node is denied");
            Assert.Equal("invalid-name", denied.Str("reason"));
            Assert.Contains("1-32 characters", denied.Str("message"), StringComparison.Ordinal);
            Assert.Equal(2, await node.WaitForExitAsync(Wait));
        });
    }

    [Fact]
    public async Task NodeWithoutAnswerFromTheServerIsDeniedAsUnreachableWithExitCodeTwo()
    {
        await using var cluster = new ProcessCluster(output); // no server on its port
        await cluster.RunAsync(async () =>
        {
            var node = cluster.LaunchNode("lonely");

            var denied = await node.WaitForAsync(l => l.Is("denied"), Wait, "the node gives up");
            Assert.Equal("unreachable", denied.Str("reason"));
            Assert.Equal(2, await node.WaitForExitAsync(Wait));
        });
    }

    [Fact]
    public async Task SecondNodeWithATakenNameIsDeniedAsNameTaken()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            await cluster.StartNodeAsync("alice");
            var impostor = WhisperProcess.Start("alice-again", "node", "--name", "alice", "--server", cluster.ServerAddress, "--json");
            await using (impostor)
            {
                var denied = await impostor.WaitForAsync(l => l.Is("denied"), Wait, "the second alice is denied");
                Assert.Equal("name-taken", denied.Str("reason"));
                Assert.Equal(2, await impostor.WaitForExitAsync(Wait));
            }
        });
    }

    [Fact]
    public async Task NodeBeyondTheServersCapacityIsDeniedAsFull()
    {
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync("--max-nodes", "1");
            await cluster.StartNodeAsync("first");
            var second = cluster.LaunchNode("second");

            var denied = await second.WaitForAsync(l => l.Is("denied"), Wait, "the second node is denied");
            Assert.Equal("full", denied.Str("reason"));
            Assert.Equal(2, await second.WaitForExitAsync(Wait));
        });
    }

    [SkippableFact]
    public async Task ServerStopsOnSigtermWithExitCodeZero()
    {
        Skip.If(OperatingSystem.IsWindows(), "SIGTERM is a Unix signal");
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            cluster.Server!.Terminate();

            Assert.Equal(0, await cluster.Server.WaitForExitAsync(Wait));
            Assert.True(cluster.Server.Transcript()[^1].Is("stopped"), cluster.Server.Describe());
        });
    }

    [SkippableFact]
    public async Task NodeLeavesGracefullyOnSigterm()
    {
        Skip.If(OperatingSystem.IsWindows(), "SIGTERM is a Unix signal");
        await using var cluster = new ProcessCluster(output);
        await cluster.RunAsync(async () =>
        {
            await cluster.StartServerAsync();
            var stayer = await cluster.StartNodeAsync("stayer");
            var quitter = await cluster.StartNodeAsync("quitter");
            await cluster.WaitForFullMembershipAsync();

            quitter.Terminate();

            Assert.Equal(0, await quitter.WaitForExitAsync(Wait));
            Assert.True(quitter.Transcript()[^1].Is("left"), quitter.Describe());
            await stayer.WaitForAsync(l => l.Is("member") && l.Str("name") == "quitter" && l.Str("status") == "left", Wait, "stayer sees quitter left");
        });
    }
}
