using System.Diagnostics.CodeAnalysis;
using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Engine;

// Deliveries without allocation: a delivered message's payload and dependencies are copied into two arenas the engine
// reuses, and the event queue holds one shared marker per delivery (so deliveries keep their place among the other
// events). TryPollOutput hands out views into the arenas; TryPollEvent builds the classic DeliveredMessage from them.
public sealed partial class WhisperEngine
{
    private readonly FramePool _pool = new();
    private const int InitialDeliveryBytes = 16 * 1024;
    private const int InitialDeliveryDeps = 256;
    private const int InitialDeliveries = 64;

    /// <summary>How often buffers grown for a burst of deliveries are reviewed (and shrunk when the burst is over).</summary>
    private static readonly TimeSpan DeliveryBufferReview = TimeSpan.FromSeconds(10);

    private Queue<PendingDelivery> _deliveries = new(InitialDeliveries);
    private int _deliveriesCapacity = InitialDeliveries;
    private byte[] _deliveryBytes = new byte[InitialDeliveryBytes];
    private int _deliveryBytesUsed;
    private ClockEntry[] _deliveryDeps = new ClockEntry[InitialDeliveryDeps];
    private int _deliveryDepsUsed;
    private int _deliveryBytesPeak;
    private int _deliveryDepsPeak;
    private int _deliveriesPeak;
    private TimeSpan _deliveryReviewAt;
    private TimeSpan _poolReviewAt;
    private ClockEntry[] _depsScratch = new ClockEntry[VectorClock.MaxEntries];
    private ClockEntry[] _ackScratch = new ClockEntry[VectorClock.MaxEntries];
    private readonly ReusableAck _outgoingAck = new();

    /// <summary>The pool of this engine's broadcast chunks (for tests that prove chunks are returned, and diagnostics).</summary>
    internal FramePool ChunkPool => _pool;

    /// <summary>
    /// The next output for the application without allocating for deliveries: either an event (not a
    /// <see cref="MessageEvent"/>) in <paramref name="engineEvent"/>, or (with <paramref name="engineEvent"/> null) a
    /// delivered message in <paramref name="delivery"/>, whose spans stay valid until the next call into the engine
    /// (this method included). Same order as <see cref="TryPollEvent"/>; use one or the other.
    /// </summary>
    public bool TryPollOutput(out EngineEvent? engineEvent, out DeliveryView delivery)
    {
        delivery = default;
        if (!_events.TryDequeue(out engineEvent))
        {
            return false;
        }

        if (engineEvent is DeliveryMarker)
        {
            engineEvent = null;
            var d = _deliveries.Dequeue();
            delivery = new DeliveryView(
                d.Id, d.From, d.To, _deliveryBytes.AsSpan(d.PayloadAt, d.PayloadLength), _deliveryDeps.AsSpan(d.DepsAt, d.DepsCount));
        }

        return true;
    }

    public bool TryPollEvent([NotNullWhen(true)] out EngineEvent? engineEvent)
    {
        if (!TryPollOutput(out engineEvent, out var d))
        {
            return false;
        }

        engineEvent ??= new MessageEvent(new DeliveredMessage(d.Id, d.From, d.To, d.Payload.ToArray(), VectorClock.From(d.Deps.ToArray())));
        return true;
    }

    /// <summary>Queues a delivery whose payload is written by the caller into the returned span (exactly <paramref name="length"/> bytes).</summary>
    private Span<byte> EnqueueDelivery(MessageId id, MemberRef from, MemberRef? to, int length, ReadOnlySpan<ClockEntry> deps)
    {
        if (_deliveries.Count == 0)
        {
            // Every view handed out so far is out of date (a new call into the engine began): start over.
            _deliveryBytesUsed = 0;
            _deliveryDepsUsed = 0;
        }

        // Growing copies into a new array: views handed out earlier in this round keep the old one, untouched.
        if (_deliveryBytes.Length - _deliveryBytesUsed < length)
        {
            var bigger = new byte[Math.Max(_deliveryBytes.Length * 2, _deliveryBytesUsed + length)];
            _deliveryBytes.AsSpan(0, _deliveryBytesUsed).CopyTo(bigger);
            _deliveryBytes = bigger;
        }

        if (_deliveryDeps.Length - _deliveryDepsUsed < deps.Length)
        {
            var bigger = new ClockEntry[Math.Max(_deliveryDeps.Length * 2, _deliveryDepsUsed + deps.Length)];
            _deliveryDeps.AsSpan(0, _deliveryDepsUsed).CopyTo(bigger);
            _deliveryDeps = bigger;
        }

        deps.CopyTo(_deliveryDeps.AsSpan(_deliveryDepsUsed));
        _deliveries.Enqueue(new PendingDelivery(id, from, to, _deliveryBytesUsed, length, _deliveryDepsUsed, deps.Length));
        var payload = _deliveryBytes.AsSpan(_deliveryBytesUsed, length);
        _deliveryBytesUsed += length;
        _deliveryDepsUsed += deps.Length;
        _deliveryBytesPeak = Math.Max(_deliveryBytesPeak, _deliveryBytesUsed);
        _deliveryDepsPeak = Math.Max(_deliveryDepsPeak, _deliveryDepsUsed);
        _deliveriesPeak = Math.Max(_deliveriesPeak, _deliveries.Count);
        _deliveriesCapacity = Math.Max(_deliveriesCapacity, _deliveries.Count);
        _events.Enqueue(DeliveryMarker.Instance);
        return payload;
    }

    /// <summary>Internal sizes of the delivery buffers (bytes of payload, deps entries, queue entries), for tests.</summary>
    internal (int Bytes, int Deps, int Deliveries) DeliveryBufferSizes => (_deliveryBytes.Length, _deliveryDeps.Length, _deliveriesCapacity);

    /// <summary>
    /// The delivery buffers double to hold the largest burst one delivery pass produced (a repaired gap can release a
    /// whole window at once) and would keep that size for good. Every <see cref="DeliveryBufferReview"/>, with nothing
    /// waiting for the application, a buffer more than four times what the period used goes back to twice that (at least
    /// its initial size): a steady load keeps its buffers, a past burst stops holding memory.
    /// </summary>
    private void ReviewDeliveryBuffers(TimeSpan now)
    {
        if (now < _deliveryReviewAt || _deliveries.Count != 0)
        {
            return;
        }

        _deliveryReviewAt = now + DeliveryBufferReview;
        if (Oversized(_deliveryBytes.Length, _deliveryBytesPeak, InitialDeliveryBytes, out var bytes))
        {
            _deliveryBytes = new byte[bytes];
        }

        if (Oversized(_deliveryDeps.Length, _deliveryDepsPeak, InitialDeliveryDeps, out var deps))
        {
            _deliveryDeps = new ClockEntry[deps];
        }

        if (Oversized(_deliveriesCapacity, _deliveriesPeak, InitialDeliveries, out var entries))
        {
            _deliveriesCapacity = entries;
            _deliveries = new Queue<PendingDelivery>(entries);
        }

        _deliveryBytesUsed = _deliveryDepsUsed = 0; // nothing is waiting: every view handed out is out of date
        _deliveryBytesPeak = _deliveryDepsPeak = _deliveriesPeak = 0;
    }

    /// <summary>Every <see cref="DeliveryBufferReview"/>, the chunk pool gives back what the period's peak did not need (<see cref="FramePool.Trim"/>).</summary>
    private void ReviewChunkPool(TimeSpan now)
    {
        if (now >= _poolReviewAt)
        {
            _poolReviewAt = now + DeliveryBufferReview;
            _pool.Trim();
        }
    }

    /// <summary>A buffer of <paramref name="length"/> is oversized when above four times its period's peak (and its initial size); it shrinks to twice the peak.</summary>
    private static bool Oversized(int length, int peak, int initial, out int size)
    {
        size = Math.Max(initial, 2 * peak);
        return length > 4 * Math.Max(peak, initial);
    }

    /// <summary>Copies a complete message's chunks, in order, into a new delivery.</summary>
    private void EnqueueAssembled<T>(MessageId id, MemberRef from, MemberRef? to, SeqMap<T> chunks, ulong first, ulong last, int total, ReadOnlySpan<ClockEntry> deps)
        where T : class, IMessageChunk
    {
        var payload = EnqueueDelivery(id, from, to, total, deps);
        var offset = 0;
        for (var seq = first; seq <= last; seq++)
        {
            var part = chunks[seq].Payload.Span;
            part.CopyTo(payload[offset..]);
            offset += part.Length;
        }
    }

    /// <summary>
    /// Our delivered clock (the dependencies of our next send), sorted, in a scratch buffer valid until the next call
    /// of this method: <see cref="CurrentClock"/> without allocating.
    /// </summary>
    private ReadOnlySpan<ClockEntry> CurrentClockEntries()
    {
        var k = 0;
        foreach (var o in _originsById) // sorted: every insert is an append
        {
            if (o.BaseKnown && o.Delivered > 0)
            {
                k = InsertSorted(ref _depsScratch, k, new ClockEntry(o.Id, o.Delivered));
            }
        }

        return _depsScratch.AsSpan(0, k);
    }

    /// <summary>Inserts <paramref name="e"/> into the first <paramref name="count"/> entries of <paramref name="scratch"/>, kept sorted by member id (insertion sort: a few dozen entries at most); grows the buffer when full.</summary>
    private static int InsertSorted(ref ClockEntry[] scratch, int count, ClockEntry e)
    {
        if (count == scratch.Length)
        {
            Array.Resize(ref scratch, Math.Max(4, count * 2));
        }

        var j = count - 1;
        while (j >= 0 && scratch[j].Member.Value > e.Member.Value)
        {
            scratch[j + 1] = scratch[j];
            j--;
        }

        scratch[j + 1] = e;
        return count + 1;
    }

    /// <summary>Hands chunks the decoder rented for this datagram and nobody stored back to the pool.</summary>
    private void ReturnUnstoredChunks()
    {
        foreach (var frame in _decoded)
        {
            if (frame is ChunkFrame { Held: false, InPool: false } c && c.Pool == _pool)
            {
                _pool.Return(c);
            }
        }

        _decoded.Clear(); // no reference to a pooled chunk outlives the call
    }

    /// <summary>A stored chunk leaves its stream (stable or retired): back to the pool.</summary>
    private void ReleaseChunk(ChunkFrame chunk)
    {
        chunk.Held = false;
        _pool.Return(chunk);
    }

    private readonly record struct PendingDelivery(MessageId Id, MemberRef From, MemberRef? To, int PayloadAt, int PayloadLength, int DepsAt, int DepsCount);

    /// <summary>Stands in the event queue for the next entry of <see cref="_deliveries"/>.</summary>
    private sealed record DeliveryMarker : EngineEvent
    {
        public static readonly DeliveryMarker Instance = new();
    }
}
