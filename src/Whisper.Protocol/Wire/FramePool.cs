namespace Whisper.Protocol.Wire;

/// <summary>
/// Reusable broadcast <see cref="ChunkFrame"/>s, each with its own payload and dependency buffers, so that a chunk
/// received, stored until stable and released costs no allocation once the pool is warm. Not thread-safe: one pool
/// belongs to one engine (or one decoding loop).
/// <para>
/// Ownership: <see cref="WireCodec.TryDecode(ReadOnlySpan{byte}, out DatagramHeader, List{Frame}, FramePool?)"/> hands
/// the caller the chunks it rented; the caller returns each exactly once when nothing refers to it any more. A chunk
/// must not be used after it was returned; queues that may still hold it compare <see cref="ChunkFrame.Generation"/>.
/// </para>
/// </summary>
/// <remarks>
/// The default bound on free chunks, 16384, covers what one engine can hold at full load (its own send window of 1024
/// chunks plus up to a window from each of 9 other members, about 10,000): with 8192, every swing of a busy group past it
/// dropped the surplus and allocated it again (37 bytes per delivery in the benchmark, 6 with this bound).
/// </remarks>
public sealed class FramePool(int maxPooled = 16384)
{
    private readonly Stack<ChunkFrame> _free = new();
    private readonly List<ReusableAck> _acks = [];
    private int _acksInUse;

    /// <summary>Chunks rented and not yet returned (for tests and diagnostics).</summary>
    public int Outstanding { get; private set; }

    /// <summary>Chunks waiting in the pool.</summary>
    public int Available => _free.Count;

    /// <summary>Decoder side: a new datagram begins; the acks handed out for the previous one are reused from now on.</summary>
    internal void BeginDatagram() => _acksInUse = 0;

    /// <summary>An ack with <paramref name="entries"/> (strictly ascending ids) as its clock, valid until the next datagram.</summary>
    internal AckFrame RentAck(ReadOnlySpan<ClockEntry> entries, ulong privateReceived)
    {
        if (_acksInUse == _acks.Count)
        {
            _acks.Add(new ReusableAck());
        }

        return _acks[_acksInUse++].Fill(entries, privateReceived);
    }

    internal ChunkFrame RentChunk(MemberId origin, ulong seq, ChunkFlags flags, bool hasDeps, ReadOnlySpan<ClockEntry> deps, ReadOnlySpan<byte> payload)
    {
        var chunk = _free.Count > 0 ? _free.Pop() : new ChunkFrame(this);
        if (_free.TryPeek(out var next))
        {
            next.Prefetch(); // the next chunk of this datagram goes there: its buffers load while this one is filled
        }

        chunk.Fill(origin, seq, flags, hasDeps, deps, payload);
        Outstanding++;
        return chunk;
    }

    /// <summary>Returns a chunk this pool handed out; other chunks (built with the public constructor) are ignored.</summary>
    /// <exception cref="InvalidOperationException">The chunk was already returned (an ownership bug: it would be handed out twice).</exception>
    public void Return(ChunkFrame chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        if (chunk.Pool != this)
        {
            return;
        }

        if (chunk.InPool)
        {
            throw new InvalidOperationException($"chunk returned twice: {chunk.Origin}:{chunk.Seq}");
        }

        chunk.Recycle();
        Outstanding--;
        if (_free.Count < maxPooled)
        {
            _free.Push(chunk);
        }
    }
}

/// <summary>
/// An <see cref="AckFrame"/> whose clock is a scratch clock: one exact-length entry array per clock size, so that
/// filling it again allocates nothing once every size in use was seen.
/// </summary>
internal sealed class ReusableAck
{
    private readonly VectorClock _clock = VectorClock.CreateScratch();
    private readonly ClockEntry[]?[] _bySize = new ClockEntry[VectorClock.MaxEntries + 1][];
    private readonly AckFrame _frame;

    public ReusableAck() => _frame = new AckFrame(_clock, 0);

    /// <summary>Copies the non-zero entries of <paramref name="entries"/> (strictly ascending ids) into the clock.</summary>
    public AckFrame Fill(ReadOnlySpan<ClockEntry> entries, ulong privateReceived)
    {
        var nonZero = 0;
        foreach (var e in entries)
        {
            nonZero += e.Value != 0 ? 1 : 0;
        }

        ClockEntry[] exact;
        if (nonZero < _bySize.Length)
        {
            exact = _bySize[nonZero] ??= new ClockEntry[nonZero];
        }
        else
        {
            exact = new ClockEntry[nonZero]; // more entries than a wire clock may carry: the engine's own clock, rare
        }

        var k = 0;
        foreach (var e in entries)
        {
            if (e.Value != 0)
            {
                exact[k++] = e;
            }
        }

        _clock.ResetScratch(exact);
        _frame.Reset(privateReceived);
        return _frame;
    }
}
