using System.Buffers.Binary;
using System.Net;
using System.Text;
using Whisper.Protocol.Wire;
using Xunit;

namespace Whisper.Protocol.Tests;

/// <summary>
/// Builds wire bytes by hand, independently of <see cref="WireWriter"/>, so tests can pin the byte layout
/// of docs/protocol.md and craft inputs the encoder would never produce.
/// </summary>
internal sealed class Bytes
{
    private readonly List<byte> _bytes = [];

    public int Length => _bytes.Count;

    public Bytes U8(byte value)
    {
        _bytes.Add(value);
        return this;
    }

    public Bytes U16(ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        return Raw(b);
    }

    public Bytes U64(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        return Raw(b);
    }

    /// <summary>Minimal unsigned LEB128.</summary>
    public Bytes Varint(ulong value)
    {
        while (value >= 0x80)
        {
            _bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }

        _bytes.Add((byte)value);
        return this;
    }

    public Bytes Raw(params ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            _bytes.Add(b);
        }

        return this;
    }

    /// <summary>u8 length, then the UTF-8 bytes.</summary>
    public Bytes ShortString(string value)
    {
        var utf8 = Encoding.UTF8.GetBytes(value);
        return U8(checked((byte)utf8.Length)).Raw(utf8);
    }

    /// <summary>u16 length, then the UTF-8 bytes.</summary>
    public Bytes String(string value)
    {
        var utf8 = Encoding.UTF8.GetBytes(value);
        return U16(checked((ushort)utf8.Length)).Raw(utf8);
    }

    public Bytes Endpoint(IPEndPoint endpoint)
    {
        var address = endpoint.Address.GetAddressBytes();
        return U8(address.Length == 4 ? (byte)4 : (byte)6).Raw(address).U16((ushort)endpoint.Port);
    }

    /// <summary>A member record: id u64, name, endpoint.</summary>
    public Bytes Member(ulong id, string name, IPEndPoint endpoint) => U64(id).ShortString(name).Endpoint(endpoint);

    public byte[] ToArray() => [.. _bytes];
}

/// <summary>Datagram construction and decoding shortcuts.</summary>
internal static class Wire
{
    public static byte[] Header(MemberId from, MemberId to) =>
        new Bytes().U8((byte)'W').U8((byte)'H').U8(1).U8(0).U64(from.Value).U64(to.Value).ToArray();

    /// <summary>A frame whose length field matches its body.</summary>
    public static byte[] Frame(byte type, byte[] body) => new Bytes().U8(type).U16(checked((ushort)body.Length)).Raw(body).ToArray();

    public static byte[] Frame(FrameType type, Bytes body) => Frame((byte)type, body.ToArray());

    /// <summary>The standard header (<see cref="Samples.Header"/>) followed by the given frames.</summary>
    public static byte[] Datagram(params byte[][] frames)
    {
        var b = new Bytes().Raw(Header(Samples.Header.From, Samples.Header.To));
        foreach (var f in frames)
        {
            b.Raw(f);
        }

        return b.ToArray();
    }

    public static (DecodeStatus Status, DatagramHeader Header, List<Frame> Frames) Decode(ReadOnlySpan<byte> datagram)
    {
        var frames = new List<Frame>();
        var status = WireCodec.TryDecode(datagram, out var header, frames);
        return (status, header, frames);
    }

    /// <summary>Decodes and asserts success, returning the single frame.</summary>
    public static Frame DecodeSingle(byte[] datagram)
    {
        var (status, _, frames) = Decode(datagram);
        Assert.Equal(DecodeStatus.Ok, status);
        return Assert.Single(frames);
    }

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}

/// <summary>One representative of every frame type, several for the types with options.</summary>
internal static class Samples
{
    public static readonly MemberId Alice = new(0x3f2a91c0ffee0001);
    public static readonly MemberId Bob = new(0x77c0d1beef000002);
    public static readonly MemberId Carol = new(0xfedcba9876543210);
    public static readonly DatagramHeader Header = new(Alice, Bob);

    public static readonly IPEndPoint V4 = new(IPAddress.Parse("192.168.1.20"), 50123);
    public static readonly IPEndPoint V6 = new(IPAddress.Parse("2001:db8::1:2"), 65535);
    public static readonly IPEndPoint V6Loopback = new(IPAddress.IPv6Loopback, 0);
    public static readonly IPEndPoint V4MappedV6 = new(IPAddress.Parse("::ffff:10.0.0.7"), 4000);

    public static VectorClock Clock(params (MemberId Member, ulong Value)[] entries) =>
        VectorClock.From(entries.Select(e => new ClockEntry(e.Member, e.Value)));

    public static byte[] Payload(int length) => [.. Enumerable.Range(0, length).Select(i => (byte)(i * 31 + 7))];

    public static readonly IReadOnlyDictionary<string, Frame> Frames = new Dictionary<string, Frame>
    {
        ["chunk-whole-message"] = new ChunkFrame(Alice, 7, ChunkFlags.First | ChunkFlags.Last, Clock((Alice, 6), (Carol, 2)), "hello"u8.ToArray()),
        ["chunk-first"] = new ChunkFrame(Carol, 128, ChunkFlags.First, VectorClock.Empty, Payload(300)),
        ["chunk-middle"] = new ChunkFrame(Carol, 129, ChunkFlags.None, null, Payload(17)),
        ["chunk-last-empty-payload"] = new ChunkFrame(Carol, ulong.MaxValue, ChunkFlags.Last, null, Array.Empty<byte>()),
        ["private-whole-message"] = new PrivateChunkFrame(1, ChunkFlags.First | ChunkFlags.Last, Clock((Bob, 3)), "psst"u8.ToArray()),
        ["private-middle"] = new PrivateChunkFrame(300, ChunkFlags.None, null, Payload(64)),
        ["ack"] = new AckFrame(Clock((Alice, 1), (Bob, 200), (Carol, ulong.MaxValue)), 12),
        ["ack-empty"] = new AckFrame(VectorClock.Empty, 0),
        ["nack-broadcast"] = new NackFrame(StreamKind.Broadcast, Carol, [new SeqRange(1, 1), new SeqRange(5, 9), new SeqRange(ulong.MaxValue - 1, ulong.MaxValue)]),
        ["nack-private"] = new NackFrame(StreamKind.Private, MemberId.None, [new SeqRange(3, 3)]),
        ["intro-reply-requested"] = new IntroFrame(true, "alice", V4, 42, [new MemberRecord(Carol, "carol", V6), new MemberRecord(Bob, "bob.2", V4MappedV6)]),
        ["intro-no-known"] = new IntroFrame(false, "Bob_2", V6Loopback, 0, [], Seniority: 1000),
        ["intro-with-departed"] = new IntroFrame(false, "carol", V4, 3, [], VectorClock.From([new ClockEntry(Bob, 12), new ClockEntry(Carol, 1)])),
        ["ping"] = new PingFrame(ulong.MaxValue),
        ["pong"] = new PongFrame(0x0102030405060708),
        ["pong held back"] = new PongFrame(0x0102030405060708, 4_321),
        ["leave"] = new LeaveFrame(1000),
        ["evicted"] = new EvictedFrame(9, 300, Carol),
        ["evicted-alone"] = new EvictedFrame(1, 0, Alice),
        ["join-request"] = new JoinRequestFrame("alice"),
        ["join-request-name-not-judged-by-codec"] = new JoinRequestFrame("bad name! ünïcode 名前"),
        ["join-accept"] = new JoinAcceptFrame(V4, [new MemberRecord(Bob, "bob", V4), new MemberRecord(Carol, "carol", V6)], 3),
        ["join-accept-first-member"] = new JoinAcceptFrame(V6, []),
        ["join-deny-other"] = new JoinDenyFrame(DenyReason.Other, ""),
        ["join-deny-full"] = new JoinDenyFrame(DenyReason.Full, "the group has 10 members"),
        ["join-deny-name-taken"] = new JoinDenyFrame(DenyReason.NameTaken, "alice is taken"),
        ["join-deny-invalid-name"] = new JoinDenyFrame(DenyReason.InvalidName, MemberName.Rule),
        ["join-deny-version"] = new JoinDenyFrame(DenyReason.VersionMismatch, "server speaks version 1 — ünïcode"),
        ["lease"] = new LeaseFrame("alice", [new MemberRecord(Bob, "bob", V4)], 12),
        ["lease-alone"] = new LeaseFrame("alice", []),
        ["join-forward"] = new JoinForwardFrame(Carol, "carol", V6),
    };

    public static TheoryData<string> FrameNames => [.. Frames.Keys];
}

/// <summary>
/// Field-by-field frame equality. Records holding <see cref="ReadOnlyMemory{T}"/> or lists do not compare
/// structurally, so payload bytes, clock entries and lists are compared explicitly.
/// </summary>
internal static class FrameAssert
{
    public static void Equal(IReadOnlyList<Frame> expected, IReadOnlyList<Frame> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Equal(expected[i], actual[i]);
        }
    }

    public static void Equal(Frame expected, Frame actual)
    {
        Assert.Equal(expected.GetType(), actual.GetType());
        Assert.Equal(expected.Type, actual.Type);
        switch (expected)
        {
            case ChunkFrame e:
                var c = (ChunkFrame)actual;
                Assert.Equal(e.Origin, c.Origin);
                Assert.Equal(e.Seq, c.Seq);
                Assert.Equal(e.Flags, c.Flags);
                ClockEqual(e.Deps, c.Deps);
                Assert.Equal(e.Payload.ToArray(), c.Payload.ToArray());
                break;
            case PrivateChunkFrame e:
                var p = (PrivateChunkFrame)actual;
                Assert.Equal(e.Seq, p.Seq);
                Assert.Equal(e.Flags, p.Flags);
                ClockEqual(e.Deps, p.Deps);
                Assert.Equal(e.Payload.ToArray(), p.Payload.ToArray());
                break;
            case AckFrame e:
                var a = (AckFrame)actual;
                ClockEqual(e.Received, a.Received);
                Assert.Equal(e.PrivateReceived, a.PrivateReceived);
                break;
            case NackFrame e:
                var n = (NackFrame)actual;
                Assert.Equal(e.Stream, n.Stream);
                Assert.Equal(e.Origin, n.Origin);
                Assert.Equal(e.Missing, n.Missing);
                break;
            case IntroFrame e:
                var i = (IntroFrame)actual;
                Assert.Equal(e.ReplyRequested, i.ReplyRequested);
                Assert.Equal(e.Name, i.Name);
                Assert.Equal(e.Endpoint, i.Endpoint);
                Assert.Equal(e.BaseSeq, i.BaseSeq);
                Assert.Equal(e.Known, i.Known);
                ClockEqual(e.Departed ?? VectorClock.Empty, i.Departed ?? VectorClock.Empty);
                Assert.Equal(e.Seniority, i.Seniority);
                break;
            case PingFrame e:
                Assert.Equal(e.Token, ((PingFrame)actual).Token);
                break;
            case PongFrame e:
                Assert.Equal(e.Token, ((PongFrame)actual).Token);
                Assert.Equal(e.HeldMicroseconds, ((PongFrame)actual).HeldMicroseconds);
                break;
            case LeaveFrame e:
                Assert.Equal(e.FinalSeq, ((LeaveFrame)actual).FinalSeq);
                break;
            case JoinRequestFrame e:
                Assert.Equal(e.Name, ((JoinRequestFrame)actual).Name);
                break;
            case JoinAcceptFrame e:
                var j = (JoinAcceptFrame)actual;
                Assert.Equal(e.ObservedEndpoint, j.ObservedEndpoint);
                Assert.Equal(e.Members, j.Members);
                Assert.Equal(e.Seniority, j.Seniority);
                break;
            case JoinDenyFrame e:
                var d = (JoinDenyFrame)actual;
                Assert.Equal(e.Reason, d.Reason);
                Assert.Equal(e.Message, d.Message);
                break;
            case LeaseFrame e:
                var l = (LeaseFrame)actual;
                Assert.Equal(e.Name, l.Name);
                Assert.Equal(e.View, l.View);
                Assert.Equal(e.Seniority, l.Seniority);
                break;
            case EvictedFrame e:
                Assert.Equal(e, (EvictedFrame)actual);
                break;
            case JoinForwardFrame e:
                var f = (JoinForwardFrame)actual;
                Assert.Equal(e.Newcomer, f.Newcomer);
                Assert.Equal(e.Name, f.Name);
                Assert.Equal(e.Endpoint, f.Endpoint);
                break;
            default:
                Assert.Fail($"no comparison for {expected.GetType().Name}");
                break;
        }
    }

    public static void ClockEqual(VectorClock? expected, VectorClock? actual)
    {
        if (expected is null)
        {
            Assert.Null(actual);
            return;
        }

        Assert.NotNull(actual);
        Assert.Equal(expected.Entries, actual.Entries);
    }
}
