using System.Globalization;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;

namespace Whisper.Simulation;

public enum HistoryEventKind
{
    /// <summary>The node reported itself joined.</summary>
    Joined,

    /// <summary>The engine accepted a send of the node (recorded before any of its effects are drained).</summary>
    Sent,

    /// <summary>The engine delivered a message to the node's application.</summary>
    Delivered,

    /// <summary>The node reported a status change of another member (<see cref="HistoryEvent.Peer"/>).</summary>
    Status,

    /// <summary>The node crashed: it processes nothing from now on.</summary>
    Crashed,

    /// <summary>The node was told to leave gracefully: from now on it is no longer a live member.</summary>
    Left,

    /// <summary>The node's join ended without admission (<see cref="History.DenyReasonOf"/>): it never becomes a member.</summary>
    Denied,
}

/// <summary>
/// One observation, in global order (<see cref="Order"/>). For <see cref="HistoryEventKind.Sent"/> and
/// <see cref="HistoryEventKind.Delivered"/>, <see cref="Key"/> names the message; <see cref="Peer"/> is the
/// recipient of a private send, the origin of a delivery, or the subject of a status change (-1 when none).
/// <see cref="Problem"/> is set when a delivered message is not exactly what was sent.
/// </summary>
public readonly record struct HistoryEvent(
    long Order,
    TimeSpan At,
    int Node,
    HistoryEventKind Kind,
    MessageKey Key,
    MessageKind MessageKind,
    int Peer,
    MemberStatus Status,
    string? Problem);

/// <summary>A message the workload got accepted by an engine. <see cref="Index"/> numbers messages densely in send order.</summary>
public sealed record SentMessage(int Index, MessageKey Key, MessageKind Kind, int Sender, int Recipient, TimeSpan At, long Order, int Length)
{
    public bool IsBroadcast => Kind == MessageKind.Broadcast;
}

/// <summary>
/// One observed membership view: the nodes <see cref="Node"/> saw as Up or Suspect (itself included) from
/// <see cref="At"/> on, after the first <see cref="Order"/> events of the history. -1 stands for a member id that is
/// no node's. Recorded only when the view changed.
/// </summary>
public sealed record ViewRecord(long Order, TimeSpan At, int Node, IReadOnlyList<int> Members);

/// <summary>
/// The recorder: every send (with its position in the sender's log, which fixes what the sender had delivered and
/// sent before it), every delivery, join, status change and crash, per node and in one global order. Checkers compute
/// happens-before from this record alone, never from the engines' clocks. Tests build synthetic histories with
/// the same methods the simulator uses.
/// </summary>
public sealed class History
{
    private readonly List<HistoryEvent> _events = [];
    private readonly List<int>[] _logs;
    private readonly List<SentMessage> _messages = [];
    private readonly Dictionary<MessageKey, SentMessage> _byKey = [];
    private readonly Dictionary<string, int> _indexByName = new(StringComparer.Ordinal);
    private readonly long[] _joinedOrder;
    private readonly TimeSpan?[] _crashedAt;
    private readonly TimeSpan?[] _leftAt;
    private readonly IReadOnlyList<(int Subject, MemberStatus Status)>?[] _finalViews;
    private readonly string[] _memberNames;
    private readonly TimeSpan?[] _startedAt;
    private readonly bool[] _spare;
    private readonly string?[] _contacts;
    private readonly TimeSpan?[] _deniedAt;
    private readonly DenyReason[] _denyReasons;
    private readonly List<ViewRecord> _views = [];

    public History(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        Names = names;
        _logs = new List<int>[names.Count];
        _joinedOrder = new long[names.Count];
        _crashedAt = new TimeSpan?[names.Count];
        _leftAt = new TimeSpan?[names.Count];
        _finalViews = new IReadOnlyList<(int, MemberStatus)>?[names.Count];
        _memberNames = [.. names];
        _startedAt = new TimeSpan?[names.Count];
        _spare = new bool[names.Count];
        _contacts = new string?[names.Count];
        _deniedAt = new TimeSpan?[names.Count];
        _denyReasons = new DenyReason[names.Count];
        for (var i = 0; i < names.Count; i++)
        {
            _logs[i] = [];
            _joinedOrder[i] = long.MaxValue;
            _indexByName[names[i]] = i;
        }
    }

    /// <summary>Default node names: n0, n1, ...</summary>
    public static IReadOnlyList<string> DefaultNames(int count) =>
        [.. Enumerable.Range(0, count).Select(i => string.Create(CultureInfo.InvariantCulture, $"n{i}"))];

    public IReadOnlyList<string> Names { get; }

    public int NodeCount => Names.Count;

    public IReadOnlyList<HistoryEvent> Events => _events;

    /// <summary>Messages in send order; <see cref="SentMessage.Index"/> is the position in this list.</summary>
    public IReadOnlyList<SentMessage> Messages => _messages;

    /// <summary>Broadcasts and private messages recorded as delivered, all nodes together.</summary>
    public int DeliveryCount { get; private set; }

    public int IndexOf(string name) => _indexByName.TryGetValue(name, out var i) ? i : -1;

    public IEnumerable<HistoryEvent> Log(int node) => _logs[node].Select(i => _events[i]);

    public bool TryGetMessage(MessageKey key, out SentMessage message) => _byKey.TryGetValue(key, out message!);

    /// <summary>Global order of the node's join, or <see cref="long.MaxValue"/> when it never joined.</summary>
    public long JoinedOrder(int node) => _joinedOrder[node];

    public bool HasJoined(int node) => _joinedOrder[node] != long.MaxValue;

    public TimeSpan? CrashedAt(int node) => _crashedAt[node];

    /// <summary>When the node was told to leave gracefully, if it was.</summary>
    public TimeSpan? LeftAt(int node) => _leftAt[node];

    /// <summary>When the node stopped being (or trying to be) a member: it crashed, was told to leave, or its join was denied.</summary>
    public TimeSpan? DepartedAt(int node)
    {
        TimeSpan? first = null;
        foreach (var t in (ReadOnlySpan<TimeSpan?>)[_crashedAt[node], _leftAt[node], _deniedAt[node]])
        {
            if (t is { } v && (first is null || v < first))
            {
                first = v;
            }
        }

        return first;
    }

    /// <summary>A live node never crashed, never left and was not denied admission (paused nodes are live).</summary>
    /// <summary>Started (or, in a run that starts nobody explicitly, meant to) and not crashed, left or denied.</summary>
    public bool IsLive(int node) => _crashedAt[node] is null && _leftAt[node] is null && _deniedAt[node] is null && !_spare[node];

    /// <summary>Marks a node as a spare that is not part of the run until it starts (<see cref="RecordStarted"/> clears it).</summary>
    public void MarkSpare(int node) => _spare[node] = true;

    /// <summary>The name a node asked to join under (<see cref="Names"/> stay the report's unique node names).</summary>
    public string MemberNameOf(int node) => node >= 0 && node < _memberNames.Length ? _memberNames[node] : "?";

    /// <summary>When the node was told to start joining, if it was.</summary>
    public TimeSpan? StartedAt(int node) => _startedAt[node];

    /// <summary>Whom the node asked to join through ("server", or a member's node name), if it started.</summary>
    public string? ContactOf(int node) => _contacts[node];

    /// <summary>When the node's join ended without admission, if it did (see <see cref="DenyReasonOf"/>).</summary>
    public TimeSpan? DeniedAt(int node) => _deniedAt[node];

    /// <summary>Why the node's join ended without admission (meaningful when <see cref="DeniedAt"/> is set).</summary>
    public DenyReason DenyReasonOf(int node) => _denyReasons[node];

    /// <summary>Membership views as observed after every input of every node, in global order (the simulator records them in admission runs).</summary>
    public IReadOnlyList<ViewRecord> Views => _views;

    /// <summary>
    /// Whether <paramref name="node"/> owes the application a delivery of broadcast <paramref name="message"/>: it
    /// had joined before the broadcast was sent. (The simulator starts the workload only once every node sees every
    /// other node, so this matches the protocol's rule that a member delivers a sender's broadcasts from the moment
    /// the sender knew it.)
    /// </summary>
    public bool IsBroadcastAudience(int node, SentMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return message.IsBroadcast && _joinedOrder[node] < message.Order;
    }

    /// <summary>The final membership view a node reported, if recorded: (subject, status) pairs.</summary>
    public IReadOnlyList<(int Subject, MemberStatus Status)>? FinalView(int node) => _finalViews[node];

    public void RecordJoined(int node, TimeSpan at)
    {
        var order = Add(new HistoryEvent(0, at, node, HistoryEventKind.Joined, default, default, -1, default, null));
        if (_joinedOrder[node] == long.MaxValue)
        {
            _joinedOrder[node] = order;
        }
    }

    public SentMessage RecordSend(int node, TimeSpan at, MessageKey key, MessageKind kind, int recipient, int length)
    {
        if (_byKey.ContainsKey(key))
        {
            throw new InvalidOperationException($"message {key} was already sent: workload keys must be unique");
        }

        var order = Add(new HistoryEvent(0, at, node, HistoryEventKind.Sent, key, kind, kind == MessageKind.Private ? recipient : -1, default, null));
        var message = new SentMessage(_messages.Count, key, kind, node, kind == MessageKind.Private ? recipient : -1, at, order, length);
        _messages.Add(message);
        _byKey.Add(key, message);
        return message;
    }

    /// <summary>Records a delivery from the engine, identifying and verifying the message from its payload.</summary>
    public void RecordDelivery(int node, TimeSpan at, DeliveredMessage delivered)
    {
        ArgumentNullException.ThrowIfNull(delivered);
        RecordDelivery(node, at, delivered, IndexOf(delivered.From.Name), delivered.To is { } to ? IndexOf(to.Name) : -1);
    }

    /// <summary>
    /// Records a delivery from the engine whose sender and addressee the caller already resolved to nodes
    /// (<paramref name="from"/>, <paramref name="to"/>; -1 when none or unknown), for worlds where member names are
    /// not the node names or not unique.
    /// </summary>
    public void RecordDelivery(int node, TimeSpan at, DeliveredMessage delivered, int from, int to)
    {
        ArgumentNullException.ThrowIfNull(delivered);
        if (!TestPayload.TryParse(delivered.Payload, out var key, out var kind, out var recipient, out var problem))
        {
            Add(new HistoryEvent(0, at, node, HistoryEventKind.Delivered, new MessageKey(from, -1), delivered.Kind, from, default,
                $"{problem} (message {delivered.Id} from {delivered.From})"));
            return;
        }

        problem ??= kind != delivered.Kind ? $"delivered as {delivered.Kind} but sent as {kind}"
            : from != key.Sender ? $"delivered as from {delivered.From.Name} but sent by n{key.Sender}"
            : kind == MessageKind.Private && to != recipient ? $"delivered as addressed to {(to >= 0 ? NameOf(to) : delivered.To?.Name ?? "nobody")} but sent to {NameOf(recipient)}"
            : null;
        RecordDelivery(node, at, key, kind, problem);
    }

    /// <summary>Records a delivery of a known message (synthetic histories, or after identification).</summary>
    public void RecordDelivery(int node, TimeSpan at, MessageKey key, MessageKind kind, string? problem = null)
    {
        if (problem is null && !_byKey.ContainsKey(key))
        {
            problem = $"{key} was never sent";
        }

        Add(new HistoryEvent(0, at, node, HistoryEventKind.Delivered, key, kind, key.Sender, default, problem));
    }

    public void RecordStatus(int node, TimeSpan at, int subject, MemberStatus status) =>
        Add(new HistoryEvent(0, at, node, HistoryEventKind.Status, default, default, subject, status, null));

    public void RecordCrash(int node, TimeSpan at)
    {
        if (_crashedAt[node] is not null)
        {
            return;
        }

        _crashedAt[node] = at;
        Add(new HistoryEvent(0, at, node, HistoryEventKind.Crashed, default, default, -1, default, null));
    }

    public void RecordLeft(int node, TimeSpan at)
    {
        if (_leftAt[node] is not null)
        {
            return;
        }

        _leftAt[node] = at;
        Add(new HistoryEvent(0, at, node, HistoryEventKind.Left, default, default, -1, default, null));
    }

    /// <summary>Records that the node starts joining under <paramref name="memberName"/> through <paramref name="contact"/>.</summary>
    public void RecordStarted(int node, TimeSpan at, string memberName, string contact)
    {
        ArgumentException.ThrowIfNullOrEmpty(memberName);
        ArgumentException.ThrowIfNullOrEmpty(contact);
        _startedAt[node] = at;
        _spare[node] = false;
        _memberNames[node] = memberName;
        _contacts[node] = contact;
    }

    /// <summary>The node's join ended without admission (refused, or nobody answered: <see cref="DenyReason.Unreachable"/>).</summary>
    public void RecordDenied(int node, TimeSpan at, DenyReason reason)
    {
        if (_deniedAt[node] is not null)
        {
            return;
        }

        _deniedAt[node] = at;
        _denyReasons[node] = reason;
        Add(new HistoryEvent(0, at, node, HistoryEventKind.Denied, default, default, -1, default, null));
    }

    /// <summary>The node now sees <paramref name="members"/> (itself included) as Up or Suspect.</summary>
    public void RecordView(int node, TimeSpan at, IReadOnlyList<int> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        _views.Add(new ViewRecord(_events.Count, at, node, members));
    }

    public void SetFinalView(int node, IReadOnlyList<(int Subject, MemberStatus Status)> view) => _finalViews[node] = view;

    /// <summary>Readable form of one event for reports.</summary>
    public string Describe(HistoryEvent e)
    {
        var t = e.At.TotalSeconds.ToString("0.000000", CultureInfo.InvariantCulture);
        return e.Kind switch
        {
            HistoryEventKind.Joined => $"{t} {Names[e.Node]} joined",
            HistoryEventKind.Sent => $"{t} {Names[e.Node]} sent {Describe(e.Key, e.MessageKind, e.Peer)}",
            HistoryEventKind.Delivered => $"{t} {Names[e.Node]} delivered {Describe(e.Key, e.MessageKind, TryGetMessage(e.Key, out var m) ? m.Recipient : -1)}{(e.Problem is null ? "" : " PROBLEM: " + e.Problem)}",
            HistoryEventKind.Status => $"{t} {Names[e.Node]} sees {NameOf(e.Peer)} {e.Status}",
            HistoryEventKind.Crashed => $"{t} {Names[e.Node]} CRASHED",
            HistoryEventKind.Left => $"{t} {Names[e.Node]} leaves",
            HistoryEventKind.Denied => $"{t} {Names[e.Node]} denied {_denyReasons[e.Node]}",
            _ => $"{t} {e}",
        };
    }

    public string Describe(MessageKey key, MessageKind kind, int recipient) =>
        kind == MessageKind.Broadcast ? $"broadcast {key}" : $"private {key}->{NameOf(recipient)}";

    public string NameOf(int node) => node >= 0 && node < Names.Count ? Names[node] : "?";

    private long Add(HistoryEvent e)
    {
        var order = _events.Count;
        var stamped = e with { Order = order };
        _events.Add(stamped);
        _logs[e.Node].Add(order);
        if (e.Kind == HistoryEventKind.Delivered)
        {
            DeliveryCount++;
        }

        return order;
    }
}
