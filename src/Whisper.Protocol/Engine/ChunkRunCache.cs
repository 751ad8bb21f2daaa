using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Engine;

/// <summary>
/// The encoded bytes of the broadcast chunks that opened the last datagram written, so the datagrams to the other
/// members, which usually open with the very same chunks, copy them instead of encoding them again (a broadcast goes to
/// every member, and encoding a chunk with its delta deps costs more than copying it).
/// <para>
/// A chunk's bytes depend on the chunks before it in its datagram (its deps are a delta against theirs), so only a
/// prefix is reused: the chunks must be the same objects, at the same <see cref="ChunkFrame.Generation"/> (a recycled
/// chunk is another chunk), in the same order from the run's start, and the run must start where no frame with deps
/// came before (after the header and at most an ack). Pure and single-threaded like the engine that owns it.
/// </para>
/// </summary>
internal sealed class ChunkRunCache(int maxBytes)
{
    private const int MaxChunks = 128;
    private readonly byte[] _bytes = new byte[maxBytes];
    private readonly ChunkFrame[] _chunks = new ChunkFrame[MaxChunks];
    private readonly int[] _generations = new int[MaxChunks];
    private readonly int[] _ends = new int[MaxChunks];
    private int _count;

    /// <summary>Chunks in the cached run (for tests).</summary>
    public int Count => _count;

    /// <summary>
    /// Takes from <paramref name="outbox"/> the longest run of chunks that opens the cached run and fits in
    /// <paramref name="room"/> bytes, appending them to <paramref name="taken"/>. Returns how many it took and, in
    /// <paramref name="bytes"/>, their encoded length.
    /// </summary>
    public int TakeMatchingPrefix(FrameQueue outbox, int room, List<Frame> taken, out int bytes)
    {
        var n = 0;
        bytes = 0;
        while (n < _count && _ends[n] <= room && outbox.TryPeek(out var frame)
            && ReferenceEquals(frame, _chunks[n]) && _chunks[n].Generation == _generations[n])
        {
            taken.Add(outbox.Dequeue());
            bytes = _ends[n];
            n++;
        }

        return n;
    }

    /// <summary>The encoded bytes of the first <paramref name="length"/> bytes of the cached run.</summary>
    public ReadOnlySpan<byte> Bytes(int length) => _bytes.AsSpan(0, length);

    /// <summary>Keeps the first <paramref name="count"/> chunks (those just reused) and forgets the rest.</summary>
    public void Truncate(int count)
    {
        for (var i = count; i < _count; i++)
        {
            _chunks[i] = null!; // no reference kept to chunks that may be recycled
        }

        _count = Math.Min(count, _count);
    }

    /// <summary>
    /// Appends a chunk just encoded after the cached run; <paramref name="encoded"/> are its bytes. False (and nothing
    /// appended) when the cache is full.
    /// </summary>
    public bool Append(ChunkFrame chunk, ReadOnlySpan<byte> encoded)
    {
        var start = _count == 0 ? 0 : _ends[_count - 1];
        if (_count == MaxChunks || start + encoded.Length > _bytes.Length)
        {
            return false;
        }

        encoded.CopyTo(_bytes.AsSpan(start));
        _chunks[_count] = chunk;
        _generations[_count] = chunk.Generation;
        _ends[_count] = start + encoded.Length;
        _count++;
        return true;
    }
}
