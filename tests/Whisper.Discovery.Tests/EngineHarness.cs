using System.Net;
using Whisper.Protocol;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Discovery.Tests;

/// <summary>A datagram the engine sent, decoded.</summary>
internal sealed record Reply(IPEndPoint To, DatagramHeader Header, Frame Frame, byte[] Bytes)
{
    public JoinAcceptFrame Accept => Assert.IsType<JoinAcceptFrame>(Frame);

    public JoinDenyFrame Deny => Assert.IsType<JoinDenyFrame>(Frame);
}

/// <summary>
/// Drives one <see cref="DiscoveryEngine"/> with encoded datagrams on a fake clock, draining transmits and then
/// events after every input exactly as the call contract asks.
/// </summary>
internal sealed class EngineHarness(DiscoveryOptions? options = null)
{
    // A fresh registry in these tests: no re-learning window unless a test asks for one.
    public DiscoveryEngine Engine { get; } = new((options ?? new DiscoveryOptions()) with { RelearnWindow = TimeSpan.Zero });

    public TimeSpan Now { get; set; }

    public List<DiscoveryEvent> Events { get; } = [];

    public IReadOnlyList<MemberRecord> Members => Engine.Members;

    public static IPEndPoint Ep(int port) => new(IPAddress.Loopback, port);

    public static byte[] Datagram(ulong from, Frame frame) =>
        WireCodec.Encode(new DatagramHeader(new MemberId(from), MemberId.None), frame);

    public List<Reply> Feed(IPEndPoint from, byte[] datagram)
    {
        Engine.OnDatagram(from, datagram, Now);
        return Drain();
    }

    public List<Reply> Send(ulong id, int port, Frame frame) => Feed(Ep(port), Datagram(id, frame));

    /// <summary>A join request that must get exactly one answer.</summary>
    public Reply Join(ulong id, string name, int port) => Assert.Single(Send(id, port, new JoinRequestFrame(name)));

    /// <summary>
    /// A join for a name someone holds: the server first pings the holder; once the holder answers, the
    /// newcomer's retry gets the verdict.
    /// </summary>
    public Reply JoinHeldName(ulong id, string name, int port, ulong holderId, int holderPort)
    {
        var probe = Assert.Single(Send(id, port, new JoinRequestFrame(name)));
        Assert.IsType<PingFrame>(probe.Frame);
        Assert.Equal(Ep(holderPort), probe.To);
        Assert.Empty(Send(holderId, holderPort, new PongFrame(((PingFrame)probe.Frame).Token)));
        return Join(id, name, port);
    }

    public void Lease(ulong id, string name, int port, params MemberRecord[] view) =>
        Assert.Empty(Send(id, port, new LeaseFrame(name, view)));

    public void Leave(ulong id, int port) => Assert.Empty(Send(id, port, new LeaveFrame(0)));

    public List<Reply> Tick(TimeSpan now)
    {
        Now = now;
        Engine.OnTimeout(now);
        return Drain();
    }

    public List<Reply> Drain()
    {
        var replies = new List<Reply>();
        var buffer = new byte[WireCodec.MaxDatagramSize];
        while (Engine.TryPollTransmit(buffer, out var length, out var to))
        {
            var bytes = buffer.AsSpan(0, length).ToArray();
            var frames = new List<Frame>();
            Assert.Equal(DecodeStatus.Ok, WireCodec.TryDecode(bytes, out var header, frames));
            replies.Add(new Reply(to, header, Assert.Single(frames), bytes));
        }

        while (Engine.TryPollEvent(out var ev))
        {
            Events.Add(ev);
        }

        return replies;
    }

    public static MemberRecord Record(ulong id, string name, int port) => new(new MemberId(id), name, Ep(port));
}
