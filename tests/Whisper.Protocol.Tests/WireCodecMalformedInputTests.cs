using System.Net;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests;

/// <summary>Every kind of malformed datagram is dropped with its specific <see cref="DecodeStatus"/>, never an exception.</summary>
public sealed class WireCodecMalformedInputTests
{
    private static readonly IPEndPoint V4 = Samples.V4;

    private static void AssertDropped(DecodeStatus expected, byte[] datagram)
    {
        var frames = new List<Frame> { new PingFrame(99) };

        var status = WireCodec.TryDecode(datagram, out var header, frames);

        Assert.Equal(expected, status);
        Assert.Equal(default, header);
        Assert.Equal(99UL, Assert.IsType<PingFrame>(Assert.Single(frames)).Token); // nothing added, nothing removed
    }

    private static void AssertFrameMalformed(FrameType type, Bytes body) =>
        AssertDropped(DecodeStatus.Malformed, Wire.Datagram(Wire.Frame(type, body)));

    private static void AssertFrameOk(FrameType type, Bytes body)
    {
        var (status, _, frames) = Wire.Decode(Wire.Datagram(Wire.Frame(type, body)));
        Assert.Equal(DecodeStatus.Ok, status);
        Assert.Equal(type, Assert.Single(frames).Type);
    }

    // ------------------------------------------------------------------ datagram level

    [Theory]
    [MemberData(nameof(Samples.FrameNames), MemberType = typeof(Samples))]
    public void SingleFrameDatagramTruncatedAtAnyByteIsTooShortOrTruncated(string name)
    {
        var bytes = WireCodec.Encode(Samples.Header, Samples.Frames[name]);

        for (var length = 0; length < bytes.Length; length++)
        {
            var expected = length < WireCodec.HeaderSize ? DecodeStatus.TooShort : DecodeStatus.Truncated;
            var status = Wire.Decode(bytes.AsSpan(0, length)).Status;
            Assert.True(expected == status, $"cut at {length} of {bytes.Length}: expected {expected}, got {status}");
        }
    }

    [Fact]
    public void MultiFrameDatagramTruncatedInsideAFrameIsTruncatedAndAtAFrameBoundaryKeepsTheWholeFrames()
    {
        Frame[] frames = [Samples.Frames["ack"], Samples.Frames["chunk-whole-message"], Samples.Frames["intro-reply-requested"], Samples.Frames["ping"]];
        var bytes = WireCodec.Encode(Samples.Header, frames);
        var boundaries = new Dictionary<int, int>(); // datagram length -> whole frames before it
        var offset = WireCodec.HeaderSize;
        for (var i = 0; i < frames.Length; i++)
        {
            offset += WireCodec.FrameSize(frames[i]);
            boundaries[offset] = i + 1;
        }

        for (var length = WireCodec.HeaderSize + 1; length < bytes.Length; length++)
        {
            var (status, _, decoded) = Wire.Decode(bytes.AsSpan(0, length));
            if (boundaries.TryGetValue(length, out var whole))
            {
                Assert.Equal(DecodeStatus.Ok, status);
                FrameAssert.Equal(frames[..whole], decoded);
            }
            else
            {
                Assert.True(status == DecodeStatus.Truncated, $"cut at {length} of {bytes.Length}: got {status}");
            }
        }
    }

    [Fact]
    public void EmptyDatagramIsTooShort() => AssertDropped(DecodeStatus.TooShort, []);

    [Fact]
    public void HeaderWithoutFramesIsTruncated() => AssertDropped(DecodeStatus.Truncated, Wire.Datagram());

    [Fact]
    public void DatagramOf1201BytesIsTooLargeEvenWhenOtherwiseValid()
    {
        var len = WireCodecRoundTripTests.LargestPayload(l => new PrivateChunkFrame(1, ChunkFlags.None, null, new byte[l])) + 1;
        // Built by hand: the encoder itself refuses to produce a datagram over the limit.
        var body = new Bytes().Varint(1).U8(0).Varint((ulong)len).Raw(new byte[len]);
        var bytes = Wire.Datagram(Wire.Frame(FrameType.PrivateChunk, body));

        Assert.Equal(WireCodec.MaxDatagramSize + 1, bytes.Length);
        AssertDropped(DecodeStatus.TooLarge, bytes);
    }

    [Fact]
    public void TheEncoderRefusesToProduceADatagramOverTheLimit()
    {
        var len = WireCodecRoundTripTests.LargestPayload(l => new PrivateChunkFrame(1, ChunkFlags.None, null, new byte[l])) + 1;

        Assert.Throws<ArgumentException>(() => WireCodec.Encode(Samples.Header, new PrivateChunkFrame(1, ChunkFlags.None, null, new byte[len])));
    }

    [Fact]
    public void TheEncoderRefusesFramesTheDecoderWouldReject()
    {
        var id = new MemberId(7);
        Assert.Throws<ArgumentException>(() => WireCodec.Encode(Samples.Header, new NackFrame(StreamKind.Broadcast, id, [])));
        Assert.Throws<ArgumentException>(() => WireCodec.Encode(Samples.Header, new NackFrame(StreamKind.Broadcast, id, [new SeqRange(5, 3)])));
        Assert.Throws<ArgumentException>(() => WireCodec.Encode(Samples.Header, new ChunkFrame(id, 0, ChunkFlags.First | ChunkFlags.Last, VectorClock.Empty, new byte[1])));
        Assert.Throws<ArgumentException>(() => WireCodec.Encode(Samples.Header, new JoinDenyFrame(DenyReason.Unreachable, "local only")));
    }

    [Fact]
    public void OversizeIsCheckedBeforeAnythingElse() => AssertDropped(DecodeStatus.TooLarge, new byte[5000]);

    [Theory]
    [InlineData('X', 'H')]
    [InlineData('W', 'X')]
    [InlineData('H', 'W')]
    [InlineData('w', 'h')]
    public void WrongMagicIsBadMagic(char m0, char m1)
    {
        var bytes = WireCodec.Encode(Samples.Header, new PingFrame(1));
        bytes[0] = (byte)m0;
        bytes[1] = (byte)m1;

        AssertDropped(DecodeStatus.BadMagic, bytes);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(255)]
    public void OtherVersionIsUnsupportedVersion(byte version)
    {
        var bytes = WireCodec.Encode(Samples.Header, new PingFrame(1));
        bytes[2] = version;

        AssertDropped(DecodeStatus.UnsupportedVersion, bytes);
        Assert.True(WireCodec.TryPeekVersion(bytes, out var peeked));
        Assert.Equal(version, peeked);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0x80)]
    [InlineData(255)]
    public void NonZeroEnvelopeIsUnsupportedEnvelope(byte envelope)
    {
        var bytes = WireCodec.Encode(Samples.Header, new PingFrame(1));
        bytes[3] = envelope;

        AssertDropped(DecodeStatus.UnsupportedEnvelope, bytes);
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x0a)]
    [InlineData(0x0f)]
    [InlineData(0x15)]
    [InlineData(0xff)]
    public void UnknownFrameTypeIsUnknownFrameType(byte type) =>
        AssertDropped(DecodeStatus.UnknownFrameType, Wire.Datagram(Wire.Frame(type, new Bytes().U64(1).ToArray())));

    [Fact]
    public void UnknownFrameAfterAValidFrameDropsTheWholeDatagram() =>
        AssertDropped(DecodeStatus.UnknownFrameType, Wire.Datagram(Wire.Frame(FrameType.Ping, new Bytes().U64(1)), Wire.Frame(0x20, [])));

    [Fact]
    public void FrameLengthBeyondTheDataIsTruncated() =>
        AssertDropped(DecodeStatus.Truncated, Wire.Datagram(new Bytes().U8((byte)FrameType.Ping).U16(9).U64(1).ToArray()));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void IncompleteFrameHeaderIsTruncated(int headerBytes) =>
        AssertDropped(DecodeStatus.Truncated, Wire.Datagram(Wire.Frame(FrameType.Ping, new Bytes().U64(1)), new byte[] { 0x06, 0x00 }[..headerBytes]));

    [Fact]
    public void TrailingBytesInsideAFrameBodyAreMalformed() =>
        AssertFrameMalformed(FrameType.Ping, new Bytes().U64(1).U8(0));

    [Theory]
    [InlineData(FrameType.Chunk)]
    [InlineData(FrameType.PrivateChunk)]
    [InlineData(FrameType.Ack)]
    [InlineData(FrameType.Nack)]
    [InlineData(FrameType.Intro)]
    [InlineData(FrameType.Ping)]
    [InlineData(FrameType.Pong)]
    [InlineData(FrameType.Leave)]
    [InlineData(FrameType.Evicted)]
    [InlineData(FrameType.JoinRequest)]
    [InlineData(FrameType.JoinAccept)]
    [InlineData(FrameType.JoinDeny)]
    [InlineData(FrameType.Lease)]
    public void EmptyFrameBodyIsMalformed(FrameType type) => AssertFrameMalformed(type, new Bytes());

    [Theory]
    [MemberData(nameof(Samples.FrameNames), MemberType = typeof(Samples))]
    public void FrameBodyCutShortWithAConsistentLengthIsMalformed(string name)
    {
        var encoded = WireCodec.Encode(Samples.Header, Samples.Frames[name]);
        var body = encoded[(WireCodec.HeaderSize + WireCodec.FrameHeaderSize)..];

        for (var length = 0; length < body.Length; length++)
        {
            var status = Wire.Decode(Wire.Datagram(Wire.Frame(encoded[WireCodec.HeaderSize], body[..length]))).Status;
            Assert.True(status == DecodeStatus.Malformed, $"body cut at {length} of {body.Length}: got {status}");
        }
    }

    // ------------------------------------------------------------------ varints

    [Theory]
    [InlineData("8000")] // 0 in two bytes
    [InlineData("8100")] // 1 in two bytes
    [InlineData("ff8000")] // 127 in three bytes
    [InlineData("80808080808080808000")] // zero continued to ten bytes
    public void NonMinimalVarintIsMalformed(string hex) =>
        AssertFrameMalformed(FrameType.Leave, new Bytes().Raw(Convert.FromHexString(hex)));

    [Theory]
    [InlineData("ffffffffffffffffff02")] // 2^64: the tenth byte carries more than one bit
    [InlineData("ffffffffffffffffff7f")]
    [InlineData("8080808080808080808001")] // eleven bytes
    [InlineData("ffffffffffffffffff8100")] // tenth byte continues
    public void OverlongOrOverflowingVarintIsMalformed(string hex) =>
        AssertFrameMalformed(FrameType.Leave, new Bytes().Raw(Convert.FromHexString(hex)));

    [Theory]
    [InlineData("80")]
    [InlineData("ffff")]
    public void VarintCutByTheFrameEndIsMalformed(string hex) =>
        AssertFrameMalformed(FrameType.Leave, new Bytes().Raw(Convert.FromHexString(hex)));

    [Fact]
    public void NonMinimalVarintInsideAChunkIsMalformed() =>
        AssertFrameMalformed(FrameType.PrivateChunk, new Bytes().Raw(0x81, 0x00).U8(0).Varint(0));

    // ------------------------------------------------------------------ chunks

    [Fact]
    public void ChunkFromOriginZeroIsMalformed() =>
        AssertFrameMalformed(FrameType.Chunk, new Bytes().U8(0).U64(0).Varint(1).Varint(0));

    [Fact]
    public void ChunkWithSequenceZeroIsMalformed()
    {
        AssertFrameMalformed(FrameType.Chunk, new Bytes().U8(0).U64(1).Varint(0).Varint(0));
        AssertFrameMalformed(FrameType.PrivateChunk, new Bytes().Varint(0).U8(0).Varint(0));
    }

    [Theory]
    [InlineData(0x04)]
    [InlineData(0x10)]
    [InlineData(0x80)]
    [InlineData(0xff)]
    public void ChunkWithUnknownFlagBitsIsMalformed(byte flags)
    {
        AssertFrameMalformed(FrameType.Chunk, new Bytes().U8(flags).U64(1).Varint(1).Varint(0));
        AssertFrameMalformed(FrameType.PrivateChunk, new Bytes().Varint(1).U8(flags).Varint(0));
    }

    [Fact]
    public void APrivateChunkCannotContinueAStream() =>
        AssertFrameMalformed(FrameType.PrivateChunk, new Bytes().Varint(1).U8((byte)ChunkFlags.Next).Varint(0));

    [Fact]
    public void FirstChunkWithoutItsDepsClockIsMalformed() =>
        AssertFrameMalformed(FrameType.PrivateChunk, new Bytes().Varint(1).U8((byte)ChunkFlags.First));

    [Fact]
    public void PayloadLengthBeyondTheFrameIsMalformed() =>
        AssertFrameMalformed(FrameType.PrivateChunk, new Bytes().Varint(1).U8(0).Varint(5).Raw(1, 2, 3));

    [Fact]
    public void PayloadLengthAboveTheDatagramLimitIsMalformed() =>
        AssertFrameMalformed(FrameType.PrivateChunk, new Bytes().Varint(1).U8(0).Varint(WireCodec.MaxDatagramSize + 1));

    // ------------------------------------------------------------------ vector clocks

    [Fact]
    public void ClockIdsEqualAreMalformed() =>
        AssertFrameMalformed(FrameType.Ack, new Bytes().U8(2).U64(5).Varint(1).U64(5).Varint(2).Varint(0));

    [Fact]
    public void ClockIdsDescendingAreMalformed() =>
        AssertFrameMalformed(FrameType.Ack, new Bytes().U8(2).U64(6).Varint(1).U64(5).Varint(2).Varint(0));

    [Fact]
    public void ClockIdZeroIsMalformed() =>
        AssertFrameMalformed(FrameType.Ack, new Bytes().U8(1).U64(0).Varint(1).Varint(0));

    [Fact]
    public void ClockWithSixtyFourEntriesIsAcceptedAndSixtyFiveIsMalformed()
    {
        static Bytes AckWith(int count)
        {
            var b = new Bytes().U8((byte)count);
            for (var i = 1; i <= count; i++)
            {
                b.U64((ulong)i).Varint(1);
            }

            return b.Varint(0);
        }

        AssertFrameOk(FrameType.Ack, AckWith(VectorClock.MaxEntries));
        AssertFrameMalformed(FrameType.Ack, AckWith(VectorClock.MaxEntries + 1));
    }

    [Fact]
    public void ClockCountBeyondTheEntriesPresentIsMalformed() =>
        AssertFrameMalformed(FrameType.Ack, new Bytes().U8(3).U64(1).Varint(1).Varint(0));

    // ------------------------------------------------------------------ nacks

    [Fact]
    public void NackWithThirtyTwoRangesIsAcceptedAndZeroOrThirtyThreeAreMalformed()
    {
        static Bytes NackWith(int count)
        {
            var b = new Bytes().U8(0).U64(7).U8((byte)count);
            for (var i = 0; i < count; i++)
            {
                b.Varint((ulong)(i * 10) + 1).Varint(3);
            }

            return b;
        }

        AssertFrameOk(FrameType.Nack, NackWith(NackFrame.MaxRanges));
        AssertFrameMalformed(FrameType.Nack, NackWith(0));
        AssertFrameMalformed(FrameType.Nack, NackWith(NackFrame.MaxRanges + 1));
    }

    [Fact]
    public void NackForAnUnknownStreamIsMalformed() =>
        AssertFrameMalformed(FrameType.Nack, new Bytes().U8(2).U64(7).U8(1).Varint(1).Varint(0));

    [Fact]
    public void NackRangeStartingAtZeroIsMalformed() =>
        AssertFrameMalformed(FrameType.Nack, new Bytes().U8(0).U64(7).U8(1).Varint(0).Varint(0));

    [Fact]
    public void NackRangeOverflowingSixtyFourBitsIsMalformed() =>
        AssertFrameMalformed(FrameType.Nack, new Bytes().U8(0).U64(7).U8(1).Varint(ulong.MaxValue).Varint(1));

    // ------------------------------------------------------------------ names and strings

    public static TheoryData<string> InvalidUtf8 =>
    [
        "c328", // invalid continuation
        "c0af", // overlong '/'
        "eda080", // UTF-16 surrogate half
        "ff", // never valid
        "e282", // sequence cut short
        "f4908080", // above U+10FFFF
    ];

    [Theory]
    [MemberData(nameof(InvalidUtf8))]
    public void InvalidUtf8NameIsMalformed(string hex)
    {
        var utf8 = Convert.FromHexString(hex);

        AssertFrameMalformed(FrameType.JoinRequest, new Bytes().U8((byte)utf8.Length).Raw(utf8));
        AssertFrameMalformed(FrameType.Lease, new Bytes().U8((byte)utf8.Length).Raw(utf8).U8(0).Varint(0));
        AssertFrameMalformed(FrameType.JoinDeny, new Bytes().U8(0).U16((ushort)utf8.Length).Raw(utf8));
    }

    [Theory]
    [InlineData("")]
    [InlineData("bad name!")]
    [InlineData("../etc")]
    [InlineData("Zoë")]
    [InlineData("123456789012345678901234567890123")]
    public void MemberNameBreakingTheRuleIsMalformedWhereverAMemberIsNamed(string name)
    {
        AssertFrameMalformed(FrameType.Intro, new Bytes().U8(0).ShortString(name).Endpoint(V4).Varint(0).U8(0).U8(0).Varint(0));
        AssertFrameMalformed(FrameType.Lease, new Bytes().ShortString(name).U8(0).Varint(0));
        AssertFrameMalformed(FrameType.JoinAccept, new Bytes().Endpoint(V4).U8(1).Member(1, name, V4).Varint(0));
        AssertFrameMalformed(FrameType.Intro, new Bytes().U8(0).ShortString("ok").Endpoint(V4).Varint(0).U8(1).Member(1, name, V4).U8(0).Varint(0));
    }

    [Fact]
    public void JoinRequestNameIsLeftForTheServerToJudge()
    {
        var request = Assert.IsType<JoinRequestFrame>(Wire.DecodeSingle(Wire.Datagram(Wire.Frame(FrameType.JoinRequest, new Bytes().ShortString("bad name!")))));

        Assert.Equal("bad name!", request.Name);
    }

    [Fact]
    public void DenyMessageOf512BytesIsAcceptedAnd513IsMalformed()
    {
        AssertFrameOk(FrameType.JoinDeny, new Bytes().U8(1).String(new string('x', WireCodec.MaxDenyMessageBytes)));
        AssertFrameMalformed(FrameType.JoinDeny, new Bytes().U8(1).String(new string('x', WireCodec.MaxDenyMessageBytes + 1)));
    }

    [Theory]
    [InlineData(5)]
    [InlineData((byte)DenyReason.Unreachable)]
    [InlineData(0xff)]
    public void DenyReasonOutsideTheWireSetIsMalformed(byte reason) =>
        AssertFrameMalformed(FrameType.JoinDeny, new Bytes().U8(reason).String("x"));

    // ------------------------------------------------------------------ member lists and endpoints

    private static Bytes Members(int count)
    {
        var b = new Bytes().U8((byte)count);
        for (var i = 1; i <= count; i++)
        {
            b.Member((ulong)i, $"m{i}", V4);
        }

        return b;
    }

    [Fact]
    public void SixteenMembersAreAcceptedAndSeventeenAreMalformed()
    {
        AssertFrameOk(FrameType.JoinAccept, new Bytes().Endpoint(V4).Raw(Members(16).ToArray()).Varint(1));
        AssertFrameMalformed(FrameType.JoinAccept, new Bytes().Endpoint(V4).Raw(Members(17).ToArray()).Varint(1));
        AssertFrameOk(FrameType.Lease, new Bytes().ShortString("me").Raw(Members(16).ToArray()).Varint(1));
        AssertFrameMalformed(FrameType.Lease, new Bytes().ShortString("me").Raw(Members(17).ToArray()).Varint(1));
        AssertFrameOk(FrameType.Intro, new Bytes().U8(1).ShortString("me").Endpoint(V4).Varint(3).Raw(Members(16).ToArray()).U8(0).Varint(1));
        AssertFrameMalformed(FrameType.Intro, new Bytes().U8(1).ShortString("me").Endpoint(V4).Varint(3).Raw(Members(17).ToArray()).U8(0).Varint(1));
    }

    [Fact]
    public void AnIntroListsAtMostSixteenDepartedMembers()
    {
        static Bytes Departed(int count)
        {
            var b = new Bytes().U8((byte)count);
            for (var i = 1; i <= count; i++)
            {
                b.U64((ulong)i).Varint(5);
            }

            return b;
        }

        AssertFrameOk(FrameType.Intro, new Bytes().U8(0).ShortString("me").Endpoint(V4).Varint(3).U8(0).Raw(Departed(16).ToArray()).Varint(1));
        AssertFrameMalformed(FrameType.Intro, new Bytes().U8(0).ShortString("me").Endpoint(V4).Varint(3).U8(0).Raw(Departed(17).ToArray()).Varint(1));
    }

    [Theory]
    [InlineData(0, 1UL)] // an empty view
    [InlineData(17, 1UL)] // more members than a group can hold
    [InlineData(3, 0UL)] // no senior member
    public void AnEvictedNoticeNeedsAViewOfOneToSixteenAndASeniorMember(byte size, ulong senior) =>
        AssertFrameMalformed(FrameType.Evicted, new Bytes().U8(size).Varint(0).U64(senior));

    [Fact]
    public void AnEvictedNoticeWithAPlausibleViewIsAccepted() =>
        AssertFrameOk(FrameType.Evicted, new Bytes().U8(16).Varint(5).U64(7));

    [Fact]
    public void MemberWithIdZeroIsMalformed() =>
        AssertFrameMalformed(FrameType.JoinAccept, new Bytes().Endpoint(V4).U8(1).Member(0, "zero", V4));

    [Fact]
    public void MemberCountBeyondTheRecordsPresentIsMalformed() =>
        AssertFrameMalformed(FrameType.JoinAccept, new Bytes().Endpoint(V4).U8(2).Member(1, "one", V4));

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(46)] // AF_INET6 on some systems: only 4 and 6 are spoken
    public void EndpointOfUnknownFamilyIsMalformed(byte family) =>
        AssertFrameMalformed(FrameType.JoinAccept, new Bytes().U8(family).Raw(new byte[16]).U16(1).U8(0));

    [Fact]
    public void Ipv6EndpointWithOnlyFourAddressBytesIsMalformed() =>
        AssertFrameMalformed(FrameType.JoinAccept, new Bytes().U8(6).Raw(127, 0, 0, 1).U16(1).U8(0));

    [Fact]
    public void IntroWithUnknownFlagBitsIsMalformed() =>
        AssertFrameMalformed(FrameType.Intro, new Bytes().U8(0x02).ShortString("me").Endpoint(V4).Varint(0).U8(0));
}
