using CsCheck;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests;

/// <summary>
/// Chunks after the first in a datagram write their deps as a delta against the deps before them (docs/protocol.md,
/// "Delta deps"): a busy member's consecutive messages share almost their whole vector clock, which was most of a
/// 100-byte message's chunk. The delta is an encoding only: every decoded chunk carries its full clock.
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
        var delta = WireCodec.FrameSize(second, first.Deps);
        Assert.True(full - delta >= 90, $"a 10-member clock costs {full} bytes in full and {delta} as a delta");
        Assert.Equal(WireCodec.HeaderSize + WireCodec.FrameSize(first) + delta + WireCodec.FrameSize(third, second.Deps), bytes.Length);
    }

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
        Assert.Equal(WireCodec.FrameSize(frames[3]), WireCodec.FrameSize(frames[3], grown)); // cannot remove Alice and Carol
    }

    [Fact]
    public void AnyRunOfChunksRoundTripsAndIsNeverLongerThanWithFullClocks()
    {
        var id = Gen.Int[1, 12].Select(static i => new MemberId((ulong)i * 0x0101_0101UL));
        var clock = Gen.Select(id, Gen.Frequency((4, Gen.ULong[0, 300]), (1, Gen.ULong)))
            .Array[0, 12]
            .Select(static entries => VectorClock.From(entries.DistinctBy(static e => e.Item1).Select(static e => new ClockEntry(e.Item1, e.Item2))));
        var chunk = Gen.Select(clock, Gen.Bool, Gen.Int[0, 3]).Select(static t => t.Item3 switch
        {
            0 => (Frame)new ChunkFrame(Samples.Alice, 1, ChunkFlags.First, t.Item1, Samples.Payload(2)),
            1 => new PrivateChunkFrame(1, ChunkFlags.First | ChunkFlags.Last, t.Item1, Samples.Payload(2)),
            2 => new ChunkFrame(Samples.Bob, 2, t.Item2 ? ChunkFlags.Last : ChunkFlags.None, null, Samples.Payload(2)),
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

    private static Bytes ChunkHead(ulong seq, byte flags) => new Bytes().U64(Samples.Alice.Value).Varint(seq).U8(flags);

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
        // replace index 1 (Carol) by 5, add Bob (between Alice and Carol) at 7
        var delta = Wire.Frame(FrameType.Chunk, ChunkHead(2, 7).U8(1).U8(1).Varint(5).U8(1).U64(Samples.Bob.Value).Varint(7).Varint(0));

        var (status, _, frames) = Wire.Decode(Wire.Datagram(BaseChunk(), delta));

        Assert.Equal(DecodeStatus.Ok, status);
        var chunk = Assert.IsType<ChunkFrame>(frames[1]);
        Assert.Equal(ChunkFlags.First | ChunkFlags.Last, chunk.Flags); // the wire-only bit is cleared
        Assert.Equal(Samples.Clock((Samples.Alice, 1), (Samples.Bob, 7), (Samples.Carol, 5)), chunk.Deps);
    }

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
