using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Engine;

/// <summary>
/// Resuming from a freeze. A process that was frozen (SIGSTOP, a suspended machine) comes back with a view that may
/// be stale in two ways: the group may have removed this node, or removed a member this node still sees. Whatever
/// it delivered or sent on that stale view could reach someone who cannot complete it (a message of a member whose
/// stream the group already closed). So after a stall the node is quarantined: it pings every member it knew before
/// the freeze, delivers nothing, and sends nothing but pings, pongs and leave notices until each of them has answered
/// a ping sent after the resume with a pong (a member that removed it answers with an eviction notice instead, and it
/// rejoins) or has been declared down or left. Then it carries on where it stopped.
/// </summary>
public sealed partial class WhisperEngine
{
    private readonly HashSet<MemberId> _awaitingAfterStall = [];
    private TimeSpan _quarantineSince;
    private TimeSpan _quarantineUntil;

    /// <summary>True while this node checks, after a freeze, that it is still a member of the group it remembers.</summary>
    public bool Quarantined { get; private set; }

    private void EnterQuarantine(TimeSpan now)
    {
        _awaitingAfterStall.Clear();
        foreach (var p in _peerOrder)
        {
            if (p.InView && p.HeardIntro)
            {
                _awaitingAfterStall.Add(p.Id);
                p.Outbox.Enqueue(new PingFrame((ulong)now.Ticks));
                p.NextPingAt = now + _options.HeartbeatInterval;
            }
        }

        if (_awaitingAfterStall.Count == 0)
        {
            return;
        }

        Quarantined = true;
        _quarantineSince = now;

        // Bounded: members that stay silent are declared down within DownAfter of the resume; this is the backstop.
        _quarantineUntil = now + 2 * _options.DownAfter;
        Stats.Quarantines++;
    }

    /// <summary>A pong to a ping sent after the resume: that member still counts us in.</summary>
    private void OnPongInQuarantine(Peer peer, PongFrame pong)
    {
        if (Quarantined && pong.Token >= (ulong)_quarantineSince.Ticks && _awaitingAfterStall.Remove(peer.Id))
        {
            MaybeLeaveQuarantine(_now);
        }
    }

    private void MaybeLeaveQuarantine(TimeSpan now)
    {
        if (!Quarantined)
        {
            return;
        }

        if (State != EngineState.Joined)
        {
            Quarantined = false;
            return;
        }

        _awaitingAfterStall.RemoveWhere(id => !_peers.TryGetValue(id, out var p) || !p.InView);
        if (_awaitingAfterStall.Count > 0 && now < _quarantineUntil)
        {
            return;
        }

        Quarantined = false;
        _awaitingAfterStall.Clear();
        foreach (var p in _peerOrder)
        {
            if (p.InView)
            {
                p.AckNow = true;
            }
        }

        RunDelivery();
    }

    /// <summary>What a quarantined node may send: liveness, and its own departure.</summary>
    private static bool AllowedInQuarantine(Frame frame) => frame is PingFrame or PongFrame or LeaveFrame;

    /// <summary>
    /// Takes the frames a quarantined node may send from <paramref name="outbox"/> into <see cref="_writing"/>, keeping the
    /// others queued in their order for when the quarantine ends.
    /// </summary>
    private void TakeQuarantineFrames(FrameQueue outbox, int room)
    {
        var count = outbox.PurgeStale(); // no stale entry may be skipped inside the loop: it would rotate the order
        for (var i = 0; i < count && outbox.TryDequeue(out var frame); i++)
        {
            var size = WireCodec.FrameSize(frame);
            if (AllowedInQuarantine(frame) && size <= room)
            {
                _writing.Add(frame);
                room -= size;
            }
            else
            {
                outbox.Enqueue(frame);
            }
        }
    }
}
