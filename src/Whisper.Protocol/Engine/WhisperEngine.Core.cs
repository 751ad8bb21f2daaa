using System.Globalization;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Engine;

public sealed partial class WhisperEngine
{
    /// <summary>An ack goes out at once after this many chunks (or other ack-eliciting datagrams) from one member (else after MaxAckDelay or piggybacked): few enough acks that a one-way stream pays under 10% for them, often enough that send windows keep moving and senders' retransmission timers do not fire for nothing.</summary>
    private const int AckEveryChunks = 32;
    private const int MaxRetransmitBurst = 16;
    private const int MaxNackChunks = 256;
    private const int MaxRelayPerNack = 128;
    private static readonly TimeSpan ReservationLifetime = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MembershipGossipInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long a departed member's stream must have been complete everywhere before it is retired.</summary>
    private static readonly TimeSpan RetireGrace = TimeSpan.FromSeconds(5);

    /// <summary>Retired members are still named in introductions for this long, for newcomers' benefit.</summary>
    private static readonly TimeSpan RetiredAdvertised = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan MinIntroRetry = TimeSpan.FromMilliseconds(50);

    private readonly SplitMix64 _rng;
    private readonly Dictionary<MemberId, Peer> _peers = [];
    private readonly List<Peer> _peerOrder = [];
    /// <summary>Incarnations that left or were declared down (never accepted again); the most recent 4,096.</summary>
    private readonly BoundedIdSet _tombstones = new(MaxRemembered);
    private readonly BoundedIdSet _downed = new(MaxRemembered);
    private const int MaxRemembered = 4096;
    private readonly List<DownProbe> _downProbes = [];
    private readonly Dictionary<MemberId, TimeSpan> _noticeAllowedAt = [];
    private TimeSpan _nextDownProbeAt = TimeSpan.MaxValue;

    // Departed members whose streams are complete everywhere: their clock entries count as satisfied forever.
    private readonly Dictionary<MemberId, (ulong Final, TimeSpan At)> _retired = [];
    private readonly Queue<MemberId> _retiredOrder = new();
    private readonly Dictionary<MemberId, OriginStream> _origins = [];
    private readonly List<OriginStream> _originOrder = [];
    /// <summary>Slots of retired streams, reused by new ones (<see cref="OriginStream.Slot"/>).</summary>
    private readonly Stack<int> _freeSlots = new();

    /// <summary>
    /// <see cref="_originOrder"/> sorted by id, rebuilt whenever an origin comes or goes (<see cref="OriginsChanged"/>): the
    /// per-chunk walks over a dependency clock (sorted by id too) merge with it instead of looking every entry up.
    /// </summary>
    private OriginStream[] _originsById = [];
    private readonly Queue<EngineEvent> _events = new();
    private readonly Queue<(IPEndPoint Endpoint, MemberId To, Frame Frame)> _controlOut = new();
    private readonly List<Frame> _decoded = [];
    private readonly List<Frame> _writing = [];
    private ChunkRunCache? _runCache;

    /// <summary>The encoded chunks of the last datagram (internal for tests).</summary>
    internal ChunkRunCache RunCache => _runCache ??= new ChunkRunCache(_options.MaxDatagramBytes);
    private OriginStream _self = null!;
    private SendLog _sendLog = null!;

    private IPEndPoint? _contact;
    private IPEndPoint? _server;
    private IPEndPoint _selfEndpoint = new(IPAddress.Loopback, 0);
    private bool _accepted;
    private ulong _seniority;
    private bool _contactIsServer;
    private readonly List<IPEndPoint> _alternateContacts = [];
    private List<IPEndPoint> _fallbackContacts = [];

    /// <summary>A rejoin (started with fallbacks) treats "name taken" as transient until then.</summary>
    private TimeSpan _nameTakenTolerantUntil;
    private readonly Dictionary<MemberId, Reservation> _reservations = [];
    private int _joinAttempts;
    private TimeSpan _nextJoinAt = TimeSpan.MaxValue;
    private TimeSpan _introDeadline = TimeSpan.MaxValue;
    private HashSet<MemberId> _listed = [];
    private TimeSpan _nextLeaseAt = TimeSpan.MaxValue;
    private TimeSpan _nextGossipAt = TimeSpan.MaxValue;
    private TimeSpan _leaveDeadline = TimeSpan.MaxValue;
    private ulong _leaveFinal;

    /// <summary>
    /// Copies of our <see cref="LeaveFrame"/> still to send, <see cref="LeaveCopyInterval"/> apart: a leave whose every
    /// chunk was already acknowledged would otherwise go out once, and if that datagram was lost the others reported us
    /// down 2.5 s later instead of left. A member that gets a copy again ignores it.
    /// </summary>
    private int _leaveCopiesLeft;
    private TimeSpan _nextLeaveCopyAt = TimeSpan.MaxValue;
    private const int LeaveCopies = 3;
    private static readonly TimeSpan LeaveCopyInterval = TimeSpan.FromMilliseconds(10);
    private int _pollCursor;

    /// <summary>A datagram to send a second time at the next poll (<see cref="EngineOptions.RedundantSendAboveLoss"/>).</summary>
    private byte[]? _repeat;
    private readonly LossEstimate _loss = new(); // all links together: the prior of a link with few samples
    private int _repeatLength;
    private IPEndPoint? _repeatTo;
    private TimeSpan _now;

    /// <summary>Optional trace of every datagram in and out (<c>Describe()</c> form), for simulations and debugging.</summary>
    public Action<TimeSpan, string>? Tracer { get; set; }

    private void InitializeState()
    {
        _sendLog = new SendLog(_options.SendWindowChunks + 128); // a message may go past the window when nothing is in flight
        _self = AddOrigin(Self.Id, Self.Name);
        _self.BaseKnown = true;
    }

    private ulong MySeq => _self.Delivered;

    // ------------------------------------------------------------------ queries

    /// <summary>
    /// The earliest time at which <see cref="OnTimeout"/> has work to do, or null when nothing is pending. Computed once
    /// after each call that can change a timer (every input, send and transmit poll) and kept until the next one: a
    /// driver asks for it several times per round, and the walk over every member's timers was a visible part of a
    /// receive's cost.
    /// </summary>
    public TimeSpan? NextTimeout
    {
        get
        {
            KnowTimeouts();
            return _nextTimeout == TimeSpan.MaxValue ? null : _nextTimeout;
        }
    }

    /// <summary>
    /// The latest time at which <see cref="OnTimeout"/> may come for the timers due at <see cref="NextTimeout"/> (null
    /// when nothing is pending): a driver may call it anywhere from <see cref="NextTimeout"/> to this. Loss repair
    /// (retransmissions and negative acks) must run on time; every other timer (delayed acks, heartbeats, failure
    /// detection, leases, gossip, retries of joins, introductions and leaves) may run up to
    /// <see cref="EngineOptions.TimerSlack"/> late, which lets a driver whose waits end on scheduler ticks wait in its
    /// socket instead of polling the last fraction of a tick (docs/protocol.md, "Timers"). The engine counts that slack
    /// into the ack delay it expects from its peers.
    /// </summary>
    public TimeSpan? NextTimeoutLatest
    {
        get
        {
            KnowTimeouts();
            return _nextTimeoutLatest == TimeSpan.MaxValue ? null : _nextTimeoutLatest;
        }
    }

    private void KnowTimeouts()
    {
        if (!_nextTimeoutKnown)
        {
            (_nextTimeout, _nextTimeoutLatest) = ComputeNextTimeouts();
            _nextTimeoutKnown = true;
        }

        Debug.Assert((_nextTimeout, _nextTimeoutLatest) == ComputeNextTimeouts(), "NextTimeout kept across a change of a timer");
    }

    private TimeSpan _nextTimeout = TimeSpan.MaxValue;
    private TimeSpan _nextTimeoutLatest = TimeSpan.MaxValue;
    private bool _nextTimeoutKnown;

    /// <summary>Every entry point that can move a timer calls this first, so <see cref="NextTimeout"/> is recomputed.</summary>
    private void TimersMayChange() => _nextTimeoutKnown = false;

    /// <summary>
    /// The earliest deadline of every timer, and the earliest by which one must run: a strict timer's deadline, a
    /// lenient one's plus <see cref="EngineOptions.TimerSlack"/> (MaxValue: none).
    /// </summary>
    private (TimeSpan Next, TimeSpan Latest) ComputeNextTimeouts()
    {
        if (State is EngineState.Idle or EngineState.Left or EngineState.Denied or EngineState.Evicted)
        {
            return (TimeSpan.MaxValue, TimeSpan.MaxValue);
        }

        var lenient = TimeSpan.MaxValue; // timers that may run up to TimerSlack late
        var strict = TimeSpan.MaxValue; // loss repair: on time
        if (State == EngineState.Joining)
        {
            lenient = Min(lenient, _accepted ? _introDeadline : _nextJoinAt);
        }

        if (State == EngineState.Joined)
        {
            lenient = Min(lenient, Quarantined ? _quarantineUntil : Min(_nextLeaseAt, _nextGossipAt));
            lenient = Min(lenient, _nextDownProbeAt);
        }

        if (State == EngineState.Leaving)
        {
            lenient = Min(lenient, Min(_leaveDeadline, _nextLeaveCopyAt));
        }

        foreach (var p in _peerOrder)
        {
            if (p.AckPending && !Quarantined)
            {
                lenient = Min(lenient, p.AckAt);
            }

            if (!p.InView)
            {
                continue;
            }

            lenient = Min(lenient, Min(p.PingBy, p.PongBy)); // MaxValue unless a heartbeat waits for a datagram to ride on
            lenient = Min(lenient, p.NextPingAt);
            lenient = Min(lenient, p.LastHeard + (!p.HeardIntro ? DownAfterFor(p) : p.Status == MemberStatus.Up ? _options.SuspectAfter : _options.DownAfter));
            if (Quarantined)
            {
                continue; // the timers below wait for the quarantine to end
            }

            if (!p.HeardIntro)
            {
                lenient = Min(lenient, p.NextIntroAt);
            }

            strict = Min(strict, p.RetxAt);
            strict = Min(strict, p.PrivRetxAt);
            strict = Min(strict, p.PrivNackAt);
        }

        if (!Quarantined)
        {
            foreach (var o in _originOrder)
            {
                strict = Min(strict, o.NackAt);
            }
        }

        var latest = lenient >= TimeSpan.MaxValue - _options.TimerSlack ? TimeSpan.MaxValue : lenient + _options.TimerSlack;
        return (Min(lenient, strict), Min(latest, strict));
    }

    /// <summary>This node and every member it knows of that has not been removed, in a stable order.</summary>
    public IReadOnlyList<MemberSnapshot> Members
    {
        get
        {
            var list = new List<MemberSnapshot>(_peerOrder.Count + 1)
            {
                new(Self, State switch { EngineState.Left => MemberStatus.Left, EngineState.Evicted => MemberStatus.Down, _ => MemberStatus.Up }, true, _selfEndpoint, null),
            };
            foreach (var p in _peerOrder)
            {
                if (p.HeardIntro)
                {
                    list.Add(new MemberSnapshot(p.Ref, p.Status, false, p.Endpoint, p.Rtt.HasSample ? p.Rtt.Smoothed : null));
                }
            }

            return list;
        }
    }

    /// <summary>This node's delivered vector clock: the causal context of its next send.</summary>
    public VectorClock Clock => CurrentClock();

    // ------------------------------------------------------------------ commands

    /// <summary>
    /// Begins joining through <paramref name="contact"/>: the discovery server, or any member of the group.
    /// <paramref name="server"/> is the discovery server to keep informed with leases when the contact is a
    /// member (so the server's cap and name checks count this node); null when there is none or it is the contact.
    /// <paramref name="fallbacks"/> (non-null for a rejoin after eviction, possibly empty) are other members to ask as
    /// well once the contact has not answered <see cref="FallbackAfterAttempts"/> requests, in case the member that told
    /// us crashed; a rejoin also takes "name taken" as transient for twice the down timeout, since the holder is most
    /// likely its own previous incarnation that a member has not yet seen go.
    /// </summary>
    public void Start(IPEndPoint contact, TimeSpan now, IPEndPoint? server = null, IReadOnlyList<IPEndPoint>? fallbacks = null)
    {
        TimersMayChange();
        ArgumentNullException.ThrowIfNull(contact);
        _server = server;
        _fallbackContacts = fallbacks is null ? [] : [.. fallbacks.Where(f => !f.Equals(contact)).Distinct().Take(IntroFrame.MaxKnown)];
        _nameTakenTolerantUntil = fallbacks is null ? TimeSpan.Zero : now + (2 * _options.DownAfter);
        if (State != EngineState.Idle)
        {
            throw new InvalidOperationException($"Start called in state {State}");
        }

        Advance(now);
        _contact = contact;
        State = EngineState.Joining;
        _joinAttempts = 0;
        SendJoinRequest();
    }

    public SendResult Broadcast(ReadOnlyMemory<byte> payload, TimeSpan now) => Broadcast(payload.Span, now);

    /// <summary>Broadcasts <paramref name="payload"/> (copied: the caller keeps its buffer). Allocation-free once the engine is warm.</summary>
    public SendResult Broadcast(ReadOnlySpan<byte> payload, TimeSpan now)
    {
        TimersMayChange();
        Advance(now);
        if (State != EngineState.Joined)
        {
            return new SendResult(SendStatus.NotJoined, default);
        }

        if (payload.Length > _options.MaxMessageBytes)
        {
            return new SendResult(SendStatus.TooLarge, default);
        }

        // A message takes at least one chunk: a full window refuses before the clock is built (a node waiting for flow
        // control asks again after every datagram).
        if (MySeq - _self.Stable is var waiting && waiting > 0 && waiting + 1 > (ulong)_options.SendWindowChunks)
        {
            return new SendResult(SendStatus.WindowFull, default);
        }

        var deps = CurrentClockEntries();
        if (!TrySplit(payload.Length, WireCodec.ClockSize(deps), broadcast: true, out var firstCapacity, out var restCapacity, out var pieces))
        {
            return new SendResult(SendStatus.TooLarge, default);
        }

        var inFlight = MySeq - _self.Stable;
        if (inFlight > 0 && inFlight + (ulong)pieces > (ulong)_options.SendWindowChunks)
        {
            return new SendResult(SendStatus.WindowFull, default);
        }

        var first = MySeq + 1;
        var offset = 0;
        for (var i = 0; i < pieces; i++)
        {
            var flags = (i == 0 ? ChunkFlags.First : ChunkFlags.None) | (i == pieces - 1 ? ChunkFlags.Last : ChunkFlags.None);
            var take = Math.Min(i == 0 ? firstCapacity : restCapacity, payload.Length - offset);
            var chunk = _pool.RentChunk(Self.Id, first + (ulong)i, flags, i == 0, i == 0 ? deps : default, payload.Slice(offset, take));
            offset += take;
            chunk.Held = true;
            _self.Chunks.Add(chunk.Seq, chunk);
            _sendLog.Sent(chunk.Seq, now);
            foreach (var p in _peerOrder)
            {
                if (p.InView)
                {
                    p.Outbox.Enqueue(chunk);
                    Stats.ChunksSent++;
                }
            }
        }

        var last = first + (ulong)pieces - 1;
        _self.Contig = _self.Delivered = _self.Highest = last;
        foreach (var p in _peerOrder)
        {
            if (p.InView && p.RetxAt == TimeSpan.MaxValue)
            {
                p.RetxAt = now + p.Rtt.RetransmitTimeout(p.Backoff);
            }
        }

        var id = new MessageId(MessageKind.Broadcast, Self.Id, MemberId.None, first);
        Stats.BroadcastsDelivered++;
        payload.CopyTo(EnqueueDelivery(id, Self, null, payload.Length, deps));
        if (_peerOrder.TrueForAll(static p => !p.InView))
        {
            UpdateStability(); // may release the chunks just stored: the delivery above already has its own copy
        }

        return new SendResult(SendStatus.Accepted, id);
    }

    public SendResult SendPrivate(string toName, ReadOnlyMemory<byte> payload, TimeSpan now)
    {
        TimersMayChange();
        Advance(now);
        if (State != EngineState.Joined)
        {
            return new SendResult(SendStatus.NotJoined, default);
        }

        Peer? peer = null;
        foreach (var p in _peerOrder)
        {
            if (p.InView && p.HeardIntro && p.Name == toName)
            {
                peer = p; // the latest incarnation under that name wins
            }
        }

        if (peer is null)
        {
            return new SendResult(SendStatus.UnknownRecipient, default);
        }

        if (payload.Length > _options.MaxMessageBytes)
        {
            return new SendResult(SendStatus.TooLarge, default);
        }

        var deps = CurrentClock();
        var pieces = Split(payload, WireCodec.ClockSize(deps), broadcast: false);
        if (pieces is null)
        {
            return new SendResult(SendStatus.TooLarge, default);
        }

        var inFlight = peer.PrivSent - peer.PrivAcked;
        if (inFlight > 0 && inFlight + (ulong)pieces.Count > (ulong)_options.PrivateWindowChunks)
        {
            return new SendResult(SendStatus.WindowFull, default);
        }

        var first = peer.PrivSent + 1;
        for (var i = 0; i < pieces.Count; i++)
        {
            var flags = (i == 0 ? ChunkFlags.First : ChunkFlags.None) | (i == pieces.Count - 1 ? ChunkFlags.Last : ChunkFlags.None);
            var chunk = new PrivateChunkFrame(first + (ulong)i, flags, i == 0 ? deps : null, pieces[i]);
            peer.PrivUnacked.Add(chunk.Seq, chunk);
            peer.Outbox.Enqueue(chunk);
            Stats.ChunksSent++;
        }

        peer.PrivSent = first + (ulong)pieces.Count - 1;
        if (peer.PrivRetxAt == TimeSpan.MaxValue)
        {
            peer.PrivRetxAt = now + peer.Rtt.RetransmitTimeout(peer.PrivBackoff);
        }

        return new SendResult(SendStatus.Accepted, new MessageId(MessageKind.Private, Self.Id, peer.Id, first));
    }

    /// <summary>Leaves gracefully: announces the end of this node's stream and lingers until it is acknowledged.</summary>
    public void Leave(TimeSpan now)
    {
        TimersMayChange();
        Advance(now);
        switch (State)
        {
            case EngineState.Idle or EngineState.Joining:
                if (_accepted && LeaseTarget is { } registry)
                {
                    _controlOut.Enqueue((registry, MemberId.None, new LeaveFrame(MySeq)));
                }

                FinishLeave();
                return;
            case EngineState.Joined:
                State = EngineState.Leaving;
                _leaveFinal = MySeq;
                _leaveDeadline = now + _options.LeaveLinger;
                if (LeaseTarget is { } server)
                {
                    _controlOut.Enqueue((server, MemberId.None, new LeaveFrame(_leaveFinal)));
                }

                foreach (var p in _peerOrder)
                {
                    if (p.InView)
                    {
                        p.LeaveNeeded = true;
                        p.Outbox.Enqueue(new LeaveFrame(_leaveFinal));
                    }
                }

                _leaveCopiesLeft = LeaveCopies - 1;
                _nextLeaveCopyAt = now + LeaveCopyInterval;
                CheckLeaveDone();
                return;
            default:
                return;
        }
    }

    // ------------------------------------------------------------------ inputs

    public void OnDatagram(IPEndPoint from, ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        TimersMayChange();
        try
        {
            HandleDatagram(from, datagram, now);
        }
        finally
        {
            ReturnUnstoredChunks();
        }
    }

    private void HandleDatagram(IPEndPoint from, ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(from);
        Advance(now);
        Stats.DatagramsReceived++;
        if (State is EngineState.Idle or EngineState.Left or EngineState.Denied or EngineState.Evicted)
        {
            return;
        }

        _decoded.Clear();
        var status = WireCodec.TryDecode(datagram, out var header, _decoded, _pool);
        if (status != DecodeStatus.Ok)
        {
            Stats.MalformedDropped++;
            Tracer?.Invoke(now, $"{Self.Name} drop malformed ({status}) from {from}");
            return;
        }

        Tracer?.Invoke(now, $"{Self.Name} <- {WireCodec.Describe(header, _decoded)}");
        if ((!header.To.IsNone && header.To != Self.Id) || header.From == Self.Id)
        {
            Stats.ForeignDropped++;
            return;
        }

        if (header.From.IsNone)
        {
            if (_contact is not null && from.Equals(_contact))
            {
                OnAdmissionAnswer(now, viaServer: true);
            }
            else if (_server is not null && from.Equals(_server) && _decoded[0] is PingFrame serverPing && State is EngineState.Joined or EngineState.Leaving)
            {
                _controlOut.Enqueue((_server, MemberId.None, new PongFrame(serverPing.Token)));
            }
            else
            {
                Stats.ForeignDropped++;
            }

            return;
        }

        _peers.TryGetValue(header.From, out var peer);
        if (header.To == Self.Id && _decoded.Find(static f => f is EvictedFrame) is EvictedFrame evicted)
        {
            OnEvicted(from, header.From, peer, evicted);
            return;
        }

        if (peer?.Status == MemberStatus.Down || (peer is null && _downed.Contains(header.From)))
        {
            // We declared it down; it is still (or again) talking: tell it, so it rejoins as a new incarnation.
            NoticeEvicted(from, header.From, now);
            Stats.ForeignDropped++;
            return;
        }

        if (peer is null && TryHandleAdmission(from, header, now))
        {
            return;
        }

        if (peer is null && State == EngineState.Joining && !_accepted && _decoded.Exists(static f => f is IntroFrame))
        {
            // Members introduce themselves, so we were admitted but the answer got lost: ask them too.
            if (!_alternateContacts.Contains(from) && _alternateContacts.Count < IntroFrame.MaxKnown)
            {
                _alternateContacts.Add(from);
            }

            return;
        }

        if (peer is null)
        {
            // Only an introduction may come from a stranger.
            if (_decoded.Find(static f => f is IntroFrame) is not IntroFrame intro || _tombstones.Contains(header.From) || State == EngineState.Leaving)
            {
                Stats.ForeignDropped++;
                return;
            }

            peer = LearnPeer(header.From, intro.Name, from, now, introduce: !intro.ReplyRequested);
            if (peer is null)
            {
                Stats.ForeignDropped++;
                return;
            }
        }

        if (peer.Status == MemberStatus.Down)
        {
            Stats.ForeignDropped++;
            return;
        }

        peer.LastHeard = now;
        if (peer.Status == MemberStatus.Suspect)
        {
            SetStatus(peer, MemberStatus.Up);
        }

        var ackEliciting = false;
        var ackSeen = false;
        var chunks = 0;
        foreach (var frame in _decoded)
        {
            switch (frame)
            {
                case ChunkFrame c:
                    OnChunk(peer, c, now);
                    ackEliciting = true;
                    chunks++;
                    break;
                case PrivateChunkFrame pc:
                    OnPrivateChunk(peer, pc, now);
                    ackEliciting = true;
                    chunks++;
                    break;
                case AckFrame a:
                    OnAck(peer, a, now);
                    ackSeen = true;
                    break;
                case NackFrame n:
                    OnNack(peer, n);
                    break;
                case IntroFrame i:
                    OnIntro(peer, from, i, now);
                    break;
                case PingFrame ping:
                    AnswerPing(peer, ping.Token, now);
                    break;
                case PongFrame pong:
                    if (pong.Token <= (ulong)now.Ticks && pong.HeldMicroseconds <= (ulong)(now.Ticks - (long)pong.Token) / TimeSpan.TicksPerMicrosecond)
                    {
                        // The time the answer waited to ride on another datagram is not network: taken off (RFC 9002's
                        // ack_delay, exact here because the answerer measured it).
                        peer.Rtt.AddSample(now - TimeSpan.FromTicks((long)pong.Token) - TimeSpan.FromMicroseconds(pong.HeldMicroseconds));
                    }

                    OnPongInQuarantine(peer, pong);

                    break;
                case LeaveFrame leave:
                    OnPeerLeave(peer, leave);
                    ackEliciting = true;
                    break;
                case JoinRequestFrame request when !peer.HeardIntro:
                    // Listed to us as admitted, but its answer got lost: it asks us directly.
                    OnJoinRequest(from, peer.Id, request.Name, forwardedBy: null, now);
                    break;
                case JoinForwardFrame forward when peer.InView:
                    OnJoinRequest(forward.Endpoint, forward.Newcomer, forward.Name, peer, now);
                    break;
                default:
                    Stats.ForeignDropped++; // discovery frames from a member are not for us
                    break;
            }
        }

        if (ackEliciting)
        {
            peer.UnackedDatagrams += Math.Max(1, chunks); // chunks, so batched datagrams are acknowledged as promptly as single ones
            if (!peer.AckPending)
            {
                peer.AckPending = true;
                peer.AckAt = now + _options.MaxAckDelay;
            }

            if (peer.UnackedDatagrams >= AckEveryChunks)
            {
                peer.AckNow = true;
            }
        }

        MaybeLeaveQuarantine(now);
        RunDelivery();
        ScheduleGapRepair(now);
        if (ackSeen)
        {
            UpdateStability(movedOnly: true);
        }

        MaybeFinishJoin(now);
        if (State == EngineState.Leaving)
        {
            CheckLeaveDone();
        }

        RetireCompleteDepartedStreams();
    }

    public void OnTimeout(TimeSpan now)
    {
        TimersMayChange();
        Advance(now);
        ReviewDeliveryBuffers(now);
        ReviewChunkPool(now);
        if (State is EngineState.Idle or EngineState.Left or EngineState.Denied or EngineState.Evicted)
        {
            return;
        }

        if (State == EngineState.Joining && !_accepted && now >= _nextJoinAt)
        {
            if (_joinAttempts >= _options.JoinAttempts)
            {
                Deny(DenyReason.Unreachable, $"nobody answered the join request at {_contact} after {_joinAttempts} attempts");
                return;
            }

            SendJoinRequest();
        }

        MaybeFinishJoin(now);
        MaybeLeaveQuarantine(now);

        // A ping round: when one member's ping is due, those due within half an interval go too, so a node's pings fall
        // into step and leave together (one wake-up and one batched send per interval instead of one per member).
        var pingRound = false;
        foreach (var p in _peerOrder)
        {
            pingRound |= p.InView && now >= p.NextPingAt;
        }

        foreach (var p in _peerOrder)
        {
            if (p.AckPending && now >= p.AckAt)
            {
                p.AckNow = true;
            }

            if (!p.InView)
            {
                continue;
            }

            var silence = now - p.LastHeard;
            if (silence >= DownAfterFor(p))
            {
                MarkDown(p);
                continue;
            }

            if (silence >= _options.SuspectAfter && p.Status == MemberStatus.Up)
            {
                SetStatus(p, MemberStatus.Suspect);
            }

            if (pingRound && now + (_options.HeartbeatInterval / 2) >= p.NextPingAt)
            {
                p.NextPingAt = now + _options.HeartbeatInterval;
                if (Quarantined)
                {
                    p.Outbox.Enqueue(new PingFrame((ulong)now.Ticks));
                    p.AckNow = true;
                }
                else
                {
                    // Rides on the next datagram to them, or leaves on its own at PingBy; the periodic ack, which doubles as
                    // an anti-entropy digest, goes with it either way (TryPollTransmit).
                    p.PingWaiting = true;
                    p.PingBy = now + (_options.HeartbeatInterval / 4);
                }
            }

            if (p.PingWaiting && now >= p.PingBy)
            {
                p.Outbox.Enqueue(new PingFrame((ulong)now.Ticks));
                p.AckNow = true;
                ClearPing(p);
            }

            if (p.PongWaiting && now >= p.PongBy)
            {
                p.Outbox.Enqueue(new PongFrame(p.PongToken, HeldMicroseconds(p, now)));
                ClearPong(p);
            }

            if (Quarantined)
            {
                continue; // nothing but liveness until the group has answered (WhisperEngine.Quarantine.cs)
            }

            if (!p.HeardIntro && now >= p.NextIntroAt)
            {
                SendIntro(p, now);
            }

            if (now >= p.RetxAt)
            {
                RetransmitBroadcast(p, now);
            }

            if (now >= p.PrivRetxAt)
            {
                RetransmitPrivate(p, now);
            }

            if (now >= p.PrivNackAt)
            {
                SendPrivateNack(p, now);
            }
        }

        foreach (var o in _originOrder)
        {
            if (now >= o.NackAt && !Quarantined)
            {
                SendBroadcastNack(o, now);
            }
        }

        if (State == EngineState.Joined && now >= _nextGossipAt && !Quarantined)
        {
            GossipMembership(now);
        }

        if (State == EngineState.Joined && now >= _nextDownProbeAt)
        {
            ProbeDownMembers(now);
        }

        if (State == EngineState.Joined && now >= _nextLeaseAt && !Quarantined && LeaseTarget is { } leaseTarget)
        {
            _controlOut.Enqueue((leaseTarget, MemberId.None, new LeaseFrame(Self.Name, ViewRecords(), _seniority)));
            _nextLeaseAt = now + _options.LeaseInterval;
        }

        if (State == EngineState.Leaving)
        {
            if (_leaveCopiesLeft > 0 && now >= _nextLeaveCopyAt)
            {
                foreach (var p in _peerOrder)
                {
                    if (p.InView)
                    {
                        p.Outbox.Enqueue(new LeaveFrame(_leaveFinal));
                    }
                }

                _leaveCopiesLeft--;
                _nextLeaveCopyAt = _leaveCopiesLeft > 0 ? now + LeaveCopyInterval : TimeSpan.MaxValue;
            }

            CheckLeaveDone();
        }

        UpdateStability();
        RetireCompleteDepartedStreams(); // never inside the loops above: it removes peers and origins
    }

    // ------------------------------------------------------------------ outputs

    /// <summary>Writes the next datagram into <paramref name="buffer"/> (at least <see cref="EngineOptions.MaxDatagramBytes"/> long).</summary>
    public bool TryPollTransmit(Span<byte> buffer, out int length, [NotNullWhen(true)] out IPEndPoint? destination)
    {
        TimersMayChange();
        var limit = Math.Min(buffer.Length, _options.MaxDatagramBytes);
        if (_repeatTo is { } repeatTo)
        {
            _repeat.AsSpan(0, _repeatLength).CopyTo(buffer);
            length = _repeatLength;
            destination = repeatTo;
            _repeatTo = null;
            Stats.DatagramsSent++;
            Stats.BytesSent += length;
            Stats.RedundantDatagrams++;
            return true;
        }

        if (_controlOut.TryDequeue(out var control))
        {
            _writing.Clear();
            _writing.Add(control.Frame);
            length = Write(buffer[..limit], control.To, _writing);
            destination = control.Endpoint;
            return true;
        }

        var n = _peerOrder.Count;
        for (var i = 0; i < n; i++)
        {
            var idx = (_pollCursor + i) % n;
            var p = _peerOrder[idx];
            if (p.Outbox.Count == 0 && !p.AckNow)
            {
                continue;
            }

            _pollCursor = idx + 1;
            _writing.Clear();
            var room = limit - WireCodec.HeaderSize;
            if (Quarantined)
            {
                TakeQuarantineFrames(p.Outbox, room);
                if (_writing.Count == 0)
                {
                    continue;
                }

                length = Write(buffer[..limit], p.Id, _writing);
                destination = p.Endpoint;
                return true;
            }

            if (p.AckPending || p.AckNow || p.PingWaiting)
            {
                var ack = OutgoingAck(p.PrivContig); // reused: encoded by this poll, never kept
                var size = WireCodec.FrameSize(ack);
                if (size <= room)
                {
                    _writing.Add(ack);
                    room -= size;
                    p.AckPending = p.AckNow = false;
                    p.AckAt = TimeSpan.MaxValue;
                    p.UnackedDatagrams = 0;
                    Stats.AcksSent++;
                }
            }

            RideAlong(p, ref room);

            // The chunks of the previous datagram (usually to another member) are copied, not encoded again: from its
            // start, or when this member's datagrams begin elsewhere in that run, after encoding the first one afresh
            // (its origin and deps in full; those after it refer to the same chunks as before). That first one must carry
            // deps: the deltas after a chunk without them refer to a chunk further back, which this datagram lacks.
            var opening = _writing.Count;
            var context = FrameContext.Start; // what the next chunk may refer to (a delta, the stream it continues)
            var at = RunCache.IndexOfHead(p.Outbox);
            if (at > 0)
            {
                p.Outbox.TryPeek(out var head);
                var headSize = WireCodec.FrameSize(head, context);
                if (headSize <= room && head is ChunkFrame { HasDeps: true })
                {
                    _writing.Add(p.Outbox.Dequeue());
                    room -= headSize;
                    context = context.After(head);
                    at++;
                }
                else
                {
                    at = -1; // its cached bytes refer to chunks this datagram does not carry
                }
            }

            var copyFrom = _writing.Count;
            var reusedStart = 0;
            var reusedEnd = 0;
            var reused = at >= 0 ? RunCache.TakeRun(at, p.Outbox, room, _writing, out reusedStart, out reusedEnd) : 0;
            room -= reusedEnd - reusedStart;
            for (var k = copyFrom; k < _writing.Count; k++)
            {
                context = context.After(_writing[k]);
            }

            while (p.Outbox.TryPeek(out var frame))
            {
                var size = WireCodec.FrameSize(frame, context);
                if (size > room)
                {
                    if (_writing.Count == 0)
                    {
                        p.Outbox.Dequeue(); // cannot ever fit; never happens for frames we build
                        continue;
                    }

                    break;
                }

                _writing.Add(p.Outbox.Dequeue());
                room -= size;
                context = context.After(frame);
            }

            if (_writing.Count == 0)
            {
                continue;
            }

            length = WriteReusingRun(buffer[..limit], p.Id, opening, copyFrom, reused, at, reusedStart, reusedEnd);
            destination = p.Endpoint;
            if (length <= limit && SendTwice(p))
            {
                _repeat ??= new byte[_options.MaxDatagramBytes];
                buffer[..length].CopyTo(_repeat);
                _repeatLength = length;
                _repeatTo = p.Endpoint;
            }

            return true;
        }

        length = 0;
        destination = null;
        return false;
    }

    /// <summary>
    /// A ping to <paramref name="p"/> is due, or an answer to its ping: they wait, briefly, for a datagram that goes to
    /// <paramref name="p"/> anyway (a ping up to a quarter of the heartbeat interval, an answer up to
    /// <see cref="EngineOptions.MaxAckDelay"/>, telling how long it waited), so that while messages flow heartbeats cost no
    /// datagram and no wake-up of their own.
    /// </summary>
    private void AnswerPing(Peer p, ulong token, TimeSpan now)
    {
        if (Quarantined || !p.InView)
        {
            p.Outbox.Enqueue(new PongFrame(token));
            return;
        }

        p.PongToken = token; // a newer ping while one waits: the newer one is answered
        p.PingHeardAt = now;
        p.PongWaiting = true;
        p.PongBy = now + _options.MaxAckDelay;
    }

    /// <summary>Adds the heartbeats waiting for <paramref name="p"/> to the datagram being written (see <see cref="AnswerPing"/>).</summary>
    private void RideAlong(Peer p, ref int room)
    {
        if (p.PongWaiting)
        {
            var pong = new PongFrame(p.PongToken, HeldMicroseconds(p, _now));
            var size = WireCodec.FrameSize(pong);
            if (size <= room)
            {
                _writing.Add(pong);
                room -= size;
                ClearPong(p);
            }
        }

        if (p.PingWaiting)
        {
            var ping = new PingFrame((ulong)_now.Ticks);
            var size = WireCodec.FrameSize(ping);
            if (size <= room)
            {
                _writing.Add(ping);
                room -= size;
                ClearPing(p);
            }
        }
    }

    private static ulong HeldMicroseconds(Peer p, TimeSpan now) =>
        now > p.PingHeardAt ? (ulong)((now - p.PingHeardAt).Ticks / TimeSpan.TicksPerMicrosecond) : 0;

    private static void ClearPing(Peer p)
    {
        p.PingWaiting = false;
        p.PingBy = TimeSpan.MaxValue;
    }

    private static void ClearPong(Peer p)
    {
        p.PongWaiting = false;
        p.PongBy = TimeSpan.MaxValue;
    }

    /// <summary>
    /// Whether the datagram just written for <paramref name="p"/> goes out twice: it carries chunks, the link to
    /// <paramref name="p"/> loses more than <see cref="EngineOptions.RedundantSendAboveLoss"/>, and <paramref name="p"/>
    /// has few of our chunks unacknowledged (a lone message or the tail of a burst, whose loss no later datagram reveals).
    /// </summary>
    private bool SendTwice(Peer p)
    {
        var loss = p.Loss.Samples >= 64 ? p.Loss.Rate : _loss.Rate;
        if (loss < _options.RedundantSendAboveLoss || !_writing.Exists(static f => f is ChunkFrame or PrivateChunkFrame))
        {
            return false;
        }

        var unacked = MySeq - Math.Min(MySeq, Math.Max(p.ReceivedOf(_self), p.MyBase));
        return unacked <= (ulong)_options.RedundantSendMaxUnacked
            && p.PrivSent - p.PrivAcked <= (ulong)_options.RedundantSendMaxUnacked;
    }

    private void RecordDelivered(Peer p, ulong chunks)
    {
        p.Loss.Delivered(chunks);
        _loss.Delivered(chunks);
    }

    private void RecordLost(Peer p, int chunks)
    {
        p.Loss.Lost(chunks);
        _loss.Lost(chunks);
    }

    /// <summary>
    /// Encodes <see cref="_writing"/> like <see cref="Write"/>, except that the <paramref name="reused"/> chunks from index
    /// <paramref name="copyFrom"/> on are copied from <see cref="RunCache"/> (its bytes <paramref name="reusedStart"/> to
    /// <paramref name="reusedEnd"/>); then the chunks that open this datagram from <paramref name="opening"/> on (after at
    /// most an ack) become the cached run.
    /// </summary>
    private int WriteReusingRun(Span<byte> buffer, MemberId to, int opening, int copyFrom, int reused, int reusedAt, int reusedStart, int reusedEnd)
    {
        if (_frameEnds.Length < _writing.Count)
        {
            Array.Resize(ref _frameEnds, Math.Max(2 * _frameEnds.Length, _writing.Count));
        }

        var w = new WireWriter(buffer);
        WireCodec.WriteHeader(ref w, new DatagramHeader(Self.Id, to));
        var context = FrameContext.Start;
        var runStart = -1;
        for (var i = 0; i < _writing.Count; i++)
        {
            if (i == opening)
            {
                runStart = context.IsStart ? w.Written : -1; // a run starts where no frame came before that a chunk could refer to
            }

            if (i == copyFrom && reused > 0)
            {
                var copyAt = w.Written;
                w.WriteBytes(RunCache.Bytes(reusedStart, reusedEnd));
                for (var k = i; k < i + reused; k++)
                {
                    context = context.After(_writing[k]);
                    _frameEnds[k] = copyAt + RunCache.EndOf(reusedAt + (k - i)) - reusedStart;
                }

                i += reused - 1;
                continue;
            }

            WireCodec.WriteFrame(ref w, _writing[i], context);
            context = context.After(_writing[i]);
            _frameEnds[i] = w.Written;
        }

        // This datagram's opening chunks, as written, become the cached run for the next member's datagram.
        RunCache.Truncate(0);
        if (runStart >= 0)
        {
            var start = runStart;
            for (var i = opening; i < _writing.Count && _writing[i] is ChunkFrame chunk && RunCache.Append(chunk, buffer[start.._frameEnds[i]]); i++)
            {
                start = _frameEnds[i];
            }
        }

        if (w.Written > WireCodec.MaxDatagramSize)
        {
            throw new InvalidOperationException($"datagram of {w.Written} bytes exceeds {WireCodec.MaxDatagramSize}"); // as Encode checks
        }

        return Sent(w.Written, to, _writing);
    }

    private int[] _frameEnds = new int[64];

    private int Write(Span<byte> buffer, MemberId to, List<Frame> frames)
    {
        var length = WireCodec.Encode(new DatagramHeader(Self.Id, to), frames, buffer);
        return Sent(length, to, frames);
    }

    /// <summary>Counts a datagram just written (and traces it).</summary>
    private int Sent(int length, MemberId to, List<Frame> frames)
    {
        Stats.DatagramsSent++;
        Stats.BytesSent += length;
        if (!frames.Exists(static f => f is ChunkFrame or PrivateChunkFrame))
        {
            Stats.ControlDatagramsSent++;
        }

        Tracer?.Invoke(_now, $"{Self.Name} -> {WireCodec.Describe(new DatagramHeader(Self.Id, to), frames)}");
        return length;
    }

    // ------------------------------------------------------------------ join and membership

    /// <summary>
    /// Anti-entropy for membership: every <see cref="MembershipGossipInterval"/> one member in view, chosen at
    /// random, gets our introduction again with our current view and departed list. Members admitted at the same
    /// moment by different answers may not be listed to each other; this makes every view converge within seconds.
    /// </summary>
    private void GossipMembership(TimeSpan now)
    {
        _nextGossipAt = now + MembershipGossipInterval;
        var candidates = _peerOrder.FindAll(static p => p.InView && p.HeardIntro);
        if (candidates.Count == 0)
        {
            return;
        }

        var peer = candidates[_rng.NextInt(candidates.Count)];
        peer.Outbox.Enqueue(new IntroFrame(false, Self.Name, _selfEndpoint, peer.MyBase, ViewRecords(exclude: peer.Id), DepartedClock(), _seniority));
    }

    /// <summary>Where leases and leave notices go: the server we joined through, or the one named at start.</summary>
    private IPEndPoint? LeaseTarget => _contactIsServer ? _contact : _server;

    /// <summary>Join requests that go to the contact alone before <c>fallbacks</c> are asked too.</summary>
    private const int FallbackAfterAttempts = 3;

    private void SendJoinRequest()
    {
        _joinAttempts++;
        if (_joinAttempts == FallbackAfterAttempts + 1)
        {
            foreach (var fallback in _fallbackContacts)
            {
                if (!_alternateContacts.Contains(fallback) && _alternateContacts.Count < IntroFrame.MaxKnown)
                {
                    _alternateContacts.Add(fallback);
                }
            }
        }

        _nextJoinAt = _now + _options.JoinRetryInterval;
        _controlOut.Enqueue((_contact!, MemberId.None, new JoinRequestFrame(Self.Name)));
        foreach (var alternate in _alternateContacts)
        {
            _controlOut.Enqueue((alternate, MemberId.None, new JoinRequestFrame(Self.Name)));
        }
    }

    /// <summary>A join answer, from the discovery server or from the group's admission coordinator.</summary>
    private void OnAdmissionAnswer(TimeSpan now, bool viaServer)
    {
        foreach (var frame in _decoded)
        {
            switch (frame)
            {
                case JoinAcceptFrame accept when State == EngineState.Joining && !_accepted:
                    _accepted = true;
                    _seniority = accept.Seniority;
                    _contactIsServer = viaServer;
                    if (!viaServer && _alternateContacts.Count > 0)
                    {
                        _server ??= _contact; // admitted through a member after the server's answer was lost: keep it informed
                    }

                    _selfEndpoint = accept.ObservedEndpoint;
                    _introDeadline = now + _options.IntroTimeout;
                    _listed = [];
                    foreach (var m in accept.Members)
                    {
                        if (m.Id != Self.Id && string.Equals(m.Name, Self.Name, StringComparison.Ordinal))
                        {
                            ForgetPreviousIncarnation(m.Id, now);
                        }
                        else if (LearnPeer(m.Id, m.Name, m.Endpoint, now) is { } p)
                        {
                            _listed.Add(p.Id);
                        }
                    }

                    MaybeFinishJoin(now);
                    break;
                case JoinDenyFrame { Reason: DenyReason.NameTaken } when State == EngineState.Joining && !_accepted && now < _nameTakenTolerantUntil:
                    // A rejoin: the holder is most likely our own previous incarnation, whose leave notice a member
                    // missed; it is declared down within the down timeout. The request is simply asked again.
                    Stats.RejoinNameWaits++;
                    break;
                case JoinDenyFrame deny when State == EngineState.Joining && !_accepted:
                    Deny(deny.Reason, deny.Message);
                    return;
                case PingFrame ping when viaServer && _accepted && State is EngineState.Joining or EngineState.Joined or EngineState.Leaving:
                    _controlOut.Enqueue((_contact!, MemberId.None, new PongFrame(ping.Token))); // the server checks we are alive
                    break;
                default:
                    break; // duplicates and late answers are harmless
            }
        }
    }

    /// <summary>Join traffic from a node that is not a member: a newcomer's request, or the answer to ours.</summary>
    private bool TryHandleAdmission(IPEndPoint from, DatagramHeader header, TimeSpan now)
    {
        if (_decoded.Find(static f => f is JoinRequestFrame) is JoinRequestFrame request)
        {
            if (State == EngineState.Joined)
            {
                OnJoinRequest(from, header.From, request.Name, forwardedBy: null, now);
            }
            else
            {
                Stats.ForeignDropped++;
            }

            return true;
        }

        if (header.To == Self.Id && _decoded.Exists(static f => f is JoinAcceptFrame or JoinDenyFrame))
        {
            OnAdmissionAnswer(now, viaServer: false);
            return true;
        }

        return false;
    }

    /// <summary>
    /// Admission without the discovery server: every member forwards a newcomer's request to the group's
    /// coordinator (the most senior member in its view), which alone decides, so concurrent joins
    /// through different members are serialized and the cap and unique names hold. Admitted newcomers hold a
    /// reservation until they introduce themselves. A quarantined node (just resumed from a freeze, its view
    /// possibly stale) neither admits nor forwards; the newcomer's retries find it answering a round trip later.
    /// </summary>
    private void OnJoinRequest(IPEndPoint newcomerEndpoint, MemberId newcomer, string name, Peer? forwardedBy, TimeSpan now)
    {
        if (Quarantined)
        {
            Stats.ForeignDropped++;
            return;
        }

        if (State != EngineState.Joined || newcomer.IsNone || newcomer == Self.Id)
        {
            return;
        }

        var coordinator = Coordinator();
        if (coordinator is not null && coordinator != forwardedBy)
        {
            coordinator.Outbox.Enqueue(new JoinForwardFrame(newcomer, name, newcomerEndpoint));
            return;
        }

        var verdict = Admit(newcomer, name, newcomerEndpoint, now);
        _controlOut.Enqueue((newcomerEndpoint, newcomer, verdict));
    }

    private Frame Admit(MemberId newcomer, string name, IPEndPoint endpoint, TimeSpan now)
    {
        if (MemberName.Validate(name) is { } problem)
        {
            return new JoinDenyFrame(DenyReason.InvalidName, problem);
        }

        foreach (var expired in _reservations.Where(r => r.Value.Expires <= now).Select(r => r.Key).ToList())
        {
            _reservations.Remove(expired);
        }

        // A member that introduced itself, or one we hold a slot for, gets the same answer again. One that is only
        // listed to us (admitted elsewhere, its answer lost) is judged afresh: whoever admitted it may have forgotten
        // (a restarted server) and given its slot away.
        var known = (_peers.TryGetValue(newcomer, out var existing) && existing.InView && existing.HeardIntro) || _reservations.ContainsKey(newcomer);
        if (!known)
        {
            if (_tombstones.Contains(newcomer))
            {
                return new JoinDenyFrame(DenyReason.Other, "this incarnation was removed from the group; restart to join again");
            }

            var taken = string.Equals(Self.Name, name, StringComparison.OrdinalIgnoreCase)
                || _peerOrder.Exists(p => p.InView && p.Id != newcomer && string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
                || _reservations.Values.Any(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase));
            if (taken)
            {
                return new JoinDenyFrame(DenyReason.NameTaken, $"the name '{name}' is already taken in this group");
            }

            var size = 1 + _peerOrder.Count(p => p.InView && p.Id != newcomer)
                + _reservations.Keys.Count(id => id != newcomer && !(_peers.TryGetValue(id, out var listed) && listed.InView));
            if (size >= _options.MaxMembers)
            {
                return new JoinDenyFrame(DenyReason.Full, $"the group already has {_options.MaxMembers} members");
            }

            _reservations[newcomer] = new Reservation(name, now + ReservationLifetime, NextSeniority());
        }

        var members = new List<MemberRecord> { new(Self.Id, Self.Name, _selfEndpoint) };
        members.AddRange(ViewRecords(exclude: newcomer));
        var seniority = _reservations.TryGetValue(newcomer, out var reserved) ? reserved.Seniority
            : existing is { HeardIntro: true } ? existing.Seniority
            : NextSeniority();
        return new JoinAcceptFrame(endpoint, members, seniority);
    }

    /// <summary>One more than the largest admission order this node knows of (itself, introduced members, reservations).</summary>
    private ulong NextSeniority()
    {
        var max = _seniority;
        foreach (var p in _peerOrder)
        {
            if (p.InView && p.HeardIntro)
            {
                max = Math.Max(max, p.Seniority);
            }
        }

        foreach (var r in _reservations.Values)
        {
            max = Math.Max(max, r.Seniority);
        }

        return max + 1;
    }

    /// <summary>
    /// The admission coordinator: the most senior of this node and the introduced members in view (smallest admission
    /// order, then smallest id); null when that is us. A newcomer is always admitted with a larger order than its
    /// admitter's, so admitting someone never hands the role to a member that does not know the pending admissions.
    /// </summary>
    private Peer? Coordinator()
    {
        Peer? best = null;
        foreach (var p in _peerOrder)
        {
            if (p.InView && p.HeardIntro && MoreSenior(p.Seniority, p.Id, best?.Seniority ?? _seniority, best?.Id ?? Self.Id))
            {
                best = p;
            }
        }

        return best;
    }

    private static bool MoreSenior(ulong seniority, MemberId id, ulong thanSeniority, MemberId thanId) =>
        seniority < thanSeniority || (seniority == thanSeniority && id.CompareTo(thanId) < 0);

    private sealed record Reservation(string Name, TimeSpan Expires, ulong Seniority);

    private void Deny(DenyReason reason, string message)
    {
        State = EngineState.Denied;
        _events.Enqueue(new DeniedEvent(reason, message));
    }

    private Peer? LearnPeer(MemberId id, string name, IPEndPoint endpoint, TimeSpan now, bool introduce = true)
    {
        if (id == Self.Id || _tombstones.Contains(id) || !MemberName.IsValid(name))
        {
            return null;
        }

        if (_peers.TryGetValue(id, out var existing))
        {
            return existing;
        }

        var peer = new Peer(id, name, endpoint, _options)
        {
            MyBase = StreamBaseForNewPeer(),
            NextIntroAt = now,
            LastHeard = now,
            NextPingAt = now + _options.HeartbeatInterval,
            LearnedAt = now,
        };
        _peers.Add(id, peer);
        _peerOrder.Add(peer);
        _reservations.Remove(id);
        if (!_origins.ContainsKey(id))
        {
            AddOrigin(id, name);
        }

        // Our stream for them starts after MyBase: nothing earlier is owed, so acks start there too.
        if (peer.MyBase < MySeq)
        {
            peer.RetxAt = now; // the messages we still hold go to it as well (StreamBaseForNewPeer)
        }

        if (introduce)
        {
            SendIntro(peer, now);
        }

        return peer;
    }

    /// <summary>
    /// Where our broadcast stream starts for a member we just learned of: after the last chunk every member in view has
    /// acknowledged (we released it), at a message boundary. Members learn of a newcomer at different moments, so it
    /// may have joined before we learned of it, and what we sent since then is owed to it; what we still hold is sent
    /// to it too (older messages are before its time: history covers them, and the ids make them exactly once).
    /// </summary>
    private ulong StreamBaseForNewPeer()
    {
        var start = Math.Min(_self.Stable, MySeq);
        while (start < MySeq && !(_self.Chunks.TryGetValue(start + 1, out var chunk) && (chunk.Flags & ChunkFlags.First) != 0))
        {
            start++;
        }

        return start;
    }

    private void SendIntro(Peer peer, TimeSpan now)
    {
        peer.IntroAttempts++;
        peer.NextIntroAt = now + Max(peer.Rtt.RetransmitTimeout(Math.Min(peer.IntroAttempts - 1, 2)), MinIntroRetry);
        peer.Outbox.Enqueue(new IntroFrame(!peer.HeardIntro, Self.Name, _selfEndpoint, peer.MyBase, ViewRecords(exclude: peer.Id), DepartedClock(), _seniority));
    }

    private void OnIntro(Peer peer, IPEndPoint from, IntroFrame intro, TimeSpan now)
    {
        peer.Endpoint = from;
        if (!peer.HeardIntro)
        {
            _downProbes.RemoveAll(p => string.Equals(p.Name, intro.Name, StringComparison.Ordinal)); // it is back as a new incarnation
            peer.HeardIntro = true;
            peer.Seniority = intro.Seniority;
            peer.Name = intro.Name;
            var origin = _origins[peer.Id];
            origin.Name = intro.Name;
            origin.BaseKnown = true;
            origin.Base = intro.BaseSeq;
            origin.Contig = Math.Max(origin.Contig, intro.BaseSeq);
            origin.Delivered = Math.Max(origin.Delivered, intro.BaseSeq);
            origin.Highest = Math.Max(origin.Highest, intro.BaseSeq);
            origin.Stable = Math.Max(origin.Stable, intro.BaseSeq);
            if (State is EngineState.Joined)
            {
                _events.Enqueue(new MemberStatusEvent(peer.Ref, MemberStatus.Up));
            }
        }

        if (intro.ReplyRequested)
        {
            peer.Outbox.Enqueue(new IntroFrame(false, Self.Name, _selfEndpoint, peer.MyBase, ViewRecords(exclude: peer.Id), DepartedClock(), _seniority));
        }

        foreach (var m in intro.Known)
        {
            if (m.Id != Self.Id && string.Equals(m.Name, Self.Name, StringComparison.Ordinal))
            {
                ForgetPreviousIncarnation(m.Id, now);
            }
            else if (!_peers.ContainsKey(m.Id) && State is EngineState.Joining or EngineState.Joined)
            {
                LearnPeer(m.Id, m.Name, m.Endpoint, now);
            }
        }

        if (intro.Departed is { } departed)
        {
            foreach (var e in departed.Entries)
            {
                AdoptDeparted(e.Member, e.Value, now);
            }
        }
    }

    private void MaybeFinishJoin(TimeSpan now)
    {
        if (State != EngineState.Joining || !_accepted)
        {
            return;
        }

        var all = true;
        foreach (var id in _listed)
        {
            if (_peers.TryGetValue(id, out var p) && p.InView && !p.HeardIntro)
            {
                all = false;
                break;
            }
        }

        if (!all && now < _introDeadline)
        {
            return;
        }

        State = EngineState.Joined;
        _introDeadline = TimeSpan.MaxValue;
        _nextLeaseAt = LeaseTarget is null ? TimeSpan.MaxValue : now;
        _nextGossipAt = now + MembershipGossipInterval;
        var members = new List<MemberRef> { Self };
        foreach (var p in _peerOrder)
        {
            if (p.InView && p.HeardIntro)
            {
                members.Add(p.Ref);
            }
        }

        _events.Enqueue(new JoinedEvent(Self, members));
        RunDelivery();
    }

    private void SetStatus(Peer peer, MemberStatus status)
    {
        if (peer.Status == status)
        {
            return;
        }

        peer.Status = status;
        if (peer.HeardIntro)
        {
            _events.Enqueue(new MemberStatusEvent(peer.Ref, status));
        }
    }

    private void MarkDown(Peer peer)
    {
        if (_origins.TryGetValue(peer.Id, out var origin))
        {
            origin.DepartedAt ??= _now;
            if (!origin.BaseKnown)
            {
                // It never introduced itself to us: we deliver none of its stream and its entries in others'
                // clocks up to what we have heard of count as before our time (later ones are fetched from holders).
                origin.BaseKnown = true;
                origin.Base = origin.Contig = origin.Delivered = origin.Stable = origin.Highest;
            }
        }

        SetStatus(peer, MemberStatus.Down);
        _tombstones.Add(peer.Id);
        _downed.Add(peer.Id);
        if (peer.HeardIntro)
        {
            if (_downProbes.Count >= MaxDownProbes)
            {
                _downProbes.RemoveAt(0);
            }

            _downProbes.Add(new DownProbe(peer.Id, peer.Name, peer.Endpoint, _now + _options.DownProbeFor));
            _nextDownProbeAt = Min(_nextDownProbeAt, _now + _options.DownProbeInterval);
        }

        ReleaseLinks(peer);
        UpdateStability();
    }

    /// <summary>
    /// A member we have never heard from (listed to us, its introductions not through yet) gets four times the down
    /// timeout: there is no liveness history to judge, only a few introduction attempts, and declaring it down too
    /// early would evict a newcomer whose first datagrams to us were unlucky.
    /// </summary>
    private TimeSpan DownAfterFor(Peer p) => p.HeardIntro ? _options.DownAfter : 4 * _options.DownAfter;

    // ------------------------------------------------------------------ eviction and merge

    /// <summary>At most this many members declared down are probed at once (the most recent).</summary>
    private const int MaxDownProbes = 16;

    /// <summary>Eviction notices to one incarnation are at most this frequent.</summary>
    private static readonly TimeSpan NoticeInterval = TimeSpan.FromMilliseconds(250);

    private sealed record DownProbe(MemberId Id, string Name, IPEndPoint Endpoint, TimeSpan Until);

    /// <summary>
    /// Pings the last address of every member declared down in the last <see cref="EngineOptions.DownProbeFor"/>: a
    /// resumed or reconnected member answers (anything), which earns it an eviction notice, and a member on the other
    /// side of a healed partition, which declared us down too, answers with its own notice.
    /// </summary>
    private void ProbeDownMembers(TimeSpan now)
    {
        _downProbes.RemoveAll(p => p.Until <= now);
        foreach (var probe in _downProbes)
        {
            _controlOut.Enqueue((probe.Endpoint, probe.Id, new PingFrame((ulong)now.Ticks)));
            Stats.DownProbesSent++;
        }

        _nextDownProbeAt = _downProbes.Count == 0 ? TimeSpan.MaxValue : now + _options.DownProbeInterval;
    }

    private void NoticeEvicted(IPEndPoint endpoint, MemberId id, TimeSpan now)
    {
        if (State != EngineState.Joined || id.IsNone)
        {
            return;
        }

        if (_noticeAllowedAt.TryGetValue(id, out var allowed) && now < allowed)
        {
            return;
        }

        if (_noticeAllowedAt.Count >= 4 * MaxDownProbes)
        {
            _noticeAllowedAt.Clear();
        }

        _noticeAllowedAt[id] = now + NoticeInterval;
        var (size, seniority, senior) = ViewSummary();
        _controlOut.Enqueue((endpoint, id, new EvictedFrame(size, seniority, senior)));
        Stats.EvictionNoticesSent++;
    }

    /// <summary>This node's view: how many members (itself included) and its most senior member.</summary>
    private (byte Size, ulong Seniority, MemberId Id) ViewSummary()
    {
        var size = 1;
        var seniority = _seniority;
        var id = Self.Id;
        foreach (var p in _peerOrder)
        {
            if (p.InView && p.HeardIntro)
            {
                size++;
                if (MoreSenior(p.Seniority, p.Id, seniority, id))
                {
                    (seniority, id) = (p.Seniority, p.Id);
                }
            }
        }

        return ((byte)Math.Min(size, 16), seniority, id);
    }

    /// <summary>
    /// Another member's group declared us down. If we still see that member, the group moved on without us (we were
    /// paused or cut off): we rejoin. If we declared it down too (a healed partition), the smaller side rejoins the
    /// larger one, and on a tie the side whose most senior member is less senior; the other side answers with its own
    /// notice so both reach the same verdict.
    /// </summary>
    private void OnEvicted(IPEndPoint from, MemberId sender, Peer? peer, EvictedFrame notice)
    {
        if (State != EngineState.Joined)
        {
            return;
        }

        string reason;
        if (peer is { InView: true })
        {
            reason = $"{peer.Name} and the rest of the group declared this node down (it was paused or cut off)";
        }
        else
        {
            var (size, seniority, senior) = ViewSummary();
            // Same size and the same most senior member: not a split of the group but a broken link between the two of
            // us (an asymmetric cut, both still seen by the rest); the less senior of the two yields.
            var linkOnly = notice.ViewSize == size && notice.SeniorId == senior;
            var senderMoreSenior = peer is not null
                ? MoreSenior(peer.Seniority, sender, _seniority, Self.Id)
                : sender.CompareTo(Self.Id) < 0;
            var theyWin = notice.ViewSize > size
                || (notice.ViewSize == size && MoreSenior(notice.SeniorSeniority, notice.SeniorId, seniority, senior))
                || (linkOnly && senderMoreSenior);
            if (!theyWin)
            {
                NoticeEvicted(from, sender, _now);
                return;
            }

            reason = linkOnly
                ? $"the link to {peer?.Name ?? sender.ToString()} broke while both stayed in the group; the less senior of the two rejoins"
                : string.Create(CultureInfo.InvariantCulture, $"the group split; this side ({size} members) rejoins the other side ({notice.ViewSize} members)");
        }

        // Members of the group that removed us, should the one that told us be gone by the time we ask it.
        var fallbacks = peer is { InView: true }
            ? _peerOrder.Where(p => p.InView && p.HeardIntro && !p.Endpoint.Equals(from)).Select(static p => p.Endpoint).ToList()
            : _downProbes.Where(p => !p.Endpoint.Equals(from)).Select(static p => p.Endpoint).ToList();

        // Tell our side we are gone (they report us left and complete our stream), then stop.
        foreach (var p in _peerOrder)
        {
            if (p.InView)
            {
                _controlOut.Enqueue((p.Endpoint, p.Id, new LeaveFrame(MySeq)));
            }

            ReleaseLinks(p);
        }

        _downProbes.Clear();
        _nextDownProbeAt = TimeSpan.MaxValue;
        State = EngineState.Evicted;
        _events.Enqueue(new EvictedEvent(from, reason, fallbacks));
    }

    private void OnPeerLeave(Peer peer, LeaveFrame leave)
    {
        if (_origins.TryGetValue(peer.Id, out var origin))
        {
            origin.Highest = Math.Max(origin.Highest, leave.FinalSeq);
        }

        peer.AckNow = true;
        if (peer.InView)
        {
            if (_origins.TryGetValue(peer.Id, out var o))
            {
                o.DepartedAt ??= _now;
            }

            SetStatus(peer, MemberStatus.Left);
            _tombstones.Add(peer.Id);
            ReleaseLinks(peer);
            UpdateStability();
        }
    }

    /// <summary>Stops sending to a member that left the view; its broadcast stream stays to be completed and relayed.</summary>
    private static void ReleaseLinks(Peer peer)
    {
        peer.Outbox.Clear();
        peer.PrivUnacked.Clear();
        peer.RetxAt = peer.PrivRetxAt = peer.PrivNackAt = TimeSpan.MaxValue;
    }

    private void CheckLeaveDone()
    {
        var done = _now >= _leaveDeadline;
        if (!done && _leaveCopiesLeft == 0)
        {
            done = true;
            foreach (var p in _peerOrder)
            {
                if (p.InView && ((p.ReceivedOf(_self) < _leaveFinal && _leaveFinal > p.MyBase) || p.PrivUnacked.Count > 0))
                {
                    done = false;
                    break;
                }
            }
        }

        if (done)
        {
            FinishLeave();
        }
    }

    private void FinishLeave()
    {
        State = EngineState.Left;
        _events.Enqueue(new LeftEvent());
    }

    private List<MemberRecord> ViewRecords(MemberId exclude = default)
    {
        var list = new List<MemberRecord>();
        foreach (var p in _peerOrder)
        {
            if (p.InView && p.HeardIntro && p.Id != exclude && list.Count < IntroFrame.MaxKnown)
            {
                list.Add(new MemberRecord(p.Id, p.Name, p.Endpoint));
            }
        }

        return list;
    }

    // ------------------------------------------------------------------ broadcast streams

    private void OnChunk(Peer from, ChunkFrame c, TimeSpan now)
    {
        if (_retired.ContainsKey(c.Origin))
        {
            Stats.DuplicateChunks++; // a late copy of a retired stream
            return;
        }

        if (!_origins.TryGetValue(c.Origin, out var o) || !o.BaseKnown || c.Origin == Self.Id)
        {
            Stats.ForeignDropped++;
            return;
        }

        if (c.Seq <= o.Contig || o.Chunks.ContainsKey(c.Seq))
        {
            Stats.DuplicateChunks++;
            return;
        }

        if (c.Seq > o.Contig + (ulong)_options.ReceiveWindowChunks)
        {
            Stats.OutOfWindowChunks++;
            return;
        }

        o.Chunks.Add(c.Seq, c);
        c.Held = true; // the stream owns it now (see OriginStream.Chunks)
        while (o.Chunks.ContainsKey(o.Contig + 1))
        {
            o.Contig++;
        }

        if (c.Seq > o.Highest)
        {
            o.Highest = c.Seq;
            o.HolderHint = from.Id;
        }

        if (c.HasDeps)
        {
            LearnFromDeps(c.DepsSpan, from);
        }

        _ = now;
    }

    /// <summary>
    /// A message's dependency clock is what its sender delivered: the named streams go at least that far, and the sender
    /// holds those chunks until they are stable. Broadcasts and private messages both teach it; without the private case,
    /// a broadcast only crashed members had could look complete here, its stream retire, and the retired entry count as
    /// satisfied for a private message that depends on it.
    /// </summary>
    private void LearnFromDeps(ReadOnlySpan<ClockEntry> deps, Peer sender)
    {
        var k = 0;
        foreach (var e in deps) // sorted by id, like _originsById: one merge walk
        {
            if (NextOrigin(ref k, e.Member) is { BaseKnown: true } d && e.Value > d.Highest)
            {
                d.Highest = e.Value;
                d.HolderHint = sender.Id;
            }
        }
    }

    private void OnAck(Peer peer, AckFrame ack, TimeSpan now)
    {
        var k = 0;
        foreach (var e in ack.Received.EntrySpan) // ids ascending (the codec checks), so a merge walk finds the streams
        {
            var o = NextOrigin(ref k, e.Member);
            var old = o is not null ? peer.ReceivedOf(o) : peer.Received.GetValueOrDefault(e.Member);
            if (e.Value <= old)
            {
                continue;
            }

            peer.Received[e.Member] = e.Value;
            if (o is not null)
            {
                peer.MirrorReceived(o.Slot, e.Value);
                o.AckMoved = true;
            }

            if (o == _self)
            {
                RecordDelivered(peer, e.Value - Math.Min(e.Value, Math.Max(old, peer.MyBase)));
                // Karn's rule: only an ack that no resend could have caused gives a round-trip sample: the newest chunk it
                // covers and the first one it newly covers (the likely hole it closes) were both sent once. The sample
                // includes the peer's ack delay, which keeps the timeout above how late acks really come back.
                if (_sendLog.TryGetSentAt(e.Value, out var sentAt, out var resent) && !resent
                    && _sendLog.TryGetSentAt(old + 1, out _, out var holeResent) && !holeResent)
                {
                    peer.Rtt.AddSample(now - sentAt, _options.MaxAckDelay);
                }

                peer.Backoff = 0;
                peer.RetxAt = e.Value >= MySeq ? TimeSpan.MaxValue : RetransmitDue(peer, e.Value + 1, now);
            }
            else if (o is not null && o.BaseKnown && e.Value > o.Highest)
            {
                o.Highest = e.Value;
                o.HolderHint = peer.Id;
            }
        }

        if (ack.PrivateReceived > peer.PrivAcked && ack.PrivateReceived <= peer.PrivSent)
        {
            while (peer.PrivUnacked.Count > 0)
            {
                var firstKey = peer.PrivUnacked.Keys.First();
                if (firstKey > ack.PrivateReceived)
                {
                    break;
                }

                peer.PrivUnacked.Remove(firstKey);
            }

            RecordDelivered(peer, ack.PrivateReceived - peer.PrivAcked);
            peer.PrivAcked = ack.PrivateReceived;
            peer.PrivBackoff = 0;
            peer.PrivRetxAt = peer.PrivUnacked.Count == 0 ? TimeSpan.MaxValue : now + peer.Rtt.RetransmitTimeout(0);
        }
    }

    private void OnNack(Peer peer, NackFrame nack)
    {
        var budget = MaxRelayPerNack;
        if (nack.Stream == StreamKind.Broadcast)
        {
            if (!_origins.TryGetValue(nack.Origin, out var o))
            {
                return;
            }

            foreach (var range in nack.Missing)
            {
                // Only what we can hold is worth a lookup: (Stable, Contig]. This also bounds hostile ranges.
                var lo = Math.Max(range.First, o.Stable + 1);
                var hi = Math.Min(range.Last, o.Contig);
                for (var seq = lo; seq <= hi && budget > 0; seq++)
                {
                    if (o.Chunks.TryGetValue(seq, out var chunk))
                    {
                        peer.Outbox.Enqueue(chunk);
                        budget--;
                        if (o == _self)
                        {
                            _sendLog.Resent(seq);
                            RecordLost(peer, 1);
                            Stats.ChunksRetransmitted++;
                        }
                        else
                        {
                            Stats.ChunksRelayed++;
                        }
                    }
                }
            }
        }
        else if (nack.Origin == Self.Id && peer.InView)
        {
            foreach (var range in nack.Missing)
            {
                var lo = Math.Max(range.First, peer.PrivAcked + 1);
                var hi = Math.Min(range.Last, peer.PrivSent);
                for (var seq = lo; seq <= hi && budget > 0; seq++)
                {
                    if (peer.PrivUnacked.TryGetValue(seq, out var chunk))
                    {
                        peer.Outbox.Enqueue(chunk);
                        budget--;
                        RecordLost(peer, 1);
                        Stats.ChunksRetransmitted++;
                    }
                }
            }
        }
    }

    private void RetransmitBroadcast(Peer p, TimeSpan now)
    {
        var from = Math.Max(p.ReceivedOf(_self), p.MyBase) + 1;
        if (from > MySeq)
        {
            p.RetxAt = TimeSpan.MaxValue;
            p.Backoff = 0;
            if (p.LeaveNeeded)
            {
                p.Outbox.Enqueue(new LeaveFrame(_leaveFinal));
                p.LeaveNeeded = false;
            }

            return;
        }

        // Only chunks first sent at least one timeout ago: a chunk sent a moment ago (say, the tail of a burst that went
        // out after the last ack) cannot have been acknowledged yet, so resending it now would be spurious.
        var rto = p.Rtt.RetransmitTimeout(0);
        var sent = 0;
        for (var seq = from; seq <= MySeq && sent < MaxRetransmitBurst; seq++)
        {
            if (_sendLog.TryGetSentAt(seq, out var sentAt, out _) && sentAt + rto > now)
            {
                if (sent == 0)
                {
                    p.RetxAt = sentAt + rto; // nothing due yet: wait for the oldest unacknowledged chunk, no backoff
                    return;
                }

                break;
            }

            if (_self.Chunks.TryGetValue(seq, out var chunk))
            {
                p.Outbox.Enqueue(chunk);
                _sendLog.Resent(seq);
                Stats.ChunksRetransmitted++;
                Stats.ChunksRetransmittedOnTimeout++;
                sent++;
            }
        }

        RecordLost(p, sent);
        if (p.LeaveNeeded)
        {
            p.Outbox.Enqueue(new LeaveFrame(_leaveFinal));
        }

        p.Backoff++;
        p.RetxAt = now + p.Rtt.RetransmitTimeout(p.Backoff);
    }

    /// <summary>When <paramref name="next"/>, the oldest chunk <paramref name="p"/> has not acknowledged, is due for retransmission.</summary>
    private TimeSpan RetransmitDue(Peer p, ulong next, TimeSpan now) =>
        _sendLog.TryGetSentAt(next, out var sentAt, out _)
            ? Max(sentAt + p.Rtt.RetransmitTimeout(0), now)
            : now + p.Rtt.RetransmitTimeout(0);

    private void RetransmitPrivate(Peer p, TimeSpan now)
    {
        var sent = 0;
        foreach (var chunk in p.PrivUnacked.Values)
        {
            if (sent++ >= MaxRetransmitBurst)
            {
                break;
            }

            p.Outbox.Enqueue(chunk);
            Stats.ChunksRetransmitted++;
            Stats.ChunksRetransmittedOnTimeout++;
        }

        RecordLost(p, Math.Min(sent, MaxRetransmitBurst));
        p.PrivBackoff++;
        p.PrivRetxAt = p.PrivUnacked.Count == 0 ? TimeSpan.MaxValue : now + p.Rtt.RetransmitTimeout(p.PrivBackoff);
    }

    /// <summary>Schedules a negative ack at once for every stream with a newly seen gap.</summary>
    private void ScheduleGapRepair(TimeSpan now)
    {
        foreach (var o in _originOrder)
        {
            if (o.BaseKnown && o.Highest > o.Contig)
            {
                if (o.NackAt == TimeSpan.MaxValue)
                {
                    // A run of gaps begins: everything missing is asked for after the reorder delay.
                    o.NackAt = o.NackRepeatAt = now + ReorderDelay(o.Id);
                    o.NackFreshAt = TimeSpan.MaxValue;
                    o.NackAttempts = 0;
                    o.NackedThrough = o.FreshScannedThrough = o.Contig;
                }
                else if (o.NackFreshAt == TimeSpan.MaxValue && HasFreshGap(o))
                {
                    // A busy stream under steady loss is never gap-free: a gap that opened after the last request is new
                    // loss and is asked for after the reorder delay too, not at the repeat timeout of the older ones.
                    o.NackFreshAt = now + ReorderDelay(o.Id);
                    o.NackAt = Min(o.NackRepeatAt, o.NackFreshAt);
                }
            }
            else
            {
                o.NackAt = o.NackRepeatAt = o.NackFreshAt = TimeSpan.MaxValue;
            }
        }

        foreach (var p in _peerOrder)
        {
            if (p.InView && p.PrivHighest > p.PrivContig)
            {
                if (p.PrivNackAt == TimeSpan.MaxValue)
                {
                    p.PrivNackAt = now + ReorderDelay(p.Id);
                    p.PrivNackAttempts = 0;
                }
            }
            else
            {
                p.PrivNackAt = TimeSpan.MaxValue;
            }
        }

        // Gaps found while handling an input are requested in this same round of output.
        foreach (var o in _originOrder)
        {
            if (o.NackAt <= now)
            {
                SendBroadcastNack(o, now);
            }
        }

        foreach (var p in _peerOrder)
        {
            if (p.PrivNackAt <= now)
            {
                SendPrivateNack(p, now);
            }
        }
    }

    /// <summary>
    /// How long a new gap in a stream waits before it is asked for: a datagram overtaken by a later one is not lost, so
    /// as in QUIC's time threshold (RFC 9002 section 6.1.2) a gap counts as a loss once it outlived 9/8 of the round trip
    /// to the stream's origin, and (for links whose delay varies a lot) its usual upper bound, srtt + 4 rttvar; at least
    /// 1 ms. Asking at once resent every reordered chunk.
    /// </summary>
    private TimeSpan ReorderDelay(MemberId origin)
    {
        if (!_peers.TryGetValue(origin, out var p))
        {
            return _options.InitialRtt;
        }

        var rtt = p.Rtt;
        return Max(Max(Max(rtt.Smoothed, rtt.Latest) * 9 / 8, rtt.Smoothed + (4 * rtt.Variation)), ReorderGranularity);
    }

    private static readonly TimeSpan ReorderGranularity = TimeSpan.FromMilliseconds(1);

    private void SendBroadcastNack(OriginStream o, TimeSpan now)
    {
        if (!o.BaseKnown || o.Highest <= o.Contig)
        {
            o.NackAt = o.NackRepeatAt = o.NackFreshAt = TimeSpan.MaxValue;
            return;
        }

        var target = ChooseHolder(o);
        if (target is null)
        {
            o.NackAt = o.NackRepeatAt = now + _options.HeartbeatInterval; // nobody known to hold it yet; acks will tell
            o.NackFreshAt = TimeSpan.MaxValue;
            return;
        }

        var full = now >= o.NackRepeatAt;
        var ranges = MissingRanges(full ? o.Contig : Math.Max(o.Contig, o.NackedThrough), o.Highest, o.Chunks.ContainsKey);
        if (ranges.Count > 0)
        {
            target.Outbox.Enqueue(new NackFrame(StreamKind.Broadcast, o.Id, ranges));
            Stats.NacksSent++;
        }

        o.NackedThrough = o.FreshScannedThrough = Math.Max(o.NackedThrough, ranges.Count > 0 ? ranges[^1].Last : o.Highest);
        o.NackFreshAt = TimeSpan.MaxValue;
        if (full)
        {
            if (o.NackAttempts > 0 && o.Contig > o.NackedAtContig)
            {
                // The stream moved since the last full request: repairs are arriving, so what is still missing is not a
                // request going unanswered. Backing off as if it were stalled busy streams for up to 16 timeouts.
                o.NackAttempts = 0;
            }

            o.NackedAtContig = o.Contig;
            o.NackAttempts++;
            o.NackRepeatAt = now + target.Rtt.RetransmitTimeout(Math.Min(o.NackAttempts - 1, 4));
        }

        o.NackAt = Min(o.NackRepeatAt, o.NackFreshAt);
    }

    /// <summary>Whether a chunk above everything asked for so far is missing (scans only what it has not looked at before).</summary>
    private static bool HasFreshGap(OriginStream o)
    {
        var from = Math.Max(Math.Max(o.NackedThrough, o.FreshScannedThrough), o.Contig) + 1;
        for (var seq = from; seq <= o.Highest; seq++)
        {
            if (!o.Chunks.ContainsKey(seq))
            {
                return true;
            }

            o.FreshScannedThrough = seq;
        }

        return false;
    }

    private void SendPrivateNack(Peer p, TimeSpan now)
    {
        if (!p.InView || p.PrivHighest <= p.PrivContig)
        {
            p.PrivNackAt = TimeSpan.MaxValue;
            return;
        }

        var ranges = MissingRanges(p.PrivContig, p.PrivHighest, p.PrivIn.ContainsKey);
        if (ranges.Count > 0)
        {
            p.Outbox.Enqueue(new NackFrame(StreamKind.Private, p.Id, ranges));
            Stats.NacksSent++;
        }

        p.PrivNackAttempts++;
        p.PrivNackAt = now + p.Rtt.RetransmitTimeout(Math.Min(p.PrivNackAttempts - 1, 4));
    }

    /// <summary>Alternates between the origin (if it is in view) and a member known to hold the missing chunks.</summary>
    private Peer? ChooseHolder(OriginStream o)
    {
        _peers.TryGetValue(o.Id, out var origin);
        if (origin is { InView: false })
        {
            origin = null;
        }

        Peer? holder = null;
        if (_peers.TryGetValue(o.HolderHint, out var hinted) && hinted.InView && hinted.ReceivedOf(o) > o.Contig)
        {
            holder = hinted;
        }
        else
        {
            var candidates = _peerOrder.FindAll(p => p.InView && p != origin && p.ReceivedOf(o) > o.Contig);
            if (candidates.Count > 0)
            {
                holder = candidates[_rng.NextInt(candidates.Count)];
            }
        }

        if (origin is not null && holder is not null && holder != origin)
        {
            return o.NackAttempts % 2 == 0 ? origin : holder;
        }

        return origin ?? holder ?? (_peers.TryGetValue(o.HolderHint, out var h) && h.InView ? h : null);
    }

    private static List<SeqRange> MissingRanges(ulong contig, ulong highest, Func<ulong, bool> have)
    {
        var ranges = new List<SeqRange>();
        var count = 0;
        ulong? start = null;
        for (var seq = contig + 1; seq <= highest && count < MaxNackChunks; seq++)
        {
            if (!have(seq))
            {
                start ??= seq;
                count++;
                continue;
            }

            if (start is { } s)
            {
                ranges.Add(new SeqRange(s, seq - 1));
                start = null;
                if (ranges.Count == NackFrame.MaxRanges)
                {
                    return ranges;
                }
            }
        }

        if (start is { } last)
        {
            ranges.Add(new SeqRange(last, Math.Min(highest, last + (ulong)MaxNackChunks)));
        }

        return ranges;
    }

    /// <summary>
    /// Releases the chunks every member in view has received (and we delivered). <paramref name="movedOnly"/>: only
    /// the streams an ack or our own delivery moved since the last time (a datagram's update; a member's received
    /// counts change nowhere else, and everything else, timers included, works out all of them).
    /// </summary>
    private void UpdateStability(bool movedOnly = false)
    {
        var stored = 0;
        foreach (var o in _originOrder)
        {
            if (!o.BaseKnown)
            {
                continue;
            }

            var own = Math.Min(o.Delivered, o.Contig);
            if (movedOnly && !o.AckMoved && own == o.StabilityOwnSeen)
            {
                stored += o.Chunks.Count;
                continue;
            }

            o.AckMoved = false;
            o.StabilityOwnSeen = own;
            var stable = own;
            foreach (var p in _peerOrder)
            {
                if (stable <= o.Stable)
                {
                    break; // nothing to release: a member at the stable point holds it there until its ack moves
                }

                if (p.InView && p.Id != o.Id)
                {
                    stable = Math.Min(stable, p.ReceivedOf(o));
                }
            }

            for (var seq = o.Stable + 1; seq <= stable; seq++)
            {
                if (o.Chunks.Remove(seq, out var released))
                {
                    ReleaseChunk(released);
                }
            }

            o.Stable = Math.Max(o.Stable, stable);
            stored += o.Chunks.Count;
        }

        Stats.StoredChunks = stored;
        Stats.PooledChunks = _pool.Available;
    }

    /// <summary>
    /// A departed member's stream is retired once it is complete here, every member in view has received all of
    /// it (or joined after it departed), and that has held for <see cref="RetireGrace"/> (time for what was received
    /// to be delivered). Its clock entry then leaves our dependency clocks, which keeps them small over any amount
    /// of churn, and its state is released; entries naming it in others' clocks count as satisfied.
    /// </summary>
    private void RetireCompleteDepartedStreams()
    {
        for (var i = _originOrder.Count - 1; i >= 0; i--)
        {
            var o = _originOrder[i];
            if (o == _self || o.DepartedAt is not { } departedAt || !o.BaseKnown)
            {
                continue;
            }

            var complete = o.Contig == o.Delivered && o.Highest <= o.Contig;
            if (complete)
            {
                foreach (var p in _peerOrder)
                {
                    if (p.InView && p.ReceivedOf(o) < o.Delivered && p.LearnedAt <= departedAt && p.Name != o.Name)
                    {
                        complete = false;
                        break;
                    }
                }
            }

            if (!complete)
            {
                o.CompleteSince = null;
                continue;
            }

            o.CompleteSince ??= _now;
            if (_now - o.CompleteSince.Value < RetireGrace)
            {
                continue;
            }

            Retire(o.Id, o.Delivered, _now);
            foreach (var chunk in o.Chunks.Values)
            {
                ReleaseChunk(chunk);
            }

            o.Chunks.Clear();
            _origins.Remove(o.Id);
            _originOrder.RemoveAt(i);
            _freeSlots.Push(o.Slot);
            OriginsChanged();
            if (_peers.TryGetValue(o.Id, out var peer) && !peer.InView)
            {
                _peers.Remove(o.Id);
                _peerOrder.Remove(peer);
                _pollCursor = 0;
            }
        }
    }

    /// <summary>
    /// Remembers that <paramref name="id"/>'s stream is over (dependencies on it are satisfied). Only the most recent
    /// <see cref="MaxRemembered"/> are kept: retired entries leave every clock within seconds, so an older one can no
    /// longer be named by any message still in flight.
    /// </summary>
    private void Retire(MemberId id, ulong final, TimeSpan at)
    {
        if (!_retired.ContainsKey(id))
        {
            _retiredOrder.Enqueue(id);
        }

        _retired[id] = (final, at);
        while (_retiredOrder.Count > MaxRemembered)
        {
            _retired.Remove(_retiredOrder.Dequeue());
        }

        OriginsChanged();
    }

    /// <summary>
    /// One step of a merge walk over <see cref="_originsById"/> for ids visited in ascending order: moves
    /// <paramref name="k"/> to <paramref name="id"/>'s place and returns its stream, or null when there is none.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)] // called per clock entry on every chunk
    private OriginStream? NextOrigin(ref int k, MemberId id)
    {
        var sorted = _originsById;
        while (k < sorted.Length && sorted[k].Id.Value < id.Value)
        {
            k++;
        }

        return k < sorted.Length && sorted[k].Id == id ? sorted[k] : null;
    }

    /// <summary>
    /// A new broadcast stream: takes the lowest free slot in the members' received-count mirrors and fills that slot
    /// from what each member already reported of <paramref name="id"/> (an ack may name a stream before we know it).
    /// </summary>
    private OriginStream AddOrigin(MemberId id, string name)
    {
        var o = new OriginStream(id, name) { Slot = _freeSlots.Count > 0 ? _freeSlots.Pop() : _origins.Count };
        foreach (var p in _peerOrder)
        {
            p.MirrorReceived(o.Slot, p.Received.GetValueOrDefault(id));
        }

        _origins.Add(id, o);
        _originOrder.Add(o);
        OriginsChanged();
        return o;
    }

    /// <summary>After an origin came or went, or the retired set changed: rebuilds <see cref="_originsById"/> and the streams' <see cref="OriginStream.Retired"/>.</summary>
    private void OriginsChanged()
    {
        var sorted = _originOrder.ToArray();
        Array.Sort(sorted, static (a, b) => a.Id.Value.CompareTo(b.Id.Value));
        foreach (var o in sorted)
        {
            o.Retired = _retired.ContainsKey(o.Id);
        }

        _originsById = sorted;
    }

    /// <summary>
    /// For tests: a description of the first member whose slot mirror (<see cref="Peer.ReceivedOf"/>) differs from its
    /// received counts for one of our streams, or null when they all agree (slots are reused as streams come and go).
    /// </summary>
    internal string? ReceivedMirrorDisagreement()
    {
        foreach (var p in _peerOrder)
        {
            foreach (var o in _originOrder)
            {
                var counted = p.Received.GetValueOrDefault(o.Id);
                if (p.ReceivedOf(o) != counted)
                {
                    return $"{p.Name} has {p.ReceivedOf(o)} of {o.Name} ({o.Id}, slot {o.Slot}) mirrored, {counted} counted";
                }
            }
        }

        return null;
    }

    /// <summary>What this engine holds, for tests that prove memory stays bounded under churn.</summary>
    internal EngineFootprint Footprint => new(
        _peers.Count, _origins.Count, _retired.Count, _tombstones.Count, _downed.Count, _downProbes.Count,
        _noticeAllowedAt.Count, _reservations.Count, _origins.Values.Sum(static o => o.Chunks.Count));

    /// <summary>
    /// A member under our own name with another id is an earlier incarnation of this node: its whole stream is
    /// before our time, so dependencies on it count as satisfied and its datagrams are not for us.
    /// </summary>
    private void ForgetPreviousIncarnation(MemberId id, TimeSpan now)
    {
        _tombstones.Add(id);
        if (!_retired.ContainsKey(id) && !_origins.ContainsKey(id))
        {
            Retire(id, 0, now);
        }
    }

    /// <summary>A member told us that <paramref name="id"/> departed after delivering <paramref name="delivered"/> of its stream.</summary>
    private void AdoptDeparted(MemberId id, ulong delivered, TimeSpan now)
    {
        _peers.TryGetValue(id, out var peer);
        if (id == Self.Id || _retired.ContainsKey(id) || peer is { HeardIntro: true })
        {
            return;
        }

        if (!_origins.TryGetValue(id, out var o))
        {
            o = AddOrigin(id, "?");
        }

        o.DepartedAt ??= now;
        if (!o.BaseKnown || (o.Delivered == o.Base && o.Chunks.Count == 0 && delivered > o.Base))
        {
            o.BaseKnown = true;
            o.Adopted = true;
            o.Base = o.Contig = o.Delivered = o.Stable = delivered;
            o.Highest = Math.Max(o.Highest, delivered);
        }

        if (peer is { InView: true })
        {
            // Listed to us but never heard, and the group has since removed it: it is not a member any more. Were it
            // to resume and introduce itself, we would take messages the others refuse (it gets a notice instead).
            MarkDown(peer);
        }
    }

    /// <summary>Departed members and how much of their streams we delivered, most recent first, for introductions.</summary>
    private VectorClock DepartedClock()
    {
        var entries = new List<(ClockEntry Entry, TimeSpan At)>();
        foreach (var o in _originOrder)
        {
            if (o != _self && o.DepartedAt is { } at && o.BaseKnown && o.Delivered > 0)
            {
                entries.Add((new ClockEntry(o.Id, o.Delivered), at));
            }
        }

        foreach (var (id, (final, at)) in _retired)
        {
            if (_now - at < RetiredAdvertised && final > 0)
            {
                entries.Add((new ClockEntry(id, final), at));
            }
        }

        entries.Sort(static (a, b) => b.At.CompareTo(a.At));
        return VectorClock.From(entries.Take(IntroFrame.MaxDeparted).Select(static e => e.Entry));
    }

    // ------------------------------------------------------------------ private streams

    private void OnPrivateChunk(Peer peer, PrivateChunkFrame c, TimeSpan now)
    {
        _ = now;
        if (c.Seq <= peer.PrivContig || peer.PrivIn.ContainsKey(c.Seq))
        {
            Stats.DuplicateChunks++;
            return;
        }

        if (c.Seq > peer.PrivContig + (ulong)_options.ReceiveWindowChunks)
        {
            Stats.OutOfWindowChunks++;
            return;
        }

        peer.PrivIn.Add(c.Seq, c);
        while (peer.PrivIn.ContainsKey(peer.PrivContig + 1))
        {
            peer.PrivContig++;
        }

        peer.PrivHighest = Math.Max(peer.PrivHighest, c.Seq);
        if (c.Deps is { } deps)
        {
            LearnFromDeps(deps.EntrySpan, peer);
        }
    }

    // ------------------------------------------------------------------ delivery

    /// <summary>Delivers every complete message whose causal predecessors are delivered, until nothing changes.</summary>
    private void RunDelivery()
    {
        if (State is not (EngineState.Joined or EngineState.Leaving) || Quarantined)
        {
            return;
        }

        // A pass delivers what it can from every stream. Another pass can deliver more only when this one delivered
        // something and held a message back for its dependencies (a delivery later in the pass may have covered them):
        // an incomplete message stays incomplete until a datagram comes. So a pass that held nothing back is the last.
        bool progress;
        int held;
        var guard = 0;
        do
        {
            progress = false;
            held = 0;
            var privateHeld = false;
            foreach (var o in _originOrder)
            {
                while (o != _self && o.BaseKnown && TryDeliverBroadcast(o))
                {
                    progress = true;
                }

                held += o.Blocked ? 1 : 0;
            }

            foreach (var p in _peerOrder)
            {
                while (TryDeliverPrivate(p, ref privateHeld))
                {
                    progress = true;
                }
            }

            progress &= held > 0 || privateHeld;
        }
        while (progress && ++guard < 100_000);

        Stats.HeldBack = held;
        CheckNothingDeliverable();
    }

    /// <summary>Debug builds: after <see cref="RunDelivery"/> no stream has a message it could deliver (its early end is sound).</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    private void CheckNothingDeliverable()
    {
        var ignored = false;
        foreach (var o in _originOrder)
        {
            Debug.Assert(!(o != _self && o.BaseKnown && TryDeliverBroadcast(o)), $"a message of {o.Id} was deliverable after the delivery passes");
        }

        foreach (var p in _peerOrder)
        {
            Debug.Assert(!TryDeliverPrivate(p, ref ignored), $"a private message of {p.Id} was deliverable after the delivery passes");
        }
    }

    private ulong DeliveredOf(MemberId id) =>
        _retired.ContainsKey(id) ? ulong.MaxValue : _origins.TryGetValue(id, out var o) && o.BaseKnown ? o.Delivered : 0;

    private bool TryDeliverBroadcast(OriginStream o)
    {
        o.Blocked = false;
        if (o.Delivered >= o.Contig)
        {
            return false; // nothing received past what was delivered (the common case, checked before the lookup)
        }

        var first = o.Delivered + 1;
        switch (FindMessage(o.Chunks, first, o.Contig, out var head, out var last, out var total))
        {
            case MessageState.Incomplete:
                return false;
            case MessageState.Corrupt:
                o.Delivered = first; // a stream that does not start a message here is corrupt: skip the chunk
                Stats.MalformedDropped++;
                return true;
        }

        var deps = head!.DepsSpan;
        if (!IsCovered(deps, except: o.Id))
        {
            o.Blocked = true;
            return false;
        }

        var id = new MessageId(MessageKind.Broadcast, o.Id, MemberId.None, first);
        EnqueueAssembled(id, new MemberRef(o.Name, o.Id), null, o.Chunks, first, last, total, deps); // chunks kept for relay until stable
        o.Delivered = last;
        Stats.BroadcastsDelivered++;
        return true;
    }

    /// <summary>Delivers the next private message from <paramref name="p"/> if it can; sets <paramref name="heldByDeps"/> when its dependencies hold it back.</summary>
    private bool TryDeliverPrivate(Peer p, ref bool heldByDeps)
    {
        if (p.PrivDelivered >= p.PrivContig)
        {
            return false;
        }

        var first = p.PrivDelivered + 1;
        switch (FindMessage(p.PrivIn, first, p.PrivContig, out var head, out var last, out var total))
        {
            case MessageState.Incomplete:
                return false;
            case MessageState.Corrupt:
                p.PrivIn.Remove(first);
                p.PrivDelivered = first;
                Stats.MalformedDropped++;
                return true;
        }

        var deps = head!.Deps ?? VectorClock.Empty;
        if (!IsCovered(deps.EntrySpan, except: MemberId.None))
        {
            heldByDeps = true;
            return false;
        }

        var id = new MessageId(MessageKind.Private, p.Id, Self.Id, first);
        EnqueueAssembled(id, p.Ref, Self, p.PrivIn, first, last, total, deps.EntrySpan);
        for (var seq = first; seq <= last; seq++)
        {
            p.PrivIn.Remove(seq);
        }

        p.PrivDelivered = last;
        Stats.PrivatesDelivered++;
        return true;
    }

    private enum MessageState
    {
        Incomplete,
        Corrupt,
        Complete,
    }

    /// <summary>Finds the message that starts at <paramref name="first"/> among a stream's chunks received up to <paramref name="contig"/>.</summary>
    private static MessageState FindMessage<T>(SeqMap<T> chunks, ulong first, ulong contig, out T? head, out ulong last, out int total)
        where T : class, IMessageChunk
    {
        last = first;
        total = 0;
        if (first > contig || !chunks.TryGetValue(first, out head))
        {
            head = null;
            return MessageState.Incomplete;
        }

        if ((head.Flags & ChunkFlags.First) == 0)
        {
            return MessageState.Corrupt;
        }

        var tail = head;
        total = head.Payload.Length;
        while ((tail.Flags & ChunkFlags.Last) == 0)
        {
            if (last + 1 > contig || !chunks.TryGetValue(last + 1, out tail!))
            {
                return MessageState.Incomplete;
            }

            last++;
            total += tail.Payload.Length;
        }

        return MessageState.Complete;
    }

    /// <summary>True when our delivered clock covers <paramref name="deps"/> (ignoring the entry of <paramref name="except"/>, whose order is the stream's own).</summary>
    private bool IsCovered(ReadOnlySpan<ClockEntry> deps, MemberId except)
    {
        // DeliveredOf for each entry, as one merge walk of two id-sorted lists; ids not among the origins are looked up.
        var k = 0;
        foreach (var e in deps)
        {
            if (e.Member == except)
            {
                continue;
            }

            var delivered = NextOrigin(ref k, e.Member) is { } o
                ? o.Retired ? ulong.MaxValue : o.BaseKnown ? o.Delivered : 0
                : DeliveredOf(e.Member);
            if (delivered < e.Value)
            {
                return false;
            }
        }

        return true;
    }

    // ------------------------------------------------------------------ helpers

    private VectorClock CurrentClock()
    {
        // Counted first, then filled: one exact array that the clock keeps (no list, no copy).
        var count = 0;
        foreach (var o in _originOrder)
        {
            count += o.BaseKnown && o.Delivered > 0 ? 1 : 0;
        }

        if (count == 0)
        {
            return VectorClock.Empty;
        }

        var entries = new ClockEntry[count];
        var k = 0;
        foreach (var o in _originOrder)
        {
            if (o.BaseKnown && o.Delivered > 0)
            {
                entries[k++] = new ClockEntry(o.Id, o.Delivered);
            }
        }

        return VectorClock.FromOwnedArray(entries);
    }

    /// <summary>An adopted base is "before our time", not chunks we hold: advertising it would send others asking us for them.</summary>
    private static bool Advertised(OriginStream o) => o.BaseKnown && o.Contig > 0 && !(o.Adopted && o.Contig <= o.Base);

    /// <summary>The ack to send now: our cumulative receive vector (every advertised stream's contiguous point) in the engine's one reusable ack frame (no allocation).</summary>
    private AckFrame OutgoingAck(ulong privateReceived)
    {
        var k = 0;
        foreach (var o in _originsById) // sorted: every insert is an append
        {
            if (Advertised(o))
            {
                k = InsertSorted(ref _ackScratch, k, new ClockEntry(o.Id, o.Contig));
            }
        }

        return _outgoingAck.Fill(_ackScratch.AsSpan(0, k), privateReceived);
    }

    /// <summary>Splits a payload into chunk payloads that fit one datagram each (the first also carries deps).</summary>
    private List<ReadOnlyMemory<byte>>? Split(ReadOnlyMemory<byte> payload, int clockSize, bool broadcast)
    {
        // header + frame header + origin (broadcast only) + seq varint (max 10) + flags + payload length varint (max 2)
        var fixedCost = WireCodec.HeaderSize + WireCodec.FrameHeaderSize + (broadcast ? 8 : 0) + 10 + 1 + 2;
        var firstCapacity = _options.MaxDatagramBytes - fixedCost - clockSize;
        var restCapacity = _options.MaxDatagramBytes - fixedCost;
        if (firstCapacity < 16)
        {
            return null;
        }

        var pieces = new List<ReadOnlyMemory<byte>>();
        var take = Math.Min(firstCapacity, payload.Length);
        pieces.Add(payload[..take].ToArray());
        var offset = take;
        while (offset < payload.Length)
        {
            take = Math.Min(restCapacity, payload.Length - offset);
            pieces.Add(payload.Slice(offset, take).ToArray());
            offset += take;
        }

        return pieces;
    }

    /// <summary>How a payload of <paramref name="length"/> bytes is cut into chunks (the rule of <see cref="Split"/>), without cutting it.</summary>
    private bool TrySplit(int length, int clockSize, bool broadcast, out int firstCapacity, out int restCapacity, out int pieces)
    {
        var fixedCost = WireCodec.HeaderSize + WireCodec.FrameHeaderSize + (broadcast ? 8 : 0) + 10 + 1 + 2;
        firstCapacity = _options.MaxDatagramBytes - fixedCost - clockSize;
        restCapacity = _options.MaxDatagramBytes - fixedCost;
        pieces = 0;
        if (firstCapacity < 16)
        {
            return false;
        }

        pieces = 1;
        var rest = length - Math.Min(firstCapacity, length);
        pieces += (rest + restCapacity - 1) / restCapacity;
        return true;
    }

    private void Advance(TimeSpan now)
    {
        if (now > _now)
        {
            if (State == EngineState.Joined && now - _now > _options.SuspectAfter && _now > TimeSpan.Zero)
            {
                OnStall(now);
            }

            _now = now;
        }
    }

    /// <summary>
    /// No input at all for longer than <see cref="EngineOptions.SuspectAfter"/> although a member's timers fire every
    /// heartbeat: this process was frozen (SIGSTOP, a suspended machine, a long pause). The silence of the others says
    /// nothing then, so they are not declared down for it; if the group removed us meanwhile, its eviction notices
    /// arrive within a round trip.
    /// </summary>
    private void OnStall(TimeSpan now)
    {
        Stats.Stalls++;
        foreach (var p in _peerOrder)
        {
            if (p.InView)
            {
                p.LastHeard = Max(p.LastHeard, now);
            }
        }

        EnterQuarantine(now);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
