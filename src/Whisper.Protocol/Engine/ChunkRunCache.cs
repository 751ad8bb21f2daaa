using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Engine;

/// <summary>
/// The encoded bytes of the broadcast chunks that opened the last datagram written, so the datagrams to the other
/// members, which usually open with the very same chunks, copy them instead of encoding them again (a broadcast goes to
/// every member, and encoding a chunk with its delta deps costs more than copying it).
/// <para>
/// A chunk's bytes depend on the chunk before it in its datagram (its deps are a delta against that one's), so bytes
/// are reused for a stretch of the run: the chunks must be the same objects, at the same
/// <see cref="ChunkFrame.Generation"/> (a recycled chunk is another chunk), in the same order, and either from the run's
/// start (which begins where no frame with deps came before: after the header and at most an ack) or right after a
/// cached chunk the datagram has just carried (a member whose datagrams begin elsewhere in the run: the engine encodes
/// that first chunk afresh, with its deps in full, and copies the rest). Pure and single-threaded like the engine.
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

    /// <summary>Chunks copied instead of encoded, in all (for tests and diagnostics).</summary>
    public long Reused { get; private set; }

    /// <summary>Of <see cref="Reused"/>, those copied after a first chunk encoded afresh (a datagram that began inside the run).</summary>
    public long ReusedInside { get; private set; }

    /// <summary>Where the chunk at the head of <paramref name="outbox"/> sits in the cached run; -1 when it is not there.</summary>
    public int IndexOfHead(FrameQueue outbox)
    {
        if (_count == 0 || !outbox.TryPeek(out var frame) || frame is not ChunkFrame chunk)
        {
            return -1;
        }

        for (var i = 0; i < _count; i++)
        {
            if (ReferenceEquals(chunk, _chunks[i]))
            {
                return _chunks[i].Generation == _generations[i] ? i : -1;
            }
        }

        return -1;
    }

    /// <summary>
    /// Takes from <paramref name="outbox"/> the longest run of chunks that continues the cached run at index
    /// <paramref name="from"/> and fits in <paramref name="room"/> bytes, appending them to <paramref name="taken"/>. The
    /// caller has just written the cached chunk before <paramref name="from"/> (or nothing with deps, for 0), so their
    /// cached bytes are what encoding them would give. Returns how many it took; their bytes are
    /// <see cref="Bytes(int, int)"/> of <paramref name="start"/> and <paramref name="end"/>.
    /// </summary>
    public int TakeRun(int from, FrameQueue outbox, int room, List<Frame> taken, out int start, out int end)
    {
        start = from == 0 ? 0 : _ends[from - 1];
        end = start;
        var n = from;
        while (n < _count && _ends[n] - start <= room && outbox.TryPeek(out var frame)
            && ReferenceEquals(frame, _chunks[n]) && _chunks[n].Generation == _generations[n])
        {
            taken.Add(outbox.Dequeue());
            end = _ends[n];
            n++;
        }

        Reused += n - from;
        ReusedInside += from > 0 ? n - from : 0;
        return n - from;
    }

    /// <summary>Where the bytes of cached chunk <paramref name="index"/> end.</summary>
    public int EndOf(int index) => _ends[index];

    /// <summary>Cached bytes from <paramref name="start"/> to <paramref name="end"/>.</summary>
    public ReadOnlySpan<byte> Bytes(int start, int end) => _bytes.AsSpan(start, end - start);

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
