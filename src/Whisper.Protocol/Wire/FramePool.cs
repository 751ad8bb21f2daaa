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
/// How many free chunks it keeps follows what the engine needed: <see cref="Trim"/> (the engine calls it every 10 s)
/// gives back the free chunks beyond what the period's peak needed, so a steady load keeps its pool and a past burst
/// stops holding memory. <see cref="DefaultMaxPooled"/> bounds it above the most one engine was seen to hold: 14,100
/// chunks at full load, 25,100 at 10% loss (its own send window, up to a receive window from each other member and the
/// chunks kept until every member has them); with a bound of 16,384 an engine at 10% loss dropped about 20,000 chunks
/// in 5 s past it and allocated them again.
/// </remarks>
public sealed class FramePool(int maxPooled = FramePool.DefaultMaxPooled)
{
    /// <summary>The most free chunks a pool keeps (whatever the last period needed).</summary>
    public const int DefaultMaxPooled = 32768;

    private readonly List<ChunkFrame> _free = []; // a stack: the most recently returned (warmest) chunk is rented first
    private readonly List<ReusableAck> _acks = [];
    private int _acksInUse;
    private int _peakOutstanding; // since the last Trim

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
        ChunkFrame chunk;
        var free = _free.Count;
        if (free > 0)
        {
            chunk = _free[free - 1];
            _free.RemoveAt(free - 1);
            if (free > 1)
            {
                _free[free - 2].Prefetch(); // the next chunk of this datagram goes there: its buffers load while this one is filled
            }
        }
        else
        {
            chunk = new ChunkFrame(this);
        }

        chunk.Fill(origin, seq, flags, hasDeps, deps, payload);
        if (++Outstanding > _peakOutstanding)
        {
            _peakOutstanding = Outstanding;
        }

        return chunk;
    }

    /// <summary>
    /// Gives back the free chunks that the period since the last call did not need: it keeps as many as it takes to reach
    /// that period's peak of rented chunks again (those that came back first, the coldest, go), and starts a new period.
    /// Returns how many it gave back.
    /// </summary>
    public int Trim()
    {
        var keep = Math.Max(0, _peakOutstanding - Outstanding);
        var surplus = _free.Count - keep;
        _peakOutstanding = Outstanding;
        if (surplus <= 0)
        {
            return 0;
        }

        _free.RemoveRange(0, surplus);
        return surplus;
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
            _free.Add(chunk);
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
