using System.Net;

namespace Whisper.Net;

/// <summary>
/// Testing aid: wraps another <see cref="IDatagramTransport"/> and, with seeded randomness, drops outgoing
/// and/or incoming datagrams, duplicates outgoing ones, and delays some outgoing ones so that later datagrams
/// overtake them (<see cref="FaultOptions"/>). It never corrupts. Outgoing and incoming decisions use separate
/// generators (derived from one seed) because the sender and the receiver run on different threads; every
/// decision about a datagram (including its delay) is drawn in <see cref="Send"/>, so the decisions depend on
/// the seed and the sequence of datagrams only, not on timer timing. Not meant for production use.
/// <para>A delayed datagram is copied and sent by a timer of the <see cref="TimeProvider"/>; sends to the inner
/// transport are serialized by a lock so it still never sees two concurrent sends. Delayed datagrams still
/// pending at disposal are discarded (lost, as in a real network).</para>
/// </summary>
public sealed class FaultInjectingTransport : IDatagramTransport, IBlockingDatagramReceiver
{
    private readonly IDatagramTransport _inner;
    private readonly FaultOptions _faults;
    private readonly Random _sendRandom;
    private readonly Random _receiveRandom;
    private readonly TimeProvider _time;
    private readonly Lock _sendGate = new();
    private readonly HashSet<ITimer> _pending = [];
    private long _droppedOutgoing;
    private long _droppedIncoming;
    private long _duplicated;
    private long _delayed;
    private bool _disposed;

    public FaultInjectingTransport(IDatagramTransport inner, FaultOptions faults)
        : this(inner, faults, TimeProvider.System)
    {
    }

    /// <summary>Like the other constructor, with the clock that times delayed datagrams.</summary>
    public FaultInjectingTransport(IDatagramTransport inner, FaultOptions faults, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(faults);
        ArgumentNullException.ThrowIfNull(time);
        faults.Validate();
        _inner = inner;
        _faults = faults;
        _time = time;
        _sendRandom = new Random(faults.Seed);
        _receiveRandom = new Random(unchecked((faults.Seed * 31) + 17));
    }

    public IPEndPoint LocalEndpoint => _inner.LocalEndpoint;

    public FaultOptions Faults => _faults;

    /// <summary>Outgoing datagrams dropped on purpose.</summary>
    public long DroppedOutgoing => Interlocked.Read(ref _droppedOutgoing);

    /// <summary>Incoming datagrams dropped on purpose.</summary>
    public long DroppedIncoming => Interlocked.Read(ref _droppedIncoming);

    /// <summary>Outgoing datagrams sent twice on purpose.</summary>
    public long Duplicated => Interlocked.Read(ref _duplicated);

    /// <summary>Outgoing datagrams held back on purpose and sent later (or discarded at disposal).</summary>
    public long Delayed => Interlocked.Read(ref _delayed);

    public bool Send(ReadOnlySpan<byte> datagram, IPEndPoint destination)
    {
        if (Draw(_sendRandom, _faults.DropOutgoing))
        {
            Interlocked.Increment(ref _droppedOutgoing);
            return true; // lost "in the network": the sender cannot tell
        }

        if (_faults.DelaysOutgoing && Draw(_sendRandom, _faults.DelayOutgoing))
        {
            var twice = Draw(_sendRandom, _faults.DuplicateOutgoing);
            var delay = TimeSpan.FromTicks(1 + (long)(_sendRandom.NextDouble() * _faults.MaxDelay.Ticks));
            Schedule(new DelayedDatagram(this, datagram.ToArray(), destination, twice), delay);
            return true; // in flight: the sender cannot tell it will arrive late
        }

        lock (_sendGate)
        {
            var sent = _inner.Send(datagram, destination);
            if (sent && Draw(_sendRandom, _faults.DuplicateOutgoing))
            {
                Interlocked.Increment(ref _duplicated);
                _inner.Send(datagram, destination);
            }

            return sent;
        }
    }

    public async ValueTask<ReceivedDatagram> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        // Each iteration awaits a real datagram, so dropping never spins.
        while (true)
        {
            var received = await _inner.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (!Draw(_receiveRandom, _faults.DropIncoming))
            {
                return received;
            }

            Interlocked.Increment(ref _droppedIncoming);
        }
    }

    public bool SupportsBlockingReceive => _inner is IBlockingDatagramReceiver { SupportsBlockingReceive: true };

    public bool TryReceive(Span<byte> buffer, TimeSpan timeout, out ReceivedDatagram received) =>
        TryReceive(buffer, timeout, TimeSpan.Zero, out received);

    public bool TryReceive(Span<byte> buffer, TimeSpan timeout, TimeSpan slack, out ReceivedDatagram received)
    {
        var blocking = _inner as IBlockingDatagramReceiver ?? throw new NotSupportedException($"{_inner} has no blocking receive");
        // A dropped datagram does not restart the wait: the caller's deadline (its next timer) holds.
        var started = _time.GetTimestamp();
        var left = timeout;
        while (blocking.TryReceive(buffer, left, slack, out received)) // each iteration takes a real datagram: never spins
        {
            if (received.Length == 0 || !Draw(_receiveRandom, _faults.DropIncoming)) // a wake-up is never dropped (nor drawn for)
            {
                return true;
            }

            Interlocked.Increment(ref _droppedIncoming);
            left = timeout - _time.GetElapsedTime(started) is var rest && rest > TimeSpan.Zero ? rest : TimeSpan.Zero; // zero: only what is already there
        }

        return false;
    }

    public void Wake() => (_inner as IBlockingDatagramReceiver)?.Wake();

    public ValueTask DisposeAsync()
    {
        ITimer[] pending;
        lock (_sendGate)
        {
            _disposed = true;
            pending = [.. _pending];
            _pending.Clear();
        }

        foreach (var timer in pending)
        {
            timer.Dispose();
        }

        return _inner.DisposeAsync();
    }

    public override string ToString() => _faults.DelaysOutgoing
        ? $"faults(drop-out={_faults.DropOutgoing}, drop-in={_faults.DropIncoming}, dup={_faults.DuplicateOutgoing}, delay={_faults.DelayOutgoing} up to {_faults.MaxDelay.TotalMilliseconds} ms, seed={_faults.Seed}) over {_inner}"
        : $"faults(drop-out={_faults.DropOutgoing}, drop-in={_faults.DropIncoming}, dup={_faults.DuplicateOutgoing}, seed={_faults.Seed}) over {_inner}";

    private void Schedule(DelayedDatagram delayed, TimeSpan delay)
    {
        lock (_sendGate)
        {
            if (_disposed)
            {
                return;
            }

            Interlocked.Increment(ref _delayed);
            // Created under the lock, so the callback (which takes the lock) always finds its timer registered.
            delayed.Timer = _time.CreateTimer(static s => ((DelayedDatagram)s!).Fire(), delayed, delay, Timeout.InfiniteTimeSpan);
            _pending.Add(delayed.Timer);
        }
    }

    private void SendDelayed(DelayedDatagram delayed)
    {
        lock (_sendGate)
        {
            if (delayed.Timer is { } timer)
            {
                _pending.Remove(timer);
                timer.Dispose();
            }

            if (_disposed)
            {
                return;
            }

            try
            {
                if (_inner.Send(delayed.Bytes, delayed.Destination) && delayed.Twice)
                {
                    Interlocked.Increment(ref _duplicated);
                    _inner.Send(delayed.Bytes, delayed.Destination);
                }
            }
            catch (ObjectDisposedException)
            {
                // the inner transport closed first: the datagram is lost, as in a real network
            }
        }
    }

    private static bool Draw(Random random, double probability) =>
        probability > 0 && (probability >= 1 || random.NextDouble() < probability);

    private sealed class DelayedDatagram(FaultInjectingTransport owner, byte[] bytes, IPEndPoint destination, bool twice)
    {
        public byte[] Bytes => bytes;

        public IPEndPoint Destination => destination;

        public bool Twice => twice;

        public ITimer? Timer { get; set; }

        public void Fire() => owner.SendDelayed(this);
    }
}
