using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Whisper.Discovery;
using Whisper.Net;

namespace Whisper.IntegrationTests.InProcess;

/// <summary>A discovery server and WhisperNodes in this process, on loopback UDP with real time.</summary>
public sealed class InProcessGroup : IAsyncDisposable
{
    public static readonly TimeSpan Expectation = TimeSpan.FromSeconds(30);

    private readonly List<EventRecorder> _nodes = [];

    private InProcessGroup(DiscoveryServer server) => Server = server;

    public DiscoveryServer Server { get; }

    public IReadOnlyList<EventRecorder> Nodes => _nodes;

    public static async Task<InProcessGroup> StartAsync(int maxMembers = 10)
    {
        var server = await DiscoveryServer.StartAsync(
            new DiscoveryServerOptions { Bind = new IPEndPoint(IPAddress.Loopback, 0), Engine = new DiscoveryOptions { MaxMembers = maxMembers } },
            NullLogger<DiscoveryServer>.Instance,
            TimeProvider.System);
        return new InProcessGroup(server);
    }

    public WhisperNodeOptions Options(string name) => new() { Name = name, Server = Server.LocalEndpoint };

    public async Task<EventRecorder> JoinAsync(
        string name, Func<WhisperNodeOptions, WhisperNodeOptions>? configure = null, Func<IPEndPoint, IDatagramTransport>? transport = null)
    {
        var options = configure is null ? Options(name) : configure(Options(name));
        var node = transport is null
            ? await WhisperNode.JoinAsync(options)
            : await WhisperNode.JoinAsync(options, transport(options.Bind));
        var recorder = new EventRecorder(node);
        _nodes.Add(recorder);
        return recorder;
    }

    /// <summary>Joins the named nodes one by one and waits until each sees all of them.</summary>
    public async Task<EventRecorder[]> JoinAllAsync(params string[] names)
    {
        var nodes = new List<EventRecorder>();
        foreach (var name in names)
        {
            nodes.Add(await JoinAsync(name));
        }

        foreach (var node in nodes)
        {
            await WaitUntilSeesAsync(node, names);
        }

        return [.. nodes];
    }

    /// <summary>Waits (bounded) until <paramref name="node"/> sees every one of <paramref name="names"/> up.</summary>
    public static async Task WaitUntilSeesAsync(EventRecorder node, IReadOnlyCollection<string> names)
    {
        var missing = names.Except(node.Node.InitialMembers.Select(m => m.Name)).ToList();
        foreach (var name in missing)
        {
            await node.WaitForAsync<MemberChanged>(c => c.Name == name && c.Status == Protocol.Engine.MemberStatus.Up, Expectation, $"sees {name} up");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_nodes.Select(n => n.Node.DisposeAsync().AsTask()));
        await Server.DisposeAsync();
    }
}
