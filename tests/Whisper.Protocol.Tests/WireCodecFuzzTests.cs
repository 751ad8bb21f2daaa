using System.Net;
using CsCheck;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests;

/// <summary>
/// Property-based fuzzing of the decoder with CsCheck. A failure prints the seed; replay it by passing
/// <c>seed: "..."</c> to the failing <c>Sample</c> call. Iteration counts are fixed so the run stays a few seconds.
/// </summary>
public sealed class WireCodecFuzzTests
{
    private const long RoundTripIterations = 5_000;
    private const long MutationIterations = 30_000;
    private const long RandomIterations = 30_000;

    // ------------------------------------------------------------------ generators

    private static readonly Gen<ulong> Number = Gen.Frequency(
        (4, Gen.Int[0, 300].Select(static i => (ulong)i)),
        (1, Gen.ULong));

    private static readonly Gen<ulong> PositiveNumber = Number.Select(static v => v == 0 ? 1 : v);

    /// <summary>Mostly a few small ids so clocks and lists collide; sometimes any non-zero id.</summary>
    private static readonly Gen<MemberId> Id = Gen.Frequency(
        (3, Gen.Int[1, 8].Select(static i => new MemberId((ulong)i))),
        (1, Gen.ULong.Select(static v => new MemberId(v == 0 ? 1 : v))));

    private static readonly Gen<VectorClock> Clock = Gen.Select(Id, Number).Array[0, 12]
        .Select(static entries => VectorClock.From(entries.DistinctBy(static e => e.Item1).Select(static e => new ClockEntry(e.Item1, e.Item2))));

    private static readonly Gen<byte[]> Payload = Gen.Byte.Array[0, 200];

    private static readonly Gen<ChunkFlags> Flags = Gen.Int[0, 3].Select(static i => (ChunkFlags)i);

    private static readonly Gen<string> Name = Gen.Char["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."].Array[1, MemberName.MaxLength]
        .Select(static cs => new string(cs));

    /// <summary>Free text with multi-byte UTF-8 (no lone surrogates, which UTF-8 cannot carry).</summary>
    private static readonly Gen<string> Text = Gen.Char["abcXYZ 019!/.-_éüß€名前"].Array[0, 60].Select(static cs => new string(cs));

    private static readonly Gen<IPEndPoint> Endpoint = Gen.Select(
        Gen.Bool, Gen.Byte.Array[4], Gen.Byte.Array[16], Gen.Int[0, 65535],
        static (v6, a4, a16, port) => new IPEndPoint(new IPAddress(v6 ? a16 : a4), port));

    private static readonly Gen<MemberRecord[]> Members = Gen.Select(Id, Name, Endpoint, static (i, n, e) => new MemberRecord(i, n, e)).Array[0, 5];

    private static readonly Gen<Frame> AnyFrame = Gen.OneOf(
        Gen.Select(Id, PositiveNumber, Flags, Clock, Payload,
            static (o, s, f, c, p) => (Frame)new ChunkFrame(o, s, f, (f & ChunkFlags.First) != 0 ? c : null, p)),
        Gen.Select(PositiveNumber, Flags, Clock, Payload,
            static (s, f, c, p) => (Frame)new PrivateChunkFrame(s, f, (f & ChunkFlags.First) != 0 ? c : null, p)),
        Gen.Select(Clock, Number, static (c, p) => (Frame)new AckFrame(c, p)),
        Gen.Select(Gen.Bool, Gen.ULong, Gen.Select(PositiveNumber, Number).Array[1, NackFrame.MaxRanges],
            static (priv, origin, ranges) => (Frame)new NackFrame(
                priv ? StreamKind.Private : StreamKind.Broadcast,
                new MemberId(origin),
                [.. ranges.Select(static r => new SeqRange(r.Item1, r.Item1 + Math.Min(r.Item2, ulong.MaxValue - r.Item1)))])),
        Gen.Select(Gen.Bool, Name, Endpoint, Number, Members, static (r, n, e, b, k) => (Frame)new IntroFrame(r, n, e, b, k)),
        Gen.ULong.Select(static t => (Frame)new PingFrame(t)),
        Gen.Select(Gen.ULong, Gen.ULong).Select(static (t, held) => (Frame)new PongFrame(t, held)),
        Number.Select(static f => (Frame)new LeaveFrame(f)),
        Text.Select(static n => (Frame)new JoinRequestFrame(n)),
        Gen.Select(Endpoint, Members, static (e, m) => (Frame)new JoinAcceptFrame(e, m)),
        Gen.Select(Gen.Int[0, (int)DenyReason.VersionMismatch], Text, static (r, m) => (Frame)new JoinDenyFrame((DenyReason)r, m)),
        Gen.Select(Name, Members, static (n, m) => (Frame)new LeaseFrame(n, m)));

    private static readonly Gen<(DatagramHeader Header, Frame[] Frames)> ValidDatagram =
        Gen.Select(Gen.ULong, Gen.ULong, AnyFrame.Array[1, 4])
            .Where(static (_, _, frames) => WireCodec.HeaderSize + frames.Sum(WireCodec.FrameSize) <= WireCodec.MaxDatagramSize)
            .Select(static (from, to, frames) => (new DatagramHeader(new MemberId(from), new MemberId(to)), frames));

    /// <summary>0 bit flip, 1 truncate, 2 insert, 3 delete, 4 overwrite; position taken modulo the length.</summary>
    private static readonly Gen<(int Kind, int Position, byte Value)[]> Mutations =
        Gen.Select(Gen.Int[0, 4], Gen.Int[0, 1300], Gen.Byte).Array[1, 4];

    // ------------------------------------------------------------------ properties

    [Fact]
    public void RandomValidDatagramsDecodeToTheFramesThatWereEncoded()
    {
        ValidDatagram.Sample(
            d =>
            {
                var bytes = WireCodec.Encode(d.Header, d.Frames);
                var (status, header, frames) = Wire.Decode(bytes);

                Assert.Equal(DecodeStatus.Ok, status);
                Assert.Equal(d.Header, header);
                FrameAssert.Equal(d.Frames, frames);
            },
            iter: RoundTripIterations,
            print: d => WireCodec.Describe(d.Header, d.Frames));
    }

    [Fact]
    public void MutatedValidDatagramsNeverThrowAndWhateverDecodesReencodesIdempotently()
    {
        Gen.Select(ValidDatagram, Mutations).Sample(
            (d, mutations) => AssertDecodesSafelyAndIdempotently(Mutate(WireCodec.Encode(d.Header, d.Frames), mutations)),
            iter: MutationIterations,
            print: t => $"{WireCodec.Describe(t.Item1.Header, t.Item1.Frames)} mutated by [{string.Join(", ", t.Item2)}]");
    }

    [Fact]
    public void RandomBytesNeverThrow()
    {
        Gen.Byte.Array[0, 1300].Sample(
            AssertDecodesSafelyAndIdempotently,
            iter: RandomIterations,
            print: static b => Convert.ToHexString(b));
    }

    [Fact]
    public void RandomFrameBodiesAfterAValidHeaderNeverThrowAndWhateverDecodesReencodesIdempotently()
    {
        var frameTypes = Enum.GetValues<FrameType>();
        var frame = Gen.Select(Gen.Int[0, frameTypes.Length - 1], Gen.Byte.Array[0, 80], (t, body) => Wire.Frame((byte)frameTypes[t], body));

        frame.Array[1, 3].Sample(
            frames => AssertDecodesSafelyAndIdempotently(Wire.Datagram(frames)),
            iter: RandomIterations / 3,
            print: static fs => string.Join(" ", fs.Select(static f => Convert.ToHexString(f))));
    }

    [Fact]
    public void MutatedFrameBodiesWithConsistentLengthsNeverThrowAndWhateverDecodesReencodesIdempotently()
    {
        // Mutating inside each frame body and then fixing the frame length reaches the field validators
        // (counts, ids, names, varints) instead of stopping at the frame header.
        Gen.Select(ValidDatagram, Mutations.Array[1, 4]).Sample(
            (d, mutations) =>
            {
                var frames = d.Frames.Select((f, i) =>
                {
                    var encoded = WireCodec.Encode(d.Header, f);
                    var body = encoded[(WireCodec.HeaderSize + WireCodec.FrameHeaderSize)..];
                    return Wire.Frame(encoded[WireCodec.HeaderSize], i < mutations.Length ? Mutate(body, mutations[i]) : body);
                });
                AssertDecodesSafelyAndIdempotently(Wire.Datagram([.. frames]));
            },
            iter: MutationIterations,
            print: t => $"{WireCodec.Describe(t.Item1.Header, t.Item1.Frames)} bodies mutated by [{string.Join(" / ", t.Item2.Select(static m => string.Join(", ", m)))}]");
    }

    /// <summary>
    /// The decoder contract: no exception; a failed decode adds no frames; a successful decode re-encodes to a
    /// canonical datagram no longer than the input which decodes to the same header and frames and is a
    /// fixed point of decode-then-encode.
    /// </summary>
    private static void AssertDecodesSafelyAndIdempotently(byte[] input)
    {
        var frames = new List<Frame>();
        var status = WireCodec.TryDecode(input, out var header, frames);

        Assert.True(Enum.IsDefined(status));
        if (status != DecodeStatus.Ok)
        {
            Assert.Empty(frames);
            return;
        }

        Assert.NotEmpty(frames);
        var canonical = WireCodec.Encode(header, [.. frames]);
        Assert.True(canonical.Length <= input.Length, $"canonical form {canonical.Length} bytes, input {input.Length} bytes");

        var (again, header2, frames2) = Wire.Decode(canonical);
        Assert.Equal(DecodeStatus.Ok, again);
        Assert.Equal(header, header2);
        FrameAssert.Equal(frames, frames2);
        Assert.Equal(canonical, WireCodec.Encode(header2, [.. frames2]));
    }

    private static byte[] Mutate(byte[] data, (int Kind, int Position, byte Value)[] mutations)
    {
        var bytes = new List<byte>(data);
        foreach (var (kind, position, value) in mutations)
        {
            var at = position % (bytes.Count + 1);
            switch (kind)
            {
                case 0 when bytes.Count > 0:
                    bytes[at % bytes.Count] ^= (byte)(1 << (value & 7));
                    break;
                case 1:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 2:
                    bytes.Insert(at, value);
                    break;
                case 3 when bytes.Count > 0:
                    bytes.RemoveAt(at % bytes.Count);
                    break;
                case 4 when bytes.Count > 0:
                    bytes[at % bytes.Count] = value;
                    break;
            }
        }

        return [.. bytes];
    }
}
