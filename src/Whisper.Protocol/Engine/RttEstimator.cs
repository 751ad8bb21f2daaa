namespace Whisper.Protocol.Engine;

/// <summary>
/// Round-trip estimate per RFC 9002 section 5: smoothed RTT with 1/8 gain, RTT variation with 1/4 gain,
/// and a retransmission timeout of srtt + max(4 rttvar, 1 ms) + max_ack_delay, doubled per consecutive
/// timeout (exponential backoff) and clamped to the configured floor and ceiling.
/// </summary>
internal sealed class RttEstimator(EngineOptions options)
{
    private static readonly TimeSpan Granularity = TimeSpan.FromMilliseconds(1);

    public bool HasSample { get; private set; }

    public TimeSpan Smoothed { get; private set; } = options.InitialRtt;

    public TimeSpan Variation { get; private set; } = options.InitialRtt / 2;

    public TimeSpan Latest { get; private set; }

    public void AddSample(TimeSpan rtt)
    {
        if (rtt < TimeSpan.Zero)
        {
            return;
        }

        Latest = rtt;
        if (!HasSample)
        {
            HasSample = true;
            Smoothed = rtt;
            Variation = rtt / 2;
            return;
        }

        var delta = (Smoothed - rtt).Duration();
        Variation = (Variation * 3 / 4) + (delta / 4);
        Smoothed = (Smoothed * 7 / 8) + (rtt / 8);
    }

    /// <summary>The retransmission timeout after <paramref name="backoff"/> consecutive expiries.</summary>
    public TimeSpan RetransmitTimeout(int backoff)
    {
        var baseRto = Smoothed + Max(Variation * 4, Granularity) + options.MaxAckDelay;
        var rto = baseRto * (1 << Math.Clamp(backoff, 0, 6));
        return rto < options.MinRetransmitTimeout ? options.MinRetransmitTimeout
            : rto > options.MaxRetransmitTimeout ? options.MaxRetransmitTimeout
            : rto;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
