using BenchmarkDotNet.Attributes;
using Whisper.Protocol;
using Whisper.Protocol.Wire;

namespace Whisper.Bench.Micro;

/// <summary>Encode/decode of the two hottest datagrams: one 100-byte broadcast chunk and one ack, in a 10-member group (decode also with a <see cref="FramePool"/>, as the engine does).</summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private readonly byte[] _buffer = new byte[WireCodec.MaxDatagramSize];
    private readonly List<Frame> _frames = new(4);
    private DatagramHeader _header;
    private Frame[] _chunk = [];
    private Frame[] _ack = [];
    private byte[] _chunkBytes = [];
    private byte[] _ackBytes = [];
    private byte[] _fullBytes = [];
    private readonly FramePool _pool = new();

    [GlobalSetup]
    public void Setup()
    {
        var members = Enumerable.Range(1, 10).Select(i => new MemberId((ulong)i * 0x1000_0001)).ToArray();
        var clock = VectorClock.From(members.Select((m, i) => new ClockEntry(m, (ulong)(1000 + i))));
        _header = new DatagramHeader(members[0], members[1]);
        _chunk = [new ChunkFrame(members[0], 1234, ChunkFlags.First, clock, new byte[100])];
        _ack = [new AckFrame(clock, 77)];
        _chunkBytes = WireCodec.Encode(_header, _chunk);
        _ackBytes = WireCodec.Encode(_header, _ack);

        // A full datagram as a busy sender packs it: 8 one-chunk messages of 100 bytes in a row, each depending on a
        // clock that moved a little since the one before (its own entry and two others), so deps travel as deltas.
        var full = new List<Frame>();
        var values = members.Select((_, i) => (ulong)(1000 + i)).ToArray();
        for (var k = 0; k < 8; k++)
        {
            values[0]++;
            values[1 + (k % 9)] += 3;
            values[1 + ((k + 4) % 9)] += 2;
            var deps = VectorClock.From(members.Select((m, i) => new ClockEntry(m, values[i])));
            full.Add(new ChunkFrame(members[0], 1234 + (ulong)k, ChunkFlags.First | ChunkFlags.Last, deps, new byte[100]));
        }

        _fullBytes = WireCodec.Encode(_header, [.. full]);
    }

    /// <summary>The engine's decode of a full datagram (8 chunks with delta deps, 1.1 KB), per datagram.</summary>
    [Benchmark]
    public DecodeStatus DecodeFullDatagramPooled()
    {
        _frames.Clear();
        var status = WireCodec.TryDecode(_fullBytes, out _, _frames, _pool);
        foreach (var f in _frames)
        {
            _pool.Return((ChunkFrame)f);
        }

        return status;
    }

    [Benchmark]
    public int EncodeChunk() => WireCodec.Encode(_header, _chunk, _buffer);

    [Benchmark]
    public int EncodeAck() => WireCodec.Encode(_header, _ack, _buffer);

    [Benchmark]
    public DecodeStatus DecodeChunk()
    {
        _frames.Clear();
        return WireCodec.TryDecode(_chunkBytes, out _, _frames);
    }

    [Benchmark]
    public DecodeStatus DecodeAck()
    {
        _frames.Clear();
        return WireCodec.TryDecode(_ackBytes, out _, _frames);
    }

    /// <summary>The engine's decode: the chunk is rented from a pool (and returned, as the engine does once it is stable).</summary>
    [Benchmark]
    public DecodeStatus DecodeChunkPooled()
    {
        _frames.Clear();
        var status = WireCodec.TryDecode(_chunkBytes, out _, _frames, _pool);
        _pool.Return((ChunkFrame)_frames[0]);
        return status;
    }

    /// <summary>The engine's decode of an ack: a reused frame and clock (valid until the next decode with the pool).</summary>
    [Benchmark]
    public DecodeStatus DecodeAckPooled()
    {
        _frames.Clear();
        return WireCodec.TryDecode(_ackBytes, out _, _frames, _pool);
    }
}

/// <summary>The vector clock operations on the delivery path (10 members).</summary>
[MemoryDiagnoser]
public class VectorClockBenchmarks
{
    private VectorClock _a = VectorClock.Empty;
    private VectorClock _b = VectorClock.Empty;
    private MemberId _member;
    private ClockEntry[] _entries = [];

    [GlobalSetup]
    public void Setup()
    {
        var members = Enumerable.Range(1, 10).Select(i => new MemberId((ulong)i * 0x1000_0001)).ToArray();
        _a = VectorClock.From(members.Select((m, i) => new ClockEntry(m, (ulong)(1000 + i))));
        _b = _a.With(members[3], 5000);
        _member = members[5];
        _entries = [.. _a.Entries];
    }

    [Benchmark]
    public VectorClock From() => VectorClock.From(_entries);

    [Benchmark]
    public VectorClock With() => _a.With(_member, 2000);

    [Benchmark]
    public CausalOrder Compare() => _a.Compare(_b);

    [Benchmark]
    public bool IsCoveredBy() => _a.IsCoveredBy(static _ => ulong.MaxValue);
}
