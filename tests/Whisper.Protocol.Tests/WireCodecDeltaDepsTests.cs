using CsCheck;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests;

/// <summary>
/// Chunks after the first in a datagram refer to the frames before them (docs/protocol.md, "Chunk" and "Delta deps"):
/// their deps are a delta against the deps before them (a busy member's consecutive messages share almost their whole
/// vector clock, which was most of a 100-byte message's chunk), the changed values are small steps, and a chunk that
/// continues the previous chunk's stream leaves out its origin and seq. Encodings only: every decoded chunk carries its
/// full origin, seq and clock.
/// </summary>
public sealed class WireCodecDeltaDepsTests
{
    private static readonly MemberId[] Ten = [.. Enumerable.Range(1, 10).Select(static i => new MemberId(0x1000_0000_0000_0000UL + (ulong)i))];

    private static VectorClock TenMembers(ulong offset) =>
        VectorClock.From(Ten.Select((id, i) => new ClockEntry(id, 1_000 + (ulong)i + offset)));

    private static ChunkFrame Message(ulong seq, VectorClock deps) =>
        new(Ten[0], seq, ChunkFlags.First | ChunkFlags.Last, deps, Samples.Payload(100));

    [Fact]
    public void ConsecutiveMessagesOfABusyMemberShareTheirDepsAndDecodeWithTheirFullClocks()
    {
        var first = Message(1, TenMembers(0));
        var second = Message(2, TenMembers(0).With(Ten[0], 1_001)); // only its own entry moved on
        var third = Message(3, TenMembers(0).With(Ten[0], 1_002).With(Ten[4], 2_000));

        var bytes = WireCodec.Encode(Samples.Header, first, second, third);
        var (status, _, frames) = Wire.Decode(bytes);

        Assert.Equal(DecodeStatus.Ok, status);
        FrameAssert.Equal([first, second, third], frames);
        var full = WireCodec.FrameSize(second);
        var afterFirst = FrameContext.Start.After(first);
        var delta = WireCodec.FrameSize(second, afterFirst);
        Assert.True(full - delta >= 100, $"a 10-member clock, an origin and a seq cost {full} bytes in full and {delta} after the chunk before");
        Assert.Equal(WireCodec.HeaderSize + WireCodec.FrameSize(first) + delta + WireCodec.FrameSize(third, afterFirst.After(second)), bytes.Length);
    }

    [Fact]
    public void AChunkThatContinuesThePreviousChunksStreamLeavesOutItsOriginAndSeq()
    {
        var first = new ChunkFrame(Samples.Alice, 300, ChunkFlags.First, Samples.Clock((Samples.Bob, 2)), Samples.Payload(10));
        var middle = new ChunkFrame(Samples.Alice, 301, ChunkFlags.None, null, Samples.Payload(10));
        var last = new ChunkFrame(Samples.Alice, 302, ChunkFlags.Last, null, Samples.Payload(10));
        var gap = new ChunkFrame(Samples.Alice, 304, ChunkFlags.First | ChunkFlags.Last, Samples.Clock((Samples.Bob, 2)), Samples.Payload(10));
        var other = new ChunkFrame(Samples.Bob, 305, ChunkFlags.First | ChunkFlags.Last, Samples.Clock((Samples.Bob, 2)), Samples.Payload(10));
        Frame[] frames = [first, new AckFrame(VectorClock.Empty, 0), middle, new PrivateChunkFrame(9, ChunkFlags.None, null, Samples.Payload(1)), last, gap, other];

        var bytes = WireCodec.Encode(Samples.Header, frames);
        var (status, _, decoded) = Wire.Decode(bytes);

        Assert.Equal(DecodeStatus.Ok, status);
        FrameAssert.Equal(frames, decoded);
        var context = FrameContext.Start.After(first).After(frames[1]);
        Assert.Equal(WireCodec.FrameSize(middle) - 8 - 2, WireCodec.FrameSize(middle, context)); // acks and private chunks in between do not count
        Assert.Equal(WireCodec.FrameSize(last) - 8 - 2, WireCodec.FrameSize(last, context.After(middle).After(frames[3])));
        var afterLast = context.After(middle).After(frames[3]).After(last);
        Assert.False(afterLast.Continues(gap)); // seq 304 after 302
        Assert.False(afterLast.After(gap).Continues(other)); // another stream
    }

    [Fact]
    public void ValuesThatMovedALittleEitherWayTakeOneByteEach()
    {
        var before = TenMembers(1_000_000); // values that take three bytes as varints
        var after = VectorClock.From(before.Entries.Select(static (e, i) => new ClockEntry(e.Member, i % 2 == 0 ? e.Value + 60 : e.Value - 60)));
        var first = new ChunkFrame(Samples.Alice, 1, ChunkFlags.First | ChunkFlags.Last, before, Samples.Payload(1));
        var second = new ChunkFrame(Samples.Bob, 1, ChunkFlags.First | ChunkFlags.Last, after, Samples.Payload(1));

        var (status, _, decoded) = Wire.Decode(WireCodec.Encode(Samples.Header, first, second));

        Assert.Equal(DecodeStatus.Ok, status);
        FrameAssert.Equal([first, second], decoded);
        var depsBytes = WireCodec.FrameSize(second, FrameContext.Start.After(first)) - WireCodec.FrameSize(new ChunkFrame(Samples.Bob, 1, ChunkFlags.Last, null, Samples.Payload(1)));
        Assert.Equal(2 + (10 * 2), depsBytes); // two counts, then per entry an index and a one-byte change
    }

    [Fact]
    public void AStepOfAnySizeRoundTrips() =>
        Gen.Select(Gen.ULong, Gen.ULong).Sample(
            static (value, baseValue) => Assert.Equal(value, WireCodec.UnZigZag(WireCodec.ZigZag(value, baseValue), baseValue)),
            iter: 10_000);

    [Fact]
    public void ADeltaAddsMembersButAClockThatLostAMemberIsWrittenInFull()
    {
        var before = Samples.Clock((Samples.Alice, 3), (Samples.Carol, 9));
        var grown = Samples.Clock((Samples.Alice, 4), (Samples.Bob, 1), (Samples.Carol, 9));
        var shrunk = Samples.Clock((Samples.Bob, 1));
        Frame[] frames =
        [
            new ChunkFrame(Samples.Carol, 10, ChunkFlags.First | ChunkFlags.Last, before, Samples.Payload(3)),
            new PrivateChunkFrame(5, ChunkFlags.First, grown, Samples.Payload(4)), // private and broadcast chunks share the base
            new PrivateChunkFrame(6, ChunkFlags.Last, null, Samples.Payload(4)), // no deps: the base stays
            new ChunkFrame(Samples.Alice, 4, ChunkFlags.First | ChunkFlags.Last, shrunk, Samples.Payload(5)),
        ];

        var (status, _, decoded) = Wire.Decode(WireCodec.Encode(Samples.Header, frames));

        Assert.Equal(DecodeStatus.Ok, status);
        FrameAssert.Equal(frames, decoded);
        Assert.Equal(WireCodec.FrameSize(frames[3]), WireCodec.FrameSize(frames[3], FrameContext.Start with { Deps = grown })); // cannot remove Alice and Carol
    }

    [Fact]
    public void AnyRunOfChunksRoundTripsAndIsNeverLongerThanWithFullClocks()
    {
        var id = Gen.Int[1, 12].Select(static i => new MemberId((ulong)i * 0x0101_0101UL));
        var clock = Gen.Select(id, Gen.Frequency((4, Gen.ULong[0, 300]), (1, Gen.ULong)))
            .Array[0, 12]
            .Select(static entries => VectorClock.From(entries.DistinctBy(static e => e.Item1).Select(static e => new ClockEntry(e.Item1, e.Item2))));
        // Few origins and sequence numbers, so that chunks often continue the stream of the chunk before them.
        var chunk = Gen.Select(clock, Gen.Bool, Gen.Int[0, 3], Gen.ULong[1, 4]).Select(static t => t.Item3 switch
        {
            0 => (Frame)new ChunkFrame(Samples.Alice, t.Item4, ChunkFlags.First, t.Item1, Samples.Payload(2)),
            1 => new PrivateChunkFrame(1, ChunkFlags.First | ChunkFlags.Last, t.Item1, Samples.Payload(2)),
            2 => new ChunkFrame(t.Item2 ? Samples.Alice : Samples.Bob, t.Item4, t.Item2 ? ChunkFlags.Last : ChunkFlags.None, null, Samples.Payload(2)),
            _ => new AckFrame(t.Item1, 3),
        });

        chunk.Array[1, 8].Sample(frames =>
        {
            var bytes = WireCodec.Encode(Samples.Header, frames);
            var (status, _, decoded) = Wire.Decode(bytes);
            Assert.Equal(DecodeStatus.Ok, status);
            FrameAssert.Equal(frames, decoded);
            Assert.True(bytes.Length <= WireCodec.HeaderSize + frames.Sum(WireCodec.FrameSize));
        }, iter: 3_000);
    }

    // ------------------------------------------------------------------ hostile deltas

    private static Bytes ChunkHead(ulong seq, byte flags) => new Bytes().U8(flags).U64(Samples.Alice.Value).Varint(seq);

    /// <summary>A valid first chunk whose full deps are {Alice: 1, Carol: 2}: the base of the delta after it.</summary>
    private static byte[] BaseChunk() => Wire.Frame(FrameType.Chunk,
        ChunkHead(1, 3).U8(2).U64(Samples.Alice.Value).Varint(1).U64(Samples.Carol.Value).Varint(2).Varint(0));

    private static void AssertMalformed(params byte[][] frames)
    {
        var (status, _, decoded) = Wire.Decode(Wire.Datagram(frames));
        Assert.Equal(DecodeStatus.Malformed, status);
        Assert.Empty(decoded);
    }

    [Fact]
    public void AValidDeltaAfterItsBaseDecodes()
    {
        // replace index 1 (Carol) by 5 (a step of +3 from 2: zigzag 6), add Bob (between Alice and Carol) at 7
        var delta = Wire.Frame(FrameType.Chunk, ChunkHead(2, 7).U8(1).U8(1).Varint(6).U8(1).U64(Samples.Bob.Value).Varint(7).Varint(0));

        var (status, _, frames) = Wire.Decode(Wire.Datagram(BaseChunk(), delta));

        Assert.Equal(DecodeStatus.Ok, status);
        var chunk = Assert.IsType<ChunkFrame>(frames[1]);
        Assert.Equal(ChunkFlags.First | ChunkFlags.Last, chunk.Flags); // the wire-only bit is cleared
        Assert.Equal(Samples.Clock((Samples.Alice, 1), (Samples.Bob, 7), (Samples.Carol, 5)), chunk.Deps);
    }

    [Fact]
    public void AContinuationReadsOriginAndSeqFromTheChunkBefore()
    {
        var next = Wire.Frame(FrameType.Chunk, new Bytes().U8((byte)(ChunkFlags.Next | ChunkFlags.Last)).Varint(0));

        var (status, _, frames) = Wire.Decode(Wire.Datagram(BaseChunk(), Wire.Frame(FrameType.Ping, new Bytes().U64(1)), next));

        Assert.Equal(DecodeStatus.Ok, status);
        var chunk = Assert.IsType<ChunkFrame>(frames[2]);
        Assert.Equal((Samples.Alice, 2UL, ChunkFlags.Last), (chunk.Origin, chunk.Seq, chunk.Flags)); // the wire-only bit is cleared
    }

    [Fact]
    public void AContinuationWithNoChunkBeforeItIsMalformed() =>
        AssertMalformed(
            Wire.Frame(FrameType.PrivateChunk, new Bytes().Varint(1).U8(0).Varint(0)),
            Wire.Frame(FrameType.Chunk, new Bytes().U8((byte)ChunkFlags.Next).Varint(0)));

    [Fact]
    public void AContinuationOfTheLastPossibleSeqIsMalformed() =>
        AssertMalformed(
            Wire.Frame(FrameType.Chunk, ChunkHead(ulong.MaxValue, 0).Varint(0)),
            Wire.Frame(FrameType.Chunk, new Bytes().U8((byte)ChunkFlags.Next).Varint(0)));

    [Fact]
    public void AnEncoderNeverSetsTheContinuationBitItself() =>
        Assert.Throws<ArgumentException>(() => WireCodec.Encode(Samples.Header,
            new ChunkFrame(Samples.Alice, 1, ChunkFlags.Next, null, Samples.Payload(1))));

    [Fact]
    public void ADeltaWithNothingBeforeItIsMalformed() =>
        AssertMalformed(Wire.Frame(FrameType.Chunk, ChunkHead(2, 7).U8(0).U8(0).Varint(0)));

    [Fact]
    public void ADeltaFlagWithoutDepsIsMalformed() =>
        AssertMalformed(BaseChunk(), Wire.Frame(FrameType.Chunk, ChunkHead(2, 4 | 2).Varint(0)));

    [Fact]
    public void AReplacedIndexBeyondTheBaseIsMalformed() =>
        AssertMalformed(BaseChunk(), Wire.Frame(FrameType.Chunk, ChunkHead(2, 7).U8(1).U8(2).Varint(5).U8(0).Varint(0)));

    [Fact]
    public void ReplacedIndexesOutOfOrderAreMalformed() =>
        AssertMalformed(BaseChunk(), Wire.Frame(FrameType.Chunk, ChunkHead(2, 7).U8(2).U8(1).Varint(5).U8(0).Varint(6).U8(0).Varint(0)));

    [Fact]
    public void AnAddedMemberAlreadyInTheBaseIsMalformed() =>
        AssertMalformed(BaseChunk(), Wire.Frame(FrameType.Chunk, ChunkHead(2, 7).U8(0).U8(1).U64(Samples.Carol.Value).Varint(9).Varint(0)));

    [Fact]
    public void AddedMembersOutOfOrderAreMalformed() =>
        AssertMalformed(BaseChunk(), Wire.Frame(FrameType.Chunk,
            ChunkHead(2, 7).U8(0).U8(2).U64(Samples.Bob.Value).Varint(1).U64(Samples.Bob.Value - 1).Varint(1).Varint(0)));

    [Fact]
    public void AnEncoderNeverSetsTheDeltaBitItself() =>
        Assert.Throws<ArgumentException>(() => WireCodec.Encode(Samples.Header,
            new ChunkFrame(Samples.Alice, 1, ChunkFlags.First | ChunkFlags.DeltaDeps, VectorClock.Empty, Samples.Payload(1))));
}
