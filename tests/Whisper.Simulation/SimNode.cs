using System.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Simulation;

/// <summary>A message the workload wants sent, waiting for the engine to accept it (flow control may say WindowFull).</summary>
internal sealed record PendingSend(MessageKey Key, MessageKind Kind, int Recipient, byte[] Payload, int ReplyDepth);

/// <summary>Simulator-side state of one process (a Whisper node or the discovery server).</summary>
internal abstract class SimProcess(int index, string name, IPEndPoint endpoint)
{
    public int Index { get; } = index;

    public string Name { get; } = name;

    public IPEndPoint Endpoint { get; } = endpoint;

    public bool Crashed { get; set; }

    public bool Paused { get; set; }

    /// <summary>Datagrams that arrived while paused, delivered on resume (bounded, like a socket buffer).</summary>
    public Queue<(int From, byte[] Datagram)> PausedInbox { get; } = new();

    /// <summary>Timer bookkeeping: only the event with the current generation is live; older ones are stale.</summary>
    public long TimerGeneration { get; set; }

    public TimeSpan? TimerAt { get; set; }

    /// <summary>Livelock guard: timer firings in a row at one instant.</summary>
    public int TimersAtSameInstant { get; set; }

    public TimeSpan LastTimerAt { get; set; } = TimeSpan.MinValue;

    /// <summary>Armed crash: the process stops after this many more datagrams of its next drain (or at that drain's end).</summary>
    public int? CrashAfterTransmits { get; set; }
}

internal sealed class SimNode(int index, string name, IPEndPoint endpoint, MemberId id, ISimEngine engine) : SimProcess(index, name, endpoint)
{
    public MemberId Id { get; } = id;

    /// <summary>The node's engine; replaced (before the node starts) when it is to join under another name.</summary>
    public ISimEngine Engine { get; set; } = engine;

    /// <summary>The name the node joins under (its <see cref="SimProcess.Name"/> stays the report's unique node name).</summary>
    public string MemberName => Engine.Self.Name;

    public bool Started { get; set; }

    /// <summary>A start is scheduled (by <see cref="Simulation.StartNode"/>) and has not happened yet.</summary>
    public bool StartScheduled { get; set; }

    /// <summary>The last view recorded in the history (sorted node indices, Up or Suspect, itself included).</summary>
    public int[] LastView { get; set; } = [];

    /// <summary>Join requests of this node that reached a contact able to answer them.</summary>
    public int AnswerableRequests { get; set; }

    public bool Joined { get; set; }

    /// <summary>Armed crash for the next accepted broadcast: stop after this many of the datagrams that follow it.</summary>
    public int? CrashOnBroadcastAfter { get; set; }

    public int Counter { get; set; }

    public Queue<PendingSend> BroadcastQueue { get; } = new();

    /// <summary>One FIFO queue per recipient, in recipient order so flushing is deterministic.</summary>
    public SortedDictionary<int, Queue<PendingSend>> PrivateQueues { get; } = [];

    public bool FlushScheduled { get; set; }

    public bool RetryScheduled { get; set; }

    public int Pending => BroadcastQueue.Count + PrivateQueues.Values.Sum(q => q.Count);

    /// <summary>Reply depth of messages this node delivered, by key (the workload bounds reply chains).</summary>
    public Dictionary<MessageKey, int> Depth { get; } = [];
}

internal sealed class SimServer(int index, string name, IPEndPoint endpoint, Discovery.DiscoveryEngine engine) : SimProcess(index, name, endpoint)
{
    /// <summary>The discovery engine; a restart puts a fresh one at the same address.</summary>
    public Discovery.DiscoveryEngine Engine { get; set; } = engine;

    /// <summary>When the current engine started (its re-learn window runs from here); null before the first start.</summary>
    public TimeSpan? StartedAt { get; set; }

    /// <summary>Restart a fresh engine this long after the next crash (admission scripts).</summary>
    public TimeSpan? RestartAfterCrash { get; set; }
}
