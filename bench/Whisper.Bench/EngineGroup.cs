using System.Net;
using Whisper.Discovery;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;

namespace Whisper.Bench;

/// <summary>
/// A formed group of pure engines in memory, for measuring the engine alone (no sockets, no driver, no threads): N
/// <see cref="WhisperEngine"/>s and a <see cref="DiscoveryEngine"/> exchange datagrams through an in-memory queue on a
/// virtual clock. <see cref="Broadcast"/> is one message from the next member in turn, every datagram it causes delivered
/// at once, then the clock moves on by <see cref="Step"/> and the timers that came due run (acks, heartbeats), as in the
/// benchmark's latency phase. Datagram buffers are reused, so what a measurement allocates is the engines' own.
/// Not thread-safe.
/// </summary>
public sealed class EngineGroup
{
    /// <summary>The virtual time between two broadcasts.</summary>
    public static readonly TimeSpan Step = TimeSpan.FromMicroseconds(100);

    private const int MaxStepsPerPump = 100_000;
    private readonly WhisperEngine[] _engines;
    private readonly DiscoveryEngine _server;
    private readonly IPEndPoint[] _endpoints; // members 0..n-1, then the server
    private readonly Dictionary<IPEndPoint, int> _index = [];
    private readonly Queue<InFlight> _inFlight = new();
    private readonly Stack<byte[]> _buffers = new();
    private readonly byte[] _transmit = new byte[WireCodec.MaxDatagramSize];
    private TimeSpan _now;
    private int _next;

    private EngineGroup(int members)
    {
        _engines = new WhisperEngine[members];
        _endpoints = new IPEndPoint[members + 1];
        for (var i = 0; i <= members; i++)
        {
            _endpoints[i] = new IPEndPoint(IPAddress.Parse(i == members ? "127.0.0.254" : $"127.0.0.{i + 1}"), i == members ? 4000 : 5000);
            _index[_endpoints[i]] = i;
        }

        _server = new DiscoveryEngine(new DiscoveryOptions { MaxMembers = members });
        for (var i = 0; i < members; i++)
        {
            _engines[i] = new WhisperEngine(new EngineOptions(), $"m{i}", new Protocol.MemberId(0x1000UL * (ulong)(i + 1) + 7), (ulong)(i + 1));
        }
    }

    public int Members => _engines.Length;

    /// <summary>Deliveries at members other than the sender since the first <see cref="Broadcast"/>.</summary>
    public long Deliveries { get; private set; }

    /// <summary>Broadcasts accepted since the group formed.</summary>
    public long Broadcasts { get; private set; }

    /// <summary>Datagrams the members sent to each other since the group formed.</summary>
    public long Datagrams { get; private set; }

    /// <summary>Starts <paramref name="members"/> engines joining through the discovery engine; runs (virtual time, at most 60 s) until each sees all the others up.</summary>
    /// <exception cref="TimeoutException">The group did not form.</exception>
    public static EngineGroup Form(int members)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(members, 2);
        var group = new EngineGroup(members);
        var server = group._endpoints[members];
        for (var i = 0; i < members; i++)
        {
            group._engines[i].Start(server, group._now);
            group.Drain(i);
            group.Pump();
            group.Advance(TimeSpan.FromMilliseconds(20));
        }

        for (var round = 0; round < 3_000 && !group.Formed(); round++)
        {
            group.Advance(TimeSpan.FromMilliseconds(20));
        }

        if (!group.Formed())
        {
            throw new TimeoutException($"the in-memory group of {members} did not form within 60 s of virtual time");
        }

        (group.Deliveries, group.Broadcasts, group.Datagrams) = (0, 0, 0);
        return group;
    }

    /// <summary>One broadcast of <paramref name="payload"/> by the next member in turn, delivered everywhere; then <see cref="Step"/> of virtual time.</summary>
    /// <exception cref="InvalidOperationException">The engine refused the broadcast (it never should here).</exception>
    public void Broadcast(ReadOnlySpan<byte> payload)
    {
        var sender = _next;
        _next = (_next + 1) % _engines.Length;
        var result = _engines[sender].Broadcast(payload, _now);
        if (!result.IsAccepted)
        {
            throw new InvalidOperationException($"member {sender} refused a broadcast: {result.Status}");
        }

        Broadcasts++;
        Drain(sender);
        Pump();
        Advance(Step);
    }

    private bool Formed() => _engines.All(e => e.State == EngineState.Joined
        && e.Members.Count(m => m.Status == MemberStatus.Up) == _engines.Length);

    /// <summary>Moves the clock by <paramref name="by"/>, running every timer that comes due on the way.</summary>
    private void Advance(TimeSpan by)
    {
        var end = _now + by;
        for (var step = 0; step < MaxStepsPerPump; step++)
        {
            var due = TimeSpan.MaxValue;
            foreach (var e in _engines)
            {
                if (e.NextTimeout is { } t && t < due)
                {
                    due = t;
                }
            }

            if (_server.NextTimeout is { } s && s < due)
            {
                due = s;
            }

            if (due > end)
            {
                break;
            }

            _now = due > _now ? due : _now;
            for (var i = 0; i < _engines.Length; i++)
            {
                if (_engines[i].NextTimeout is { } t && t <= _now)
                {
                    _engines[i].OnTimeout(_now);
                    Drain(i);
                }
            }

            if (_server.NextTimeout is { } st && st <= _now)
            {
                _server.OnTimeout(_now);
                Drain(_engines.Length);
            }

            Pump();
        }

        _now = end;
    }

    /// <summary>Delivers every datagram in flight, and those they cause, at the current time.</summary>
    private void Pump()
    {
        for (var step = 0; step < MaxStepsPerPump && _inFlight.TryDequeue(out var d); step++)
        {
            var data = d.Buffer.AsSpan(0, d.Length);
            if (d.To == _engines.Length)
            {
                _server.OnDatagram(_endpoints[d.From], data, _now);
            }
            else
            {
                _engines[d.To].OnDatagram(_endpoints[d.From], data, _now);
            }

            _buffers.Push(d.Buffer);
            Drain(d.To);
        }
    }

    /// <summary>Takes what process <paramref name="process"/> wants to send (queued in flight) and, for a member, what it delivered.</summary>
    private void Drain(int process)
    {
        if (process == _engines.Length)
        {
            while (_server.TryPollTransmit(_transmit, out var length, out var to))
            {
                Queue(process, to, length);
            }

            while (_server.TryPollEvent(out _))
            {
            }

            return;
        }

        var engine = _engines[process];
        while (engine.TryPollTransmit(_transmit, out var length, out var to))
        {
            Queue(process, to, length);
            Datagrams++;
        }

        while (engine.TryPollOutput(out var engineEvent, out var delivery))
        {
            if (engineEvent is null && Broadcasts > 0 && delivery.From.Id != engine.Self.Id)
            {
                Deliveries++;
            }
        }
    }

    private void Queue(int from, IPEndPoint to, int length)
    {
        if (!_index.TryGetValue(to, out var target))
        {
            return; // nobody there (the engines only know each other and the server)
        }

        var buffer = _buffers.Count > 0 ? _buffers.Pop() : new byte[WireCodec.MaxDatagramSize];
        _transmit.AsSpan(0, length).CopyTo(buffer);
        _inFlight.Enqueue(new InFlight(from, target, buffer, length));
    }

    private readonly record struct InFlight(int From, int To, byte[] Buffer, int Length);
}
