using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;
using Whisper.Net;
using Xunit;

namespace Whisper.IntegrationTests.InProcess;

public sealed class TransportTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task UdpTransportCarriesADatagramBetweenTwoIPv4LoopbackSockets()
    {
        await using var a = UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var b = UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        Assert.True(a.Send("ping"u8, b.LocalEndpoint));
        var buffer = new byte[64 * 1024];
        var received = await b.ReceiveAsync(buffer, CancellationToken.None).AsTask().WaitAsync(Wait);

        Assert.Equal("ping"u8.ToArray(), buffer[..received.Length]);
        Assert.Equal(a.LocalEndpoint, received.From);
        Assert.NotEqual(0, b.LocalEndpoint.Port);
    }

    [SkippableFact]
    public async Task UdpTransportCarriesADatagramBetweenTwoIPv6LoopbackSockets()
    {
        Skip.IfNot(Socket.OSSupportsIPv6, "no IPv6 on this machine");
        UdpDatagramTransport a;
        try
        {
            a = UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        }
        catch (SocketException ex)
        {
            throw new SkipException($"cannot bind [::1]: {ex.SocketErrorCode}");
        }

        await using (a)
        {
            await using var b = UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            Assert.True(a.Send("ping6"u8, b.LocalEndpoint));
            var buffer = new byte[64 * 1024];
            var received = await b.ReceiveAsync(buffer, CancellationToken.None).AsTask().WaitAsync(Wait);

            Assert.Equal("ping6"u8.ToArray(), buffer[..received.Length]);
            Assert.Equal(a.LocalEndpoint, received.From);
        }
    }

    [Fact]
    public async Task UdpTransportKeepsReceivingAfterSendingToAClosedPort()
    {
        await using var a = UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var b = UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int closedPort;
        using (var probe = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)))
        {
            closedPort = ((IPEndPoint)probe.Client.LocalEndPoint!).Port;
        }

        a.Send("nobody home"u8, new IPEndPoint(IPAddress.Loopback, closedPort)); // may provoke ICMP port unreachable
        b.Send("hello a"u8, a.LocalEndpoint);
        var buffer = new byte[64 * 1024];
        var received = await a.ReceiveAsync(buffer, CancellationToken.None).AsTask().WaitAsync(Wait);

        Assert.Equal("hello a"u8.ToArray(), buffer[..received.Length]);
    }

    [Fact]
    public async Task UdpTransportReceiveEndsWithCancellation()
    {
        await using var a = UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => a.ReceiveAsync(new byte[2048], cts.Token).AsTask().WaitAsync(Wait));
    }

    [Fact]
    public async Task FaultInjectingTransportWithDropOutgoingOneSendsNothing()
    {
        var inner = new MemoryTransport();
        await using var faulty = new FaultInjectingTransport(inner, new FaultOptions { DropOutgoing = 1, Seed = 1 });

        for (var i = 0; i < 100; i++)
        {
            faulty.Send([1, 2, 3], MemoryTransport.Peer);
        }

        Assert.Empty(inner.Sent);
        Assert.Equal(100, faulty.DroppedOutgoing);
    }

    [Fact]
    public async Task FaultInjectingTransportWithDuplicateOneSendsEverythingTwice()
    {
        var inner = new MemoryTransport();
        await using var faulty = new FaultInjectingTransport(inner, new FaultOptions { DuplicateOutgoing = 1, Seed = 1 });

        for (var i = 0; i < 10; i++)
        {
            faulty.Send([(byte)i], MemoryTransport.Peer);
        }

        Assert.Equal(Enumerable.Range(0, 10).SelectMany(i => new[] { i, i }), inner.Sent.Select(d => (int)d[0]));
    }

    [Fact]
    public async Task FaultInjectingTransportDropsTheSameIncomingDatagramsForTheSameSeed()
    {
        var first = await SurvivorsAsync(seed: 7);
        var second = await SurvivorsAsync(seed: 7);
        var other = await SurvivorsAsync(seed: 8);

        Assert.Equal(first, second);
        Assert.NotEqual(first, other);
        Assert.InRange(first.Count, 150, 250); // about half of 400 survive a 0.5 drop rate
    }

    [Fact]
    public async Task FaultInjectingTransportDelaysSomeDatagramsSoLaterOnesOvertakeThemAndLosesNone()
    {
        var inner = new MemoryTransport();
        var time = new FakeTimeProvider();
        await using var faulty = new FaultInjectingTransport(
            inner, new FaultOptions { DelayOutgoing = 0.5, MaxDelay = TimeSpan.FromMilliseconds(100), Seed = 3 }, time);

        for (var i = 0; i < 40; i++)
        {
            Assert.True(faulty.Send([(byte)i], MemoryTransport.Peer));
        }

        var immediate = inner.Sent.Select(d => (int)d[0]).ToList();
        Assert.InRange(faulty.Delayed, 5, 35);
        Assert.Equal(40 - faulty.Delayed, immediate.Count);

        time.Advance(TimeSpan.FromMilliseconds(100));

        var all = inner.Sent.Select(d => (int)d[0]).ToList();
        Assert.Equal(Enumerable.Range(0, 40), all.Order());
        Assert.NotEqual(Enumerable.Range(0, 40), all); // reordered
        Assert.Equal(immediate, all.Take(immediate.Count));
    }

    [Fact]
    public async Task FaultInjectingTransportWithoutDelayOptionsSendsEverythingAtOnceInOrder()
    {
        var inner = new MemoryTransport();
        var time = new FakeTimeProvider();
        await using var faulty = new FaultInjectingTransport(
            inner, new FaultOptions { DelayOutgoing = 1, MaxDelay = TimeSpan.Zero, DropIncoming = 0.5, Seed = 3 }, time);

        for (var i = 0; i < 20; i++)
        {
            faulty.Send([(byte)i], MemoryTransport.Peer);
        }

        Assert.Equal(Enumerable.Range(0, 20), inner.Sent.Select(d => (int)d[0]));
        Assert.Equal(0, faulty.Delayed);
    }

    [Fact]
    public async Task FaultInjectingTransportDiscardsDelayedDatagramsStillPendingAtDisposal()
    {
        var inner = new MemoryTransport();
        var time = new FakeTimeProvider();
        var faulty = new FaultInjectingTransport(
            inner, new FaultOptions { DelayOutgoing = 1, MaxDelay = TimeSpan.FromSeconds(1), Seed = 5 }, time);

        faulty.Send([1], MemoryTransport.Peer);
        await faulty.DisposeAsync();
        time.Advance(TimeSpan.FromSeconds(2));

        Assert.Empty(inner.Sent);
        Assert.Equal(1, faulty.Delayed);
    }

    [Fact]
    public void FaultOptionsRejectADelayOutsideZeroToTenSeconds()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FaultOptions { MaxDelay = TimeSpan.FromSeconds(11) }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new FaultOptions { MaxDelay = TimeSpan.FromMilliseconds(-1) }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new FaultOptions { DelayOutgoing = 2 }.Validate());
    }

    [Fact]
    public void FaultOptionsRejectAProbabilityOutsideZeroToOne()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FaultOptions { DropIncoming = 1.5 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new FaultOptions { DropOutgoing = -0.1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new FaultOptions { DuplicateOutgoing = double.NaN }.Validate());
    }

    private static async Task<List<int>> SurvivorsAsync(int seed)
    {
        const int Count = 400;
        var inner = new MemoryTransport();
        for (var i = 0; i < Count; i++)
        {
            inner.Incoming.Writer.TryWrite(BitConverter.GetBytes(i));
        }

        inner.Incoming.Writer.Complete();
        await using var faulty = new FaultInjectingTransport(inner, new FaultOptions { DropIncoming = 0.5, Seed = seed });
        var survivors = new List<int>();
        var buffer = new byte[16];
        try
        {
            for (var i = 0; i < Count; i++)
            {
                var r = await faulty.ReceiveAsync(buffer, CancellationToken.None);
                survivors.Add(BitConverter.ToInt32(buffer, 0));
            }
        }
        catch (ObjectDisposedException)
        {
            // the queue ran dry
        }

        return survivors;
    }

    /// <summary>An in-memory transport: records sends, serves queued datagrams, ends with ObjectDisposedException when empty and complete.</summary>
    private sealed class MemoryTransport : IDatagramTransport
    {
        public static readonly IPEndPoint Peer = new(IPAddress.Loopback, 9);

        public List<byte[]> Sent { get; } = [];

        public Channel<byte[]> Incoming { get; } = Channel.CreateUnbounded<byte[]>();

        public IPEndPoint LocalEndpoint { get; } = new(IPAddress.Loopback, 8);

        public bool Send(ReadOnlySpan<byte> datagram, IPEndPoint destination)
        {
            Sent.Add(datagram.ToArray());
            return true;
        }

        public async ValueTask<ReceivedDatagram> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            if (!await Incoming.Reader.WaitToReadAsync(cancellationToken) || !Incoming.Reader.TryRead(out var datagram))
            {
                throw new ObjectDisposedException(nameof(MemoryTransport));
            }

            datagram.CopyTo(buffer);
            return new ReceivedDatagram(datagram.Length, Peer);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
