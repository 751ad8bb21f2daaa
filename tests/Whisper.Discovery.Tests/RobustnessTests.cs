using Whisper.Protocol;
using Whisper.Protocol.Wire;
using Xunit;
using static Whisper.Discovery.Tests.EngineHarness;

namespace Whisper.Discovery.Tests;

public sealed class RobustnessTests
{
    [Fact]
    public void AnswersAnotherProtocolVersionWithADenyThatNamesBothVersions()
    {
        var h = new EngineHarness();
        var datagram = Datagram(7, new JoinRequestFrame("alice"));
        datagram[2] = 2;

        var reply = Assert.Single(h.Feed(Ep(5001), datagram));

        Assert.Equal(Ep(5001), reply.To);
        Assert.Equal(DenyReason.VersionMismatch, reply.Deny.Reason);
        Assert.Equal("this server speaks Whisper protocol version 1; you sent version 2", reply.Deny.Message);
        Assert.Empty(h.Members);
        Assert.Equal(1, h.Engine.Stats.VersionMismatches);
        Assert.Equal(1, h.Engine.Stats.Malformed(DecodeStatus.UnsupportedVersion));
    }

    public static TheoryData<string, byte[], DecodeStatus> MalformedDatagrams()
    {
        var request = Datagram(1, new JoinRequestFrame("alice"));
        var unknownType = (byte[])request.Clone();
        unknownType[WireCodec.HeaderSize] = 0x7F;
        var truncated = request[..^2];
        var badEnvelope = (byte[])request.Clone();
        badEnvelope[3] = 9;
        var badLease = Datagram(1, new LeaseFrame("alice", []));
        badLease[WireCodec.HeaderSize + WireCodec.FrameHeaderSize + 1] = (byte)' '; // a name the codec rejects
        return new()
        {
            { "empty", [], DecodeStatus.TooShort },
            { "shorter than a header", request[..10], DecodeStatus.TooShort },
            { "not Whisper", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), DecodeStatus.BadMagic },
            { "larger than any datagram", [.. request, .. new byte[WireCodec.MaxDatagramSize]], DecodeStatus.TooLarge },
            { "header only", request[..WireCodec.HeaderSize], DecodeStatus.Truncated },
            { "cut short", truncated, DecodeStatus.Truncated },
            { "unknown frame type", unknownType, DecodeStatus.UnknownFrameType },
            { "encrypted envelope", badEnvelope, DecodeStatus.UnsupportedEnvelope },
            { "invalid name in a lease", badLease, DecodeStatus.Malformed },
        };
    }

    [Theory]
    [MemberData(nameof(MalformedDatagrams))]
    public void CountsAndDropsAMalformedDatagram(string what, byte[] datagram, DecodeStatus status)
    {
        var h = new EngineHarness();
        h.Join(9, "alice", 5009);

        var replies = h.Feed(Ep(5001), datagram);

        Assert.True(replies.Count == 0, what);
        Assert.Equal(1, h.Engine.Stats.Malformed(status));
        Assert.Equal(1, h.Engine.Stats.MalformedDropped);
        Assert.Single(h.Events); // only alice's admission
        Assert.Single(h.Members);
    }

    [Fact]
    public void SurvivesRandomBytesAndStillAdmitsAfterwards()
    {
        var h = new EngineHarness();
        var valid = Datagram(1, new JoinRequestFrame("alice"));
        var rng = new Random(1234); // seeded: a failure replays
        for (var i = 0; i < 2000; i++)
        {
            var bytes = i % 2 == 0 ? new byte[rng.Next(0, 64)] : (byte[])valid.Clone();
            if (i % 2 == 0)
            {
                rng.NextBytes(bytes);
            }
            else
            {
                bytes[rng.Next(bytes.Length)] ^= (byte)(1 + rng.Next(255)); // one corrupted byte
            }

            h.Feed(Ep(6000 + (i % 50)), bytes);
        }

        Assert.Equal(2000, h.Engine.Stats.DatagramsReceived);
        Assert.IsType<JoinAcceptFrame>(h.Join(424242, "zoe", 5999).Frame);
    }

    [Fact]
    public void IgnoresFramesMeantForMembersAndRequestsWithoutASenderId()
    {
        var h = new EngineHarness();

        Assert.Empty(h.Send(1, 5001, new PingFrame(42)));
        Assert.Empty(h.Send(0, 5002, new JoinRequestFrame("alice")));

        Assert.Empty(h.Members);
        Assert.Equal(2, h.Engine.Stats.IgnoredFrames);
        Assert.Equal(0, h.Engine.Stats.MalformedDropped);
    }

    [Fact]
    public void ProcessesEveryFrameOfADatagramInOrder()
    {
        var h = new EngineHarness();
        var datagram = WireCodec.Encode(new DatagramHeader(new MemberId(1), MemberId.None), new JoinRequestFrame("alice"), new LeaveFrame(0));

        var reply = Assert.Single(h.Feed(Ep(5001), datagram));

        Assert.IsType<JoinAcceptFrame>(reply.Frame);
        Assert.Equal([typeof(MemberAdmitted), typeof(MemberLeft)], h.Events.Select(e => e.GetType()));
        Assert.Empty(h.Members);
    }

    [Fact]
    public void RefusesToWriteIntoABufferTooSmallForTheNextDatagram()
    {
        var engine = new DiscoveryEngine(new DiscoveryOptions { RelearnWindow = TimeSpan.Zero });
        engine.OnDatagram(Ep(5001), Datagram(1, new JoinRequestFrame("alice")), TimeSpan.Zero);

        Assert.Throws<ArgumentException>(() => engine.TryPollTransmit(new byte[8], out _, out _));
        Assert.True(engine.TryPollTransmit(new byte[WireCodec.MaxDatagramSize], out var length, out _));
        Assert.True(length > WireCodec.HeaderSize);
    }

    [Fact]
    public void DescribesDeniedNamesWithoutControlCharacters()
    {
        var h = new EngineHarness();
        h.Join(1, "evil\nINFO: admitted root", 5001);

        var denied = Assert.IsType<JoinDenied>(Assert.Single(h.Events));
        Assert.DoesNotContain('\n', denied.Describe(10));
        Assert.StartsWith("denied 'evil?INFO: admitted root' from 127.0.0.1:5001: InvalidName:", denied.Describe(10), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(17)]
    public void OptionsRejectACapOutsideOneToSixteen(int max) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new DiscoveryEngine(new DiscoveryOptions { MaxMembers = max }));

    [Fact]
    public void OptionsRejectANonPositiveLeaseTimeout() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new DiscoveryOptions { LeaseTimeout = TimeSpan.Zero }.Validate());
}
