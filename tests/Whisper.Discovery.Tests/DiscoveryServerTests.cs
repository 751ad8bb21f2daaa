using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Whisper.Protocol;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Discovery.Tests;

/// <summary>The real UDP host, on 127.0.0.1 with ephemeral ports only. Every wait is bounded.</summary>
public sealed class DiscoveryServerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    private static DiscoveryServerOptions Loopback(DiscoveryOptions? engine = null) => new()
    {
        Bind = new IPEndPoint(IPAddress.Loopback, 0),
        Engine = (engine ?? new DiscoveryOptions()) with { RelearnWindow = TimeSpan.Zero },
    };

    private static UdpClient Client() => new(new IPEndPoint(IPAddress.Loopback, 0));

    private static async Task<Frame> JoinAsync(UdpClient client, IPEndPoint server, ulong id, string name)
    {
        var request = WireCodec.Encode(new DatagramHeader(new MemberId(id), MemberId.None), new JoinRequestFrame(name));
        await client.SendAsync(request, server);
        using var cts = new CancellationTokenSource(Patience);
        var received = await client.ReceiveAsync(cts.Token);
        Assert.Equal(server, received.RemoteEndPoint);
        var frames = new List<Frame>();
        Assert.Equal(DecodeStatus.Ok, WireCodec.TryDecode(received.Buffer, out var header, frames));
        Assert.Equal(new MemberId(id), header.To);
        return Assert.Single(frames);
    }

    private static async Task<bool> EventuallyAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (condition())
            {
                return true;
            }

            await Task.Delay(10);
        }

        return condition();
    }

    [Fact]
    public async Task AnswersAJoinRequestOverUdpOnAnEphemeralPort()
    {
        var log = new ListLogger();
        await using var server = await DiscoveryServer.StartAsync(Loopback(), log);
        using var client = Client();
        var clientEndpoint = (IPEndPoint)client.Client.LocalEndPoint!;

        var accept = Assert.IsType<JoinAcceptFrame>(await JoinAsync(client, server.LocalEndpoint, 11, "alice"));

        Assert.NotEqual(0, server.LocalEndpoint.Port);
        Assert.Equal(IPAddress.Loopback, server.LocalEndpoint.Address);
        Assert.Equal(clientEndpoint, accept.ObservedEndpoint);
        Assert.Empty(accept.Members);
        Assert.Equal([new MemberRecord(new MemberId(11), "alice", clientEndpoint)], server.Members);
        Assert.True(await EventuallyAsync(() => log.Lines.Contains($"admitted alice (1/10) from {clientEndpoint} as {new MemberId(11)}")),
            string.Join('\n', log.Lines));
    }

    [Fact]
    public async Task DeniesOverUdpWithTheReasonAndItsMessage()
    {
        await using var server = await DiscoveryServer.StartAsync(Loopback());
        using var first = Client();
        using var second = Client();
        await JoinAsync(first, server.LocalEndpoint, 1, "bob");
        await second.SendAsync(WireCodec.Encode(new DatagramHeader(new MemberId(2), MemberId.None), new JoinRequestFrame("bob")), server.LocalEndpoint);

        // The server asks the holder to prove it is alive; the holder answers like a member does.
        using (var cts = new CancellationTokenSource(Patience))
        {
            var probe = await first.ReceiveAsync(cts.Token);
            var frames = new List<Frame>();
            Assert.Equal(DecodeStatus.Ok, WireCodec.TryDecode(probe.Buffer, out _, frames));
            var ping = Assert.IsType<PingFrame>(Assert.Single(frames));
            await first.SendAsync(WireCodec.Encode(new DatagramHeader(new MemberId(1), MemberId.None), new PongFrame(ping.Token)), server.LocalEndpoint);
        }

        // Like a node, the newcomer retries until it gets an answer (bounded).
        JoinDenyFrame? deny = null;
        for (var attempt = 0; attempt < 20 && deny is null; attempt++)
        {
            await second.SendAsync(WireCodec.Encode(new DatagramHeader(new MemberId(2), MemberId.None), new JoinRequestFrame("bob")), server.LocalEndpoint);
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(250));
            try
            {
                var answer = await second.ReceiveAsync(cts.Token);
                var frames = new List<Frame>();
                Assert.Equal(DecodeStatus.Ok, WireCodec.TryDecode(answer.Buffer, out _, frames));
                deny = Assert.IsType<JoinDenyFrame>(Assert.Single(frames));
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                // no answer yet: the holder's proof of life had not arrived; retry
            }
        }

        Assert.NotNull(deny);

        Assert.Equal(DenyReason.NameTaken, deny.Reason);
        Assert.Equal("the name 'bob' is already taken in this group", deny.Message);
    }

    [Fact]
    public async Task KeepsServingAfterGarbageOversizedDatagramsAndAnswersToAClosedPort()
    {
        await using var server = await DiscoveryServer.StartAsync(Loopback());
        using (var gone = Client())
        {
            // The server answers a socket that closes at once: the reply may bounce back as an ICMP error.
            var request = WireCodec.Encode(new DatagramHeader(new MemberId(1), MemberId.None), new JoinRequestFrame("ghost"));
            await gone.SendAsync(request, server.LocalEndpoint);
            await gone.SendAsync(new byte[] { 1, 2, 3 }, server.LocalEndpoint);
            await gone.SendAsync(new byte[1500], server.LocalEndpoint);
        }

        using var client = Client();
        var accept = Assert.IsType<JoinAcceptFrame>(await JoinAsync(client, server.LocalEndpoint, 2, "alice"));

        Assert.False(server.Completion.IsCompleted);
        Assert.Equal(["ghost"], accept.Members.Select(m => m.Name));
    }

    [Fact]
    public async Task ExpiresALapsedLeaseOnItsTimerWithoutFurtherTraffic()
    {
        var time = new FakeTimeProvider();
        await using var server = await DiscoveryServer.StartAsync(Loopback(), time: time);
        using var client = Client();
        await JoinAsync(client, server.LocalEndpoint, 5, "alice");
        Assert.Single(server.Members);

        time.Advance(TimeSpan.FromSeconds(4));
        Assert.Single(server.Members);
        time.Advance(TimeSpan.FromSeconds(1.5));

        Assert.True(await EventuallyAsync(() => server.Members.Count == 0));
    }

    [Fact]
    public async Task StartFailsWithAClearErrorWhenThePortIsTaken()
    {
        await using var first = await DiscoveryServer.StartAsync(Loopback());

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            DiscoveryServer.StartAsync(new DiscoveryServerOptions { Bind = first.LocalEndpoint }));

        Assert.Contains($"cannot start the discovery server on {first.LocalEndpoint}", error.Message, StringComparison.Ordinal);
        Assert.Contains("already in use", error.Message, StringComparison.Ordinal);
        Assert.IsType<SocketException>(error.InnerException);
    }

    [Fact]
    public async Task DisposeStopsTheLoopAndFreesThePort()
    {
        var server = await DiscoveryServer.StartAsync(Loopback());
        var endpoint = server.LocalEndpoint;

        await server.DisposeAsync();

        Assert.True(server.Completion.IsCompletedSuccessfully);
        await using var again = await DiscoveryServer.StartAsync(new DiscoveryServerOptions { Bind = endpoint });
        Assert.Equal(endpoint, again.LocalEndpoint);
    }

    private sealed class ListLogger : ILogger
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyCollection<string> Lines => [.. _lines];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue(formatter(state, exception));
    }
}
