namespace Whisper.Protocol.Wire;

/// <summary>
/// What the frames before a frame in its datagram leave for it to refer to, so that it takes fewer bytes: the deps a
/// chunk's own deps may be a delta against (<see cref="ChunkFlags.DeltaDeps"/>), and the broadcast chunk a chunk of the
/// same stream may continue without repeating its origin and seq (<see cref="ChunkFlags.Next"/>). The encoder and the
/// decoder carry it from frame to frame in the same way (docs/protocol.md, "Chunk").
/// </summary>
/// <param name="Deps">The deps of the last frame in the datagram that carried deps; null before any.</param>
/// <param name="Origin">The origin of the last broadcast chunk in the datagram; <see cref="MemberId.None"/> before any.</param>
/// <param name="Seq">That chunk's sequence number; 0 before any.</param>
public readonly record struct FrameContext(VectorClock? Deps, MemberId Origin, ulong Seq)
{
    /// <summary>The start of a datagram: nothing to refer to.</summary>
    public static FrameContext Start => default;

    /// <summary>True at the start of a datagram, or after frames that leave nothing to refer to (an ack, a ping).</summary>
    public bool IsStart => Deps is null && Seq == 0;

    /// <summary>The context for the frame after <paramref name="frame"/>.</summary>
    public FrameContext After(Frame frame) => frame switch
    {
        ChunkFrame c => new((c.Flags & ChunkFlags.First) != 0 ? c.Deps ?? VectorClock.Empty : Deps, c.Origin, c.Seq),
        PrivateChunkFrame p when (p.Flags & ChunkFlags.First) != 0 => this with { Deps = p.Deps ?? VectorClock.Empty },
        _ => this,
    };

    /// <summary>True when <paramref name="chunk"/> is the next chunk of the stream the previous broadcast chunk belongs to.</summary>
    public bool Continues(ChunkFrame chunk) => Seq != 0 && Seq != ulong.MaxValue && chunk.Origin == Origin && chunk.Seq == Seq + 1;
}
