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
public sealed class FramePool(int maxPooled = 8192)
{
    private readonly Stack<ChunkFrame> _free = new();

    /// <summary>Chunks rented and not yet returned (for tests and diagnostics).</summary>
    public int Outstanding { get; private set; }

    /// <summary>Chunks waiting in the pool.</summary>
    public int Available => _free.Count;

    internal ChunkFrame RentChunk(MemberId origin, ulong seq, ChunkFlags flags, bool hasDeps, ReadOnlySpan<ClockEntry> deps, ReadOnlySpan<byte> payload)
    {
        var chunk = _free.Count > 0 ? _free.Pop() : new ChunkFrame(this);
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
