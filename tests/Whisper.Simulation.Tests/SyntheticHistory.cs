using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;
using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

/// <summary>A terse builder of hand-written histories for checker tests (time advances 1 ms per step).</summary>
internal sealed class SyntheticHistory
{
    private int _ms;

    public SyntheticHistory(int nodes, bool allJoined = true)
    {
        History = new History(History.DefaultNames(nodes));
        if (allJoined)
        {
            for (var n = 0; n < nodes; n++)
            {
                History.RecordJoined(n, Tick());
            }
        }
    }

    public History History { get; }

    public void Join(int node) => History.RecordJoined(node, Tick());

    /// <summary>Node sends broadcast number <paramref name="counter"/> and, as the engine does, delivers it to itself.</summary>
    public MessageKey Broadcast(int node, int counter)
    {
        var key = new MessageKey(node, counter);
        History.RecordSend(node, Tick(), key, MessageKind.Broadcast, -1, 64);
        History.RecordDelivery(node, Tick(), key, MessageKind.Broadcast);
        return key;
    }

    public MessageKey Private(int node, int counter, int to)
    {
        var key = new MessageKey(node, counter);
        History.RecordSend(node, Tick(), key, MessageKind.Private, to, 64);
        return key;
    }

    public void Deliver(int node, MessageKey key, MessageKind kind = MessageKind.Broadcast) =>
        History.RecordDelivery(node, Tick(), key, kind);

    public void DeliverPrivate(int node, MessageKey key) => Deliver(node, key, MessageKind.Private);

    public void Crash(int node) => History.RecordCrash(node, Tick());

    public void Status(int node, int subject, MemberStatus status) => History.RecordStatus(node, Tick(), subject, status);

    /// <summary>The node starts joining under <paramref name="name"/> (default: its node name) through the server.</summary>
    public void Start(int node, string? name = null) => History.RecordStarted(node, Tick(), name ?? History.Names[node], "server");

    public void Deny(int node, DenyReason reason) => History.RecordDenied(node, Tick(), reason);

    /// <summary>The node now sees exactly <paramref name="members"/> (itself included) as Up or Suspect.</summary>
    public void View(int node, params int[] members) => History.RecordView(node, Tick(), members);

    /// <summary>Every node's final view: every other node with the given status (Up unless listed).</summary>
    public void FinalViews(Func<int, int, MemberStatus>? status = null)
    {
        for (var n = 0; n < History.NodeCount; n++)
        {
            var view = new List<(int, MemberStatus)>();
            for (var s = 0; s < History.NodeCount; s++)
            {
                if (s != n)
                {
                    view.Add((s, status?.Invoke(n, s) ?? MemberStatus.Up));
                }
            }

            History.SetFinalView(n, view);
        }
    }

    private TimeSpan Tick() => TimeSpan.FromMilliseconds(++_ms);
}
