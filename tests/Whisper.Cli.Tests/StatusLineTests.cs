using System.Net;
using Whisper.Cli.Chat;
using Whisper.Cli.Commands;
using Whisper.Net;

namespace Whisper.Cli.Tests;

public sealed class StatusLineTests
{
    private static readonly IPEndPoint Server = new(IPAddress.Loopback, 7700);

    [Fact]
    public void ShowsServerMembersWaitingMessagesAndRetransmissions()
    {
        var stats = new WhisperNodeStats { HeldBack = 3, ChunksRetransmitted = 17 };
        Assert.Equal(
            "server: 127.0.0.1:7700 reachable | members: 2 | waiting: 3 | retransmissions: 17 | /quit",
            StatusLine.Format(Server, ServerState.Reachable, 2, stats));
    }

    [Fact]
    public void SaysWhenTheServerIsUnreachableHostedHereOrAbsent()
    {
        Assert.StartsWith("server: 127.0.0.1:7700 UNREACHABLE |", StatusLine.Format(Server, ServerState.Unreachable, 1, null), StringComparison.Ordinal);
        Assert.StartsWith("server: hosted here (127.0.0.1:7700) |", StatusLine.Format(Server, ServerState.HostedHere, 1, null), StringComparison.Ordinal);
        Assert.StartsWith("server: none (joined through a peer) |", StatusLine.Format(null, ServerState.None, 1, null), StringComparison.Ordinal);
    }

    [Fact]
    public void LeavesTheCountersOutUntilTheFirstStatsArrive()
    {
        Assert.Equal("server: 127.0.0.1:7700 checking | members: 1 | /quit", StatusLine.Format(Server, ServerState.Checking, 1, null));
    }

    [Fact]
    public void DefaultDiscoveryAddressIsLoopback7700UnlessTheEnvironmentMovesThePort()
    {
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 7700), ChatCommand.DefaultServer(null));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 7700), ChatCommand.DefaultServer(" "));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 17001), ChatCommand.DefaultServer("17001"));
        Assert.Null(ChatCommand.DefaultServer("0"));
        Assert.Null(ChatCommand.DefaultServer("70000"));
        Assert.Null(ChatCommand.DefaultServer("-1"));
        Assert.Null(ChatCommand.DefaultServer("seven"));
    }
}

public sealed class ServerProbeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(500);

    [Fact]
    public async Task AnAddressWhereASocketListensIsReachable()
    {
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.True(await ServerProbe.IsReachableAsync((IPEndPoint)listener.LocalEndPoint!, Timeout, CancellationToken.None));
    }

    [Fact]
    public async Task ARunningDiscoveryServerIsReachableAndTheProbeAdmitsNobody()
    {
        await using var server = await Whisper.Discovery.DiscoveryServer.StartAsync(
            new Whisper.Discovery.DiscoveryServerOptions { Bind = new IPEndPoint(IPAddress.Loopback, 0) });
        Assert.True(await ServerProbe.IsReachableAsync(server.LocalEndpoint, Timeout, CancellationToken.None));
        Assert.Empty(server.Members);
    }

    [Fact]
    public async Task AClosedLoopbackPortIsUnreachable()
    {
        IPEndPoint closed;
        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp))
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            closed = (IPEndPoint)socket.LocalEndPoint!;
        }

        Assert.False(await ServerProbe.IsReachableAsync(closed, Timeout, CancellationToken.None));
    }
}
