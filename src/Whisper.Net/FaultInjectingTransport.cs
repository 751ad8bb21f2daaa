using System.Net;

namespace Whisper.Net;

/// <summary>
/// Testing aid: wraps another <see cref="IDatagramTransport"/> and, with seeded randomness, drops outgoing
/// and/or incoming datagrams and duplicates outgoing ones (<see cref="FaultOptions"/>). It never reorders or
/// corrupts. Outgoing and incoming decisions use separate generators (derived from one seed) because the
/// sender and the receiver run on different threads. Not meant for production use.
/// </summary>
public sealed class FaultInjectingTransport : IDatagramTransport
{
    private readonly IDatagramTransport _inner;
    private readonly FaultOptions _faults;
    private readonly Random _sendRandom;
    private readonly Random _receiveRandom;
    private long _droppedOutgoing;
    private long _droppedIncoming;
    private long _duplicated;

    public FaultInjectingTransport(IDatagramTransport inner, FaultOptions faults)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(faults);
        faults.Validate();
        _inner = inner;
        _faults = faults;
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

    public bool Send(ReadOnlySpan<byte> datagram, IPEndPoint destination)
    {
        if (Draw(_sendRandom, _faults.DropOutgoing))
        {
            Interlocked.Increment(ref _droppedOutgoing);
            return true; // lost "in the network": the sender cannot tell
        }

        var sent = _inner.Send(datagram, destination);
        if (sent && Draw(_sendRandom, _faults.DuplicateOutgoing))
        {
            Interlocked.Increment(ref _duplicated);
            _inner.Send(datagram, destination);
        }

        return sent;
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

    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    public override string ToString() =>
        $"faults(drop-out={_faults.DropOutgoing}, drop-in={_faults.DropIncoming}, dup={_faults.DuplicateOutgoing}, seed={_faults.Seed}) over {_inner}";

    private static bool Draw(Random random, double probability) =>
        probability > 0 && (probability >= 1 || random.NextDouble() < probability);
}
