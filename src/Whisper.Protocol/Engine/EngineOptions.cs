namespace Whisper.Protocol.Engine;

/// <summary>
/// Immutable settings of one engine. Defaults suit a LAN or loopback group of up to 10 members;
/// every timing knob is documented with what it trades.
/// </summary>
public sealed record EngineOptions
{
    /// <summary>Largest group the engine will form (the mission's cap).</summary>
    public int MaxMembers { get; init; } = 10;

    /// <summary>Largest message payload in bytes (UTF-8 text up to 64 KiB); larger sends are refused.</summary>
    public int MaxMessageBytes { get; init; } = 64 * 1024;

    /// <summary>Largest datagram the engine produces. 1200 fits every IPv6 path without fragmentation.</summary>
    public int MaxDatagramBytes { get; init; } = Wire.WireCodec.MaxDatagramSize;

    /// <summary>
    /// Flow control: the most own broadcast chunks not yet acknowledged by every member. When full,
    /// <see cref="WhisperEngine.Broadcast"/> answers <see cref="SendStatus.WindowFull"/> and the adapter waits.
    /// Must hold at least one maximal message (64 KiB is about 60 chunks).
    /// </summary>
    public int SendWindowChunks { get; init; } = 1024;

    /// <summary>Flow control for one private stream: the most private chunks in flight to one peer.</summary>
    public int PrivateWindowChunks { get; init; } = 256;

    /// <summary>Receive bound per stream: chunks further than this beyond the contiguous point are dropped (they come again).</summary>
    public int ReceiveWindowChunks { get; init; } = 2048;

    /// <summary>RTT assumed before the first sample (RFC 9002 uses 333 ms for the open Internet; a LAN group is far closer).</summary>
    public TimeSpan InitialRtt { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Floor of the retransmission timeout. The timeout already adds <see cref="MaxAckDelay"/> and tracks how late acks
    /// really come back (they give RTT samples), and only chunks older than it are resent, so the floor can sit close to
    /// a LAN's round trip: a lost tail chunk is resent sooner.
    /// </summary>
    public TimeSpan MinRetransmitTimeout { get; init; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Ceiling of the retransmission timeout after exponential backoff.</summary>
    public TimeSpan MaxRetransmitTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a receiver may hold back an acknowledgement to batch it (RFC 9002 max_ack_delay).</summary>
    public TimeSpan MaxAckDelay { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// How late a driver may run the lenient timers (everything but loss repair: delayed acks, heartbeats, failure
    /// detection, leases, gossip, retries), see <see cref="WhisperEngine.NextTimeoutLatest"/>. The default is one tick
    /// of a 250 Hz kernel: a driver whose bounded waits end on scheduler ticks (Linux's <c>SO_RCVTIMEO</c>) then waits
    /// in its socket for a deadline less than a tick away instead of polling (a system call and a costlier wake-up for
    /// nearly every datagram while acks are pending). Acks may therefore come up to <see cref="MaxAckDelay"/> plus this
    /// late, and the retransmission timeout expects that much. 0 makes every timer exact.
    /// </summary>
    public TimeSpan TimerSlack { get; init; } = TimeSpan.FromMilliseconds(4);

    /// <summary>The longest a member holds an ack back, its timer's slack included: what a sender's retransmission timeout allows for.</summary>
    internal TimeSpan AckDelayBound => MaxAckDelay + TimerSlack;

    /// <summary>
    /// Loss rate of a link (estimated by the sender from its retransmissions and acks) above which datagrams carrying
    /// chunks to a lightly used peer are sent twice, back to back. Negative acks repair a gap as soon as a later
    /// datagram reveals it, but a lost tail (the last or only message of a burst) leaves no gap to see and waits for the
    /// retransmission timer: at 10% loss that is most single messages to 9 members. A second copy makes a lone message
    /// reach a member unless both copies are lost (1% instead of 10%). 1 or more switches it off.
    /// </summary>
    public double RedundantSendAboveLoss { get; init; } = 0.03;

    /// <summary>
    /// A peer is lightly used (see <see cref="RedundantSendAboveLoss"/>) while it has at most this many of our chunks
    /// unacknowledged: in a sustained stream gaps are visible and negative acks repair them, so copies would only cost.
    /// </summary>
    public int RedundantSendMaxUnacked { get; init; } = 8;

    /// <summary>Interval of pings to each member; pings measure RTT and prove liveness.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Silence after which a member is reported <see cref="MemberStatus.Suspect"/>.</summary>
    public TimeSpan SuspectAfter { get; init; } = TimeSpan.FromMilliseconds(1200);

    /// <summary>Silence after which a member is reported <see cref="MemberStatus.Down"/> and leaves the view.</summary>
    public TimeSpan DownAfter { get; init; } = TimeSpan.FromMilliseconds(2500);

    /// <summary>
    /// How long a member keeps probing the last address of a member it declared down (one ping per
    /// <see cref="DownProbeInterval"/>), so that when a partition heals or a paused process resumes the two sides
    /// find each other and the removed side rejoins.
    /// </summary>
    public TimeSpan DownProbeFor { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Interval of probes to members declared down (see <see cref="DownProbeFor"/>).</summary>
    public TimeSpan DownProbeInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Interval between join requests to the discovery contact.</summary>
    public TimeSpan JoinRetryInterval { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>Join requests sent before the join fails as <see cref="Wire.DenyReason.Unreachable"/>.</summary>
    public int JoinAttempts { get; init; } = 20;

    /// <summary>How long a newcomer waits for introductions from the listed members before it reports itself joined anyway.</summary>
    public TimeSpan IntroTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Interval of lease renewals to the discovery server. A restarted server re-learns the group from leases for its
    /// relearn window (2.5 s) before it hands out names: at 500 ms four or five of a member's leases fall in that window
    /// (all lost at 10% loss: about 10^-4), at 1 s two (about 10^-2; a lone member's name was then given to a newcomer).
    /// </summary>
    public TimeSpan LeaseInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a leaving node keeps retransmitting so its last messages reach everyone.</summary>
    public TimeSpan LeaveLinger { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Throws when the options contradict each other.</summary>
    public void Validate()
    {
        if (MaxMembers is < 1 or > 16)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMembers), MaxMembers, "must be 1-16");
        }

        if (MaxDatagramBytes is < 512 or > Wire.WireCodec.MaxDatagramSize)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDatagramBytes), MaxDatagramBytes, "must be 512-1200");
        }

        if (SendWindowChunks < 128 || PrivateWindowChunks < 128 || ReceiveWindowChunks < SendWindowChunks)
        {
            throw new ArgumentOutOfRangeException(nameof(SendWindowChunks), "windows must hold a 64 KiB message and receive >= send");
        }

        if (RedundantSendAboveLoss <= 0 || RedundantSendMaxUnacked < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(RedundantSendAboveLoss), "must be above 0 (1 or more switches redundancy off); the unacked bound must not be negative");
        }

        if (TimerSlack < TimeSpan.Zero || TimerSlack > TimeSpan.FromMilliseconds(100))
        {
            throw new ArgumentOutOfRangeException(nameof(TimerSlack), TimerSlack, "must be 0-100 ms");
        }

        if (SuspectAfter >= DownAfter || HeartbeatInterval >= SuspectAfter)
        {
            throw new ArgumentOutOfRangeException(nameof(SuspectAfter), "need HeartbeatInterval < SuspectAfter < DownAfter");
        }
    }
}
