using System.Globalization;
using Whisper.Protocol.Engine;

namespace Whisper.Net;

/// <summary>A consistent snapshot of a node's counters: the engine's plus the adapter's own.</summary>
public sealed record WhisperNodeStats
{
    public long DatagramsSent { get; init; }

    /// <summary>Datagrams that carried no message chunk (acks, nacks, pings, membership).</summary>
    public long ControlDatagramsSent { get; init; }
    public long BytesSent { get; init; }
    public long DatagramsReceived { get; init; }
    public long MalformedDropped { get; init; }
    public long ForeignDropped { get; init; }
    public long ChunksSent { get; init; }
    public long ChunksRetransmitted { get; init; }
    public long ChunksRelayed { get; init; }

    /// <summary>Second copies of datagrams sent to lightly used peers over lossy links.</summary>
    public long RedundantDatagrams { get; init; }
    public long DuplicateChunks { get; init; }
    public long OutOfWindowChunks { get; init; }
    public long NacksSent { get; init; }
    public long AcksSent { get; init; }
    public long BroadcastsDelivered { get; init; }
    public long PrivatesDelivered { get; init; }
    public int HeldBack { get; init; }
    public int StoredChunks { get; init; }

    /// <summary>Released chunks the engine keeps for reuse (see <c>EngineStats.PooledChunks</c>).</summary>
    public int PooledChunks { get; init; }

    /// <summary>Datagrams the transport could not hand to the network.</summary>
    public long SendFailures { get; init; }

    /// <summary>Received datagrams larger than the protocol allows, dropped before the engine.</summary>
    public long OversizedDropped { get; init; }

    /// <summary>Send commands that had to wait for flow control at least once.</summary>
    public long SendsDeferred { get; init; }

    /// <summary>Send commands waiting for flow control right now.</summary>
    public int SendsPending { get; init; }

    internal static WhisperNodeStats From(EngineStats s, long sendFailures, long oversized, long deferred, int pending) => new()
    {
        DatagramsSent = s.DatagramsSent,
        ControlDatagramsSent = s.ControlDatagramsSent,
        BytesSent = s.BytesSent,
        DatagramsReceived = s.DatagramsReceived,
        MalformedDropped = s.MalformedDropped,
        ForeignDropped = s.ForeignDropped,
        ChunksSent = s.ChunksSent,
        ChunksRetransmitted = s.ChunksRetransmitted,
        ChunksRelayed = s.ChunksRelayed,
        RedundantDatagrams = s.RedundantDatagrams,
        DuplicateChunks = s.DuplicateChunks,
        OutOfWindowChunks = s.OutOfWindowChunks,
        NacksSent = s.NacksSent,
        AcksSent = s.AcksSent,
        BroadcastsDelivered = s.BroadcastsDelivered,
        PrivatesDelivered = s.PrivatesDelivered,
        HeldBack = s.HeldBack,
        StoredChunks = s.StoredChunks,
        PooledChunks = s.PooledChunks,
        SendFailures = sendFailures,
        OversizedDropped = oversized,
        SendsDeferred = deferred,
        SendsPending = pending,
    };

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"sent={DatagramsSent} recv={DatagramsReceived} malformed={MalformedDropped} retx={ChunksRetransmitted} relay={ChunksRelayed} redundant={RedundantDatagrams} dup={DuplicateChunks} nacks={NacksSent} held={HeldBack} stored={StoredChunks} send-failures={SendFailures} deferred={SendsDeferred} pending={SendsPending}");
}
