using System.Net;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests;

public sealed class WireCodecRoundTripTests
{
    [Theory]
    [MemberData(nameof(Samples.FrameNames), MemberType = typeof(Samples))]
    public void EveryFrameTypeDecodesToWhatWasEncoded(string name)
    {
        var frame = Samples.Frames[name];

        var bytes = WireCodec.Encode(Samples.Header, frame);
        var (status, header, frames) = Wire.Decode(bytes);

        Assert.Equal(DecodeStatus.Ok, status);
        Assert.Equal(Samples.Header, header);
        FrameAssert.Equal(frame, Assert.Single(frames));
    }

    [Theory]
    [MemberData(nameof(Samples.FrameNames), MemberType = typeof(Samples))]
    public void EncodedLengthIsHeaderPlusFrameSize(string name)
    {
        var frame = Samples.Frames[name];

        var bytes = WireCodec.Encode(Samples.Header, frame);

        Assert.Equal(WireCodec.HeaderSize + WireCodec.FrameSize(frame), bytes.Length);
        Assert.Equal(WireCodec.FrameSize(frame) - WireCodec.FrameHeaderSize, (bytes[21] << 8) | bytes[22]);
    }

    [Fact]
    public void EveryFrameTypeCoversTheWholeClosedSet()
    {
        var covered = Samples.Frames.Values.Select(f => f.Type).ToHashSet();

        Assert.Equal(Enum.GetValues<FrameType>().ToHashSet(), covered);
    }

    [Fact]
    public void ManyFramesInOneDatagramDecodeInOrder()
    {
        Frame[] frames =
        [
            Samples.Frames["ack"],
            Samples.Frames["chunk-whole-message"],
            Samples.Frames["chunk-middle"],
            Samples.Frames["private-whole-message"],
            Samples.Frames["nack-broadcast"],
            Samples.Frames["ping"],
            Samples.Frames["pong"],
            Samples.Frames["leave"],
        ];

        var bytes = WireCodec.Encode(Samples.Header, frames);
        var (status, header, decoded) = Wire.Decode(bytes);

        Assert.Equal(DecodeStatus.Ok, status);
        Assert.Equal(Samples.Header, header);
        FrameAssert.Equal(frames, decoded);
    }

    [Fact]
    public void OneFrameOfEveryTypeFitsInOneDatagramAndDecodesInOrder()
    {
        var frames = Enum.GetValues<FrameType>().Select(t => Samples.Frames.Values.First(f => f.Type == t)).ToArray();

        var bytes = WireCodec.Encode(new DatagramHeader(Samples.Carol, MemberId.None), frames);
        var (status, header, decoded) = Wire.Decode(bytes);

        Assert.True(bytes.Length <= WireCodec.MaxDatagramSize, $"{bytes.Length} bytes");
        Assert.Equal(DecodeStatus.Ok, status);
        Assert.Equal(new DatagramHeader(Samples.Carol, MemberId.None), header);
        FrameAssert.Equal(frames, decoded);
    }

    [Fact]
    public void SpanEncoderWritesTheSameBytesAsTheArrayEncoder()
    {
        Frame[] frames = [Samples.Frames["ack"], Samples.Frames["intro-reply-requested"]];
        var expected = WireCodec.Encode(Samples.Header, frames);
        var buffer = new byte[WireCodec.MaxDatagramSize];

        var written = WireCodec.Encode(Samples.Header, frames, buffer);

        Assert.Equal(expected, buffer[..written]);
    }

    [Fact]
    public void DecodingAppendsToTheCallersListAndKeepsWhatWasThere()
    {
        var existing = new PingFrame(1);
        var frames = new List<Frame> { existing };

        var status = WireCodec.TryDecode(WireCodec.Encode(Samples.Header, new PongFrame(2)), out _, frames);

        Assert.Equal(DecodeStatus.Ok, status);
        Assert.Equal(2, frames.Count);
        Assert.Same(existing, frames[0]);
        Assert.Equal(2UL, Assert.IsType<PongFrame>(frames[1]).Token);
    }

    [Theory]
    [InlineData("0.0.0.0", 0)]
    [InlineData("127.0.0.1", 9000)]
    [InlineData("255.255.255.255", 65535)]
    [InlineData("::", 0)]
    [InlineData("::1", 1)]
    [InlineData("fe80::1", 5353)]
    [InlineData("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 65535)]
    [InlineData("::ffff:192.0.2.1", 4242)]
    public void Ipv4AndIpv6EndpointsRoundTripWithTheirFamily(string address, int port)
    {
        var endpoint = new IPEndPoint(IPAddress.Parse(address), port);
        var frame = new JoinAcceptFrame(endpoint, [new MemberRecord(Samples.Bob, "bob", endpoint)]);

        var decoded = Assert.IsType<JoinAcceptFrame>(Wire.DecodeSingle(WireCodec.Encode(Samples.Header, frame)));

        Assert.Equal(endpoint, decoded.ObservedEndpoint);
        Assert.Equal(endpoint.AddressFamily, decoded.ObservedEndpoint.AddressFamily);
        Assert.Equal(endpoint, Assert.Single(decoded.Members).Endpoint);
    }

    [Fact]
    public void Ipv6ScopeIdIsNotCarriedOnTheWire()
    {
        var scoped = new IPEndPoint(IPAddress.Parse("fe80::1%3"), 7000);

        var decoded = Assert.IsType<JoinAcceptFrame>(Wire.DecodeSingle(WireCodec.Encode(Samples.Header, new JoinAcceptFrame(scoped, []))));

        Assert.Equal(0, decoded.ObservedEndpoint.Address.ScopeId);
        Assert.Equal(IPAddress.Parse("fe80::1"), decoded.ObservedEndpoint.Address);
        Assert.Equal(7000, decoded.ObservedEndpoint.Port);
    }

    // ------------------------------------------------------------------ normalisation

    [Fact]
    public void FirstChunkWithoutDepsIsSentWithAnEmptyClock()
    {
        var frame = new ChunkFrame(Samples.Alice, 1, ChunkFlags.First | ChunkFlags.Last, null, "x"u8.ToArray());

        var decoded = Assert.IsType<ChunkFrame>(Wire.DecodeSingle(WireCodec.Encode(Samples.Header, frame)));

        Assert.NotNull(decoded.Deps);
        Assert.Equal(0, decoded.Deps.Count);
    }

    [Fact]
    public void DepsOfANonFirstChunkAreNotSent()
    {
        var frame = new PrivateChunkFrame(2, ChunkFlags.Last, Samples.Clock((Samples.Alice, 5)), "x"u8.ToArray());

        var bytes = WireCodec.Encode(Samples.Header, frame);
        var decoded = Assert.IsType<PrivateChunkFrame>(Wire.DecodeSingle(bytes));

        Assert.Null(decoded.Deps);
        Assert.Equal(WireCodec.HeaderSize + 3 + 1 + 1 + 1 + 1, bytes.Length);
    }

    [Fact]
    public void ClockEntriesWithZeroValueAreAcceptedOnTheWireAndOmittedWhenDecoded()
    {
        var body = new Bytes().U8(3)
            .U64(1).Varint(4)
            .U64(2).Varint(0)
            .U64(3).Varint(9)
            .Varint(0);

        var ack = Assert.IsType<AckFrame>(Wire.DecodeSingle(Wire.Datagram(Wire.Frame(FrameType.Ack, body))));

        Assert.Equal([new ClockEntry(new MemberId(1), 4), new ClockEntry(new MemberId(3), 9)], ack.Received.Entries);
    }

    // ------------------------------------------------------------------ maximal sizes

    [Fact]
    public void AckWithSixtyFourClockEntriesOfMaximalValueFitsAndRoundTrips()
    {
        var clock = VectorClock.From(Enumerable.Range(1, VectorClock.MaxEntries).Select(i => new ClockEntry(new MemberId((ulong)i * 0x0101010101010101UL), ulong.MaxValue - (ulong)i)));
        var frame = new AckFrame(clock, ulong.MaxValue);

        var bytes = WireCodec.Encode(Samples.Header, frame);
        var decoded = Assert.IsType<AckFrame>(Wire.DecodeSingle(bytes));

        Assert.Equal(64, decoded.Received.Count);
        Assert.True(bytes.Length <= WireCodec.MaxDatagramSize, $"{bytes.Length} bytes");
        FrameAssert.Equal(frame, decoded);
    }

    [Fact]
    public void FirstChunkWithSixtyFourDepsRoundTrips()
    {
        var deps = VectorClock.From(Enumerable.Range(1, 64).Select(i => new ClockEntry(new MemberId((ulong)i), (ulong)i * 1000)));
        var frame = new ChunkFrame(Samples.Alice, 1, ChunkFlags.First, deps, Samples.Payload(100));

        FrameAssert.Equal(frame, Wire.DecodeSingle(WireCodec.Encode(Samples.Header, frame)));
    }

    public static TheoryData<string> MaximalMemberListFrames => ["intro", "join-accept", "lease"];

    [Theory]
    [MemberData(nameof(MaximalMemberListFrames))]
    public void SixteenMembersWithThirtyTwoCharacterNamesAndIpv6EndpointsRoundTrip(string kind)
    {
        var name = new string('n', MemberName.MaxLength);
        var members = Enumerable.Range(1, 16)
            .Select(i => new MemberRecord(new MemberId(ulong.MaxValue - (ulong)i), $"{i:D2}{name}"[..MemberName.MaxLength], new IPEndPoint(IPAddress.Parse($"2001:db8::{i:x}"), 60000 + i)))
            .ToArray();
        Frame frame = kind switch
        {
            "intro" => new IntroFrame(true, name, Samples.V6, ulong.MaxValue, members, Seniority: ulong.MaxValue),
            "join-accept" => new JoinAcceptFrame(Samples.V6, members, ulong.MaxValue),
            _ => new LeaseFrame(name, members, ulong.MaxValue),
        };

        var bytes = WireCodec.Encode(Samples.Header, frame);

        Assert.True(bytes.Length <= WireCodec.MaxDatagramSize, $"{bytes.Length} bytes");
        FrameAssert.Equal(frame, Wire.DecodeSingle(bytes));
    }

    [Fact]
    public void DenyMessageOfMaximalLengthRoundTrips()
    {
        var frame = new JoinDenyFrame(DenyReason.Other, new string('m', WireCodec.MaxDenyMessageBytes));

        FrameAssert.Equal(frame, Wire.DecodeSingle(WireCodec.Encode(Samples.Header, frame)));
    }

    [Fact]
    public void JoinRequestNameOf255BytesRoundTrips()
    {
        var frame = new JoinRequestFrame(new string('j', 255));

        FrameAssert.Equal(frame, Wire.DecodeSingle(WireCodec.Encode(Samples.Header, frame)));
    }

    [Fact]
    public void ChunkPayloadFillingExactly1200BytesRoundTrips()
    {
        var payload = LargestPayload(len => new ChunkFrame(Samples.Carol, ulong.MaxValue, ChunkFlags.First | ChunkFlags.Last, VectorClock.Empty, new byte[len]));
        var frame = new ChunkFrame(Samples.Carol, ulong.MaxValue, ChunkFlags.First | ChunkFlags.Last, VectorClock.Empty, Samples.Payload(payload));

        var bytes = WireCodec.Encode(Samples.Header, frame);

        Assert.Equal(WireCodec.MaxDatagramSize, bytes.Length);
        FrameAssert.Equal(frame, Wire.DecodeSingle(bytes));
    }

    [Fact]
    public void PrivatePayloadFillingExactly1200BytesRoundTrips()
    {
        var payload = LargestPayload(len => new PrivateChunkFrame(5, ChunkFlags.None, null, new byte[len]));
        var frame = new PrivateChunkFrame(5, ChunkFlags.None, null, Samples.Payload(payload));

        var bytes = WireCodec.Encode(Samples.Header, frame);

        Assert.Equal(WireCodec.MaxDatagramSize, bytes.Length);
        FrameAssert.Equal(frame, Wire.DecodeSingle(bytes));
    }

    /// <summary>The largest payload length whose datagram is at most 1200 bytes (it is exactly 1200 here).</summary>
    internal static int LargestPayload(Func<int, Frame> make)
    {
        var len = WireCodec.MaxDatagramSize;
        while (WireCodec.HeaderSize + WireCodec.FrameSize(make(len)) > WireCodec.MaxDatagramSize)
        {
            len--;
        }

        return len;
    }

    // ------------------------------------------------------------------ byte layout (pins docs/protocol.md)

    [Fact]
    public void HeaderAndPingHaveTheDocumentedLayout()
    {
        var bytes = WireCodec.Encode(Samples.Header, new PingFrame(0x0102030405060708));

        Assert.Equal(
            "5748" + "01" + "00" + "3f2a91c0ffee0001" + "77c0d1beef000002" // magic, version, envelope, from, to
            + "06" + "0008" + "0102030405060708", // type, length, token
            Wire.Hex(bytes));
    }

    [Fact]
    public void ChunkHasTheDocumentedLayout()
    {
        var frame = new ChunkFrame(Samples.Carol, 300, ChunkFlags.First | ChunkFlags.Last, Samples.Clock((Samples.Alice, 1)), "hi"u8.ToArray());

        var bytes = WireCodec.Encode(Samples.Header, frame);

        Assert.Equal(
            "01" + "0018" + "03" + "fedcba9876543210" + "ac02" // type, length, flags, origin, seq varint
            + "01" + "3f2a91c0ffee0001" + "01" // deps: count, id, value
            + "02" + "6869", // payload length, payload
            Wire.Hex(bytes.AsSpan(WireCodec.HeaderSize)));
    }

    [Fact]
    public void PongHasTheDocumentedLayout() =>
        Assert.Equal("07" + "000a" + "0102030405060708" + "e821", // type, length, token, held 4328 us as a varint
            Wire.Hex(WireCodec.Encode(Samples.Header, new PongFrame(0x0102030405060708, 4_328)).AsSpan(WireCodec.HeaderSize)));

    [Fact]
    public void ChunkContinuingTheStreamBeforeItHasTheDocumentedLayout()
    {
        var first = new ChunkFrame(Samples.Carol, 300, ChunkFlags.First | ChunkFlags.Last, Samples.Clock((Samples.Alice, 1)), "hi"u8.ToArray());
        var next = new ChunkFrame(Samples.Carol, 301, ChunkFlags.Last, null, "!"u8.ToArray());

        var bytes = WireCodec.Encode(Samples.Header, first, next);

        Assert.EndsWith("01" + "0003" + "0a" + "01" + "21", Wire.Hex(bytes), StringComparison.Ordinal); // type, length, Next|Last, payload
    }

    [Fact]
    public void PrivateChunkHasTheDocumentedLayout()
    {
        var frame = new PrivateChunkFrame(2, ChunkFlags.First, VectorClock.Empty, "y"u8.ToArray());

        Assert.Equal("02" + "0005" + "02" + "01" + "00" + "01" + "79", Wire.Hex(WireCodec.Encode(Samples.Header, frame).AsSpan(WireCodec.HeaderSize)));
    }

    [Fact]
    public void AckAndNackHaveTheDocumentedLayout()
    {
        var ack = new AckFrame(Samples.Clock((Samples.Bob, 128)), 5);
        var nack = new NackFrame(StreamKind.Broadcast, Samples.Carol, [new SeqRange(5, 9), new SeqRange(12, 12)]);

        var bytes = WireCodec.Encode(Samples.Header, ack, nack);

        Assert.Equal(
            "03" + "000c" + "01" + "77c0d1beef000002" + "8001" + "05"
            + "04" + "000e" + "00" + "fedcba9876543210" + "02" + "0504" + "0c00",
            Wire.Hex(bytes.AsSpan(WireCodec.HeaderSize)));
    }

    [Fact]
    public void IntroHasTheDocumentedLayout()
    {
        var frame = new IntroFrame(true, "al", new IPEndPoint(IPAddress.Parse("10.0.0.1"), 8080), 5, [new MemberRecord(new MemberId(9), "b", new IPEndPoint(IPAddress.IPv6Loopback, 1))],
            VectorClock.From([new ClockEntry(new MemberId(3), 7)]), Seniority: 2);

        Assert.Equal(
            "05" + "0035" + "01" + "02616c" + "04" + "0a000001" + "1f90" + "05"
            + "01" + "0000000000000009" + "0162" + "06" + "00000000000000000000000000000001" + "0001"
            + "01" + "0000000000000003" + "07" + "02",
            Wire.Hex(WireCodec.Encode(Samples.Header, frame).AsSpan(WireCodec.HeaderSize)));
    }

    [Fact]
    public void EvictedHasTheDocumentedLayout() =>
        Assert.Equal(
            "09" + "000a" + "09" + "03" + "0000000000000042",
            Wire.Hex(WireCodec.Encode(Samples.Header, new EvictedFrame(9, 3, new MemberId(0x42))).AsSpan(WireCodec.HeaderSize)));

    [Fact]
    public void DiscoveryFramesHaveTheDocumentedLayout()
    {
        var bytes = WireCodec.Encode(
            new DatagramHeader(Samples.Alice, MemberId.None),
            new LeaveFrame(7),
            new JoinRequestFrame("al"),
            new JoinAcceptFrame(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1), [], Seniority: 3),
            new JoinDenyFrame(DenyReason.NameTaken, "no"),
            new LeaseFrame("al", [], Seniority: 3));

        Assert.Equal(
            "08" + "0001" + "07"
            + "10" + "0003" + "02616c"
            + "11" + "0009" + "04" + "0a000001" + "0001" + "00" + "03"
            + "12" + "0005" + "02" + "0002" + "6e6f"
            + "13" + "0005" + "02616c" + "00" + "03",
            Wire.Hex(bytes.AsSpan(WireCodec.HeaderSize)));
    }

    [Theory]
    [InlineData(0UL, "00")]
    [InlineData(1UL, "01")]
    [InlineData(127UL, "7f")]
    [InlineData(128UL, "8001")]
    [InlineData(300UL, "ac02")]
    [InlineData(16383UL, "ff7f")]
    [InlineData(16384UL, "808001")]
    [InlineData(0x8000000000000000UL, "80808080808080808001")]
    [InlineData(ulong.MaxValue, "ffffffffffffffffff01")]
    public void VarintsAreMinimalUnsignedLeb128(ulong value, string hex)
    {
        var bytes = WireCodec.Encode(Samples.Header, new LeaveFrame(value));

        Assert.Equal(hex, Wire.Hex(bytes.AsSpan(WireCodec.HeaderSize + WireCodec.FrameHeaderSize)));
        Assert.Equal(value, Assert.IsType<LeaveFrame>(Wire.DecodeSingle(bytes)).FinalSeq);
    }

    [Fact]
    public void PeekVersionReadsTheVersionOfAnyDatagramWithTheMagic()
    {
        Assert.True(WireCodec.TryPeekVersion([(byte)'W', (byte)'H', 7], out var version));
        Assert.Equal(7, version);
        Assert.False(WireCodec.TryPeekVersion([(byte)'W', (byte)'H'], out _));
        Assert.False(WireCodec.TryPeekVersion([(byte)'X', (byte)'H', 1, 0], out _));
    }

    [Fact]
    public void DescribeNamesEveryFrameOfADatagram()
    {
        var text = WireCodec.Describe(Samples.Header, [new PingFrame(3), new LeaveFrame(9)]);

        Assert.Equal("3f2a91->77c0d1 Ping 3 | Leave final=9", text);
    }
}
