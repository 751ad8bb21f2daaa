using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Cli.Demo;

/// <summary>
/// One incarnation in the demo: its <see cref="WhisperNode"/>, the transport that can "pull the plug", and the
/// deliveries its event reader recorded (in delivery order, timed on the demo's clock). Sends go one at a time
/// (<see cref="SendGate"/>), so the order of <see cref="DemoSend.Index"/> is the order the engine accepted them, and
/// a crash waits for a send in progress.
/// </summary>
internal sealed class DemoPeer
{
    private readonly List<DemoDelivery> _deliveries = [];
    private readonly ConcurrentDictionary<MessageId, byte> _delivered = new();
    private readonly Stopwatch _clock;
    private readonly Lock _gate = new();
    private readonly List<DemoIncarnation> _incarnations = [];
    private readonly Action<DemoPeer, WhisperEvent> _onEvent;
    private MemberId _current;
    private bool _crashed;

    /// <param name="liveFrom">When this incarnation counts as a member for the verifier (see <see cref="DemoIncarnation"/>).</param>
    /// <param name="onEvent">Called from the reader for every event other than a delivery.</param>
    public DemoPeer(int slot, WhisperNode node, PlugTransport plug, FaultInjectingTransport faults, Stopwatch clock, Action<DemoPeer, WhisperEvent> onEvent)
    {
        Slot = slot;
        Node = node;
        Plug = plug;
        Faults = faults;
        _clock = clock;
        _onEvent = onEvent;
        _current = node.Self.Id;
        Reader = Task.Run(ReadAsync);
    }

    /// <summary>Index into <see cref="DemoScript.Names"/>.</summary>
    public int Slot { get; }

    public string Name => DemoScript.Names[Slot];

    public WhisperNode Node { get; }

    public PlugTransport Plug { get; }

    public FaultInjectingTransport Faults { get; }

    /// <summary>The incarnation this peer runs as now (a new one after an eviction and automatic rejoin).</summary>
    public MemberId Id
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    public SemaphoreSlim SendGate { get; } = new(1, 1);

    /// <summary>Set (under <see cref="SendGate"/>) when the demo crashed this incarnation; nobody speaks for it after.</summary>
    public bool Crashed
    {
        get => Volatile.Read(ref _crashed);
        set => Volatile.Write(ref _crashed, value);
    }

    /// <summary>Counters taken just before the crash, or at the end.</summary>
    public WhisperNodeStats? FinalStats { get; set; }

    public Task Reader { get; }

    public bool HasDelivered(MessageId id) => _delivered.ContainsKey(id);

    /// <summary>Starts the record of the current incarnation as a member from <paramref name="liveFrom"/>.</summary>
    public void MarkLive(TimeSpan liveFrom)
    {
        lock (_gate)
        {
            _incarnations.Add(new DemoIncarnation(Name, _current, liveFrom));
        }
    }

    /// <summary>Ends the record of the current incarnation (crashed, or evicted by the group).</summary>
    public void MarkDead(TimeSpan at)
    {
        lock (_gate)
        {
            EndCurrent(at);
        }
    }

    public IReadOnlyList<DemoIncarnation> Incarnations()
    {
        lock (_gate)
        {
            return [.. _incarnations];
        }
    }

    public IReadOnlyList<DemoDelivery> Deliveries()
    {
        lock (_gate)
        {
            return [.. _deliveries];
        }
    }

    private void EndCurrent(TimeSpan at)
    {
        var i = _incarnations.FindLastIndex(x => x.Id == _current);
        if (i >= 0 && _incarnations[i].CrashedAt is null)
        {
            _incarnations[i] = _incarnations[i] with { CrashedAt = at };
        }
    }

    private async Task ReadAsync()
    {
        try
        {
            await foreach (var e in Node.Events.ConfigureAwait(false))
            {
                switch (e)
                {
                    case ChatMessage m:
                        lock (_gate)
                        {
                            _deliveries.Add(new DemoDelivery(_current, m.Id, m.Deps, m.Arrival, _clock.Elapsed));
                        }

                        _delivered.TryAdd(m.Id, 0);
                        break;
                    case Evicted:
                        MarkDead(_clock.Elapsed);
                        _onEvent(this, e);
                        break;
                    case Rejoined r:
                        lock (_gate)
                        {
                            _current = r.Self.Id;
                            _incarnations.Add(new DemoIncarnation(Name, _current, _clock.Elapsed));
                        }

                        _onEvent(this, e);
                        break;
                    default:
                        _onEvent(this, e);
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // the node stopped (a crash ends its loop without a clean leave)
        }
    }
}

/// <summary>
/// Wraps a transport with a plug the demo can pull: after <see cref="Pull"/> nothing leaves and nothing arrives,
/// as if the process died, although the node object still runs until it is disposed.
/// </summary>
internal sealed class PlugTransport(IDatagramTransport inner) : IDatagramTransport
{
    private volatile bool _pulled;

    public IPEndPoint LocalEndpoint => inner.LocalEndpoint;

    public void Pull() => _pulled = true;

    public bool Send(ReadOnlySpan<byte> datagram, IPEndPoint destination) => _pulled || inner.Send(datagram, destination);

    public async ValueTask<ReceivedDatagram> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            var received = await inner.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (!_pulled)
            {
                return received;
            }
        }
    }

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
