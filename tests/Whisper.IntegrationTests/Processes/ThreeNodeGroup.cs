using Whisper.IntegrationTests.Harness;
using Xunit;

namespace Whisper.IntegrationTests.Processes;

/// <summary>A server and three node processes (alice, bob, carol) that all see each other, shared by one test class.</summary>
public sealed class ThreeNodeGroup : IAsyncLifetime
{
    public ProcessCluster Cluster { get; } = new(output: null, name: "three-nodes");

    public WhisperProcess Alice => Cluster["alice"];

    public WhisperProcess Bob => Cluster["bob"];

    public WhisperProcess Carol => Cluster["carol"];

    public async Task InitializeAsync()
    {
        await Cluster.StartServerAsync();
        await Cluster.StartNodeAsync("alice");
        await Cluster.StartNodeAsync("bob");
        await Cluster.StartNodeAsync("carol");
        await Cluster.WaitForFullMembershipAsync();
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}
