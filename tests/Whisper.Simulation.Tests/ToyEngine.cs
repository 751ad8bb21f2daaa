using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>
/// A deliberately naive protocol used to prove that the simulator and its checkers catch real failures end to end:
/// every node knows every other from the start; a broadcast is one datagram per member, sent once, delivered on
/// arrival. No retransmission (loss loses), no ordering (jitter reorders), optional duplicate suppression.
/// </summary>
internal sealed class ToyEngine(EngineSpec spec, bool suppressDuplicates) : ISimEngine
{
    private readonly Queue<(IPEndPoint, byte[])> _out = new();
    private readonly Queue<EngineEvent> _events = new();
    private readonly HashSet<(int, uint)> _seen = [];
    private uint _seq;

    public MemberRef Self { get; } = Ref(spec, spec.AllNodes.ToList().FindIndex(n => n.Name == spec.Name));

    public EngineState State { get; private set; } = EngineState.Idle;

    public Action<TimeSpan, string>? Tracer { get; set; }

    public TimeSpan? NextTimeout => null;

    public IReadOnlyList<MemberSnapshot> Members =>
        [.. spec.AllNodes.Select((n, i) => new MemberSnapshot(Ref(spec, i), MemberStatus.Up, n.Name == spec.Name, n.Endpoint, null))];

    public string StatsText => $"toy seq={_seq}";

    public void Start(IPEndPoint contact, TimeSpan now)
    {
        State = EngineState.Joined;
        _events.Enqueue(new JoinedEvent(Self, [.. spec.AllNodes.Select((_, i) => Ref(spec, i))]));
    }

    public SendResult Broadcast(ReadOnlyMemory<byte> payload, TimeSpan now)
    {
        var seq = ++_seq;
        foreach (var (name, endpoint) in spec.AllNodes)
        {
            if (name != spec.Name)
            {
                _out.Enqueue((endpoint, Frame((byte)'B', seq, payload.Span)));
            }
        }

        var id = new MessageId(MessageKind.Broadcast, Self.Id, MemberId.None, seq);
        _events.Enqueue(new MessageEvent(new DeliveredMessage(id, Self, null, payload.ToArray(), VectorClock.Empty)));
        return new SendResult(SendStatus.Accepted, id);
    }

    public SendResult SendPrivate(string toName, ReadOnlyMemory<byte> payload, TimeSpan now)
    {
        var to = spec.AllNodes.ToList().FindIndex(n => n.Name == toName);
        var seq = ++_seq;
        _out.Enqueue((spec.AllNodes[to].Endpoint, Frame((byte)'P', seq, payload.Span)));
        return new SendResult(SendStatus.Accepted, new MessageId(MessageKind.Private, Self.Id, Ref(spec, to).Id, seq));
    }

    public void OnDatagram(IPEndPoint from, ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        var sender = spec.AllNodes.ToList().FindIndex(n => n.Endpoint.Equals(from));
        var seq = BinaryPrimitives.ReadUInt32BigEndian(datagram[1..]);
        if (sender < 0 || (suppressDuplicates && !_seen.Add((sender, seq))))
        {
            return;
        }

        var kind = datagram[0] == (byte)'B' ? MessageKind.Broadcast : MessageKind.Private;
        var id = new MessageId(kind, Ref(spec, sender).Id, kind == MessageKind.Private ? Self.Id : MemberId.None, seq);
        _events.Enqueue(new MessageEvent(new DeliveredMessage(id, Ref(spec, sender), kind == MessageKind.Private ? Self : null, datagram[5..].ToArray(), VectorClock.Empty)));
    }

    public void OnTimeout(TimeSpan now)
    {
    }

    public void Leave(TimeSpan now) => State = EngineState.Left;

    public bool TryPollTransmit(Span<byte> buffer, out int length, [NotNullWhen(true)] out IPEndPoint? destination)
    {
        if (_out.TryDequeue(out var next))
        {
            next.Item2.CopyTo(buffer);
            length = next.Item2.Length;
            destination = next.Item1;
            return true;
        }

        length = 0;
        destination = null;
        return false;
    }

    public bool TryPollEvent([NotNullWhen(true)] out EngineEvent? engineEvent) => _events.TryDequeue(out engineEvent);

    private static MemberRef Ref(EngineSpec spec, int index) => new(spec.AllNodes[index].Name, new MemberId((ulong)index + 1));

    private static byte[] Frame(byte kind, uint seq, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[5 + payload.Length];
        bytes[0] = kind;
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(1), seq);
        payload.CopyTo(bytes.AsSpan(5));
        return bytes;
    }
}
