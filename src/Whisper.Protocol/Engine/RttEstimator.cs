namespace Whisper.Protocol.Engine;

/// <summary>
/// Round-trip estimate per RFC 9002 section 5: smoothed RTT with 1/8 gain, RTT variation with 1/4 gain,
/// and a retransmission timeout of srtt + max(4 rttvar, 1 ms) + max_ack_delay (the peers' ack delay with their timers'
/// slack, <see cref="EngineOptions.AckDelayBound"/>), doubled per consecutive
/// timeout (exponential backoff) and clamped to the configured floor and ceiling.
/// </summary>
internal sealed class RttEstimator(EngineOptions options)
{
    private static readonly TimeSpan Granularity = TimeSpan.FromMilliseconds(1);

    public bool HasSample { get; private set; }

    public TimeSpan Smoothed { get; private set; } = options.InitialRtt;

    public TimeSpan Variation { get; private set; } = options.InitialRtt / 2;

    public TimeSpan Latest { get; private set; }

    /// <summary>The smallest sample seen (RFC 9002 min_rtt), never adjusted for ack delay.</summary>
    public TimeSpan Min { get; private set; } = TimeSpan.MaxValue;

    public void AddSample(TimeSpan rtt) => AddSample(rtt, TimeSpan.Zero);

    /// <summary>
    /// A sample that may include up to <paramref name="ackDelay"/> of the peer holding its ack back: as in RFC 9002
    /// section 5.3 the delay is taken off when that leaves at least <see cref="Min"/>, so the smoothed value tracks the
    /// network and the loops, and <see cref="RetransmitTimeout"/> adds the ack delay (with the peers' timer slack) once.
    /// (Taking off as much as leaves the minimum instead, tried on 2026-12-06, hid the network's own variation behind
    /// the assumed hold: with 2 ms of jitter the timeout fell below real round trips and chunks were resent for nothing.)
    /// </summary>
    public void AddSample(TimeSpan rtt, TimeSpan ackDelay)
    {
        if (rtt < TimeSpan.Zero)
        {
            return;
        }

        Latest = rtt;
        Min = rtt < Min ? rtt : Min;
        if (!HasSample)
        {
            HasSample = true;
            Smoothed = rtt;
            Variation = rtt / 2;
            return;
        }

        if (rtt >= Min + ackDelay)
        {
            rtt -= ackDelay;
        }

        var delta = (Smoothed - rtt).Duration();
        Variation = (Variation * 3 / 4) + (delta / 4);
        Smoothed = (Smoothed * 7 / 8) + (rtt / 8);
    }

    /// <summary>The retransmission timeout after <paramref name="backoff"/> consecutive expiries.</summary>
    public TimeSpan RetransmitTimeout(int backoff)
    {
        var baseRto = Smoothed + Max(Variation * 4, Granularity) + options.AckDelayBound;
        var rto = baseRto * (1 << Math.Clamp(backoff, 0, 6));
        return rto < options.MinRetransmitTimeout ? options.MinRetransmitTimeout
            : rto > options.MaxRetransmitTimeout ? options.MaxRetransmitTimeout
            : rto;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
