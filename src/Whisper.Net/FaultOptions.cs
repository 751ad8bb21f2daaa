namespace Whisper.Net;

/// <summary>
/// Seeded network faults for <see cref="FaultInjectingTransport"/>: a testing aid to see a group cope with a
/// lossy network on a perfect loopback. Each probability is in [0, 1]; the same seed gives the same
/// sequence of decisions for the same sequence of datagrams.
/// </summary>
public sealed record FaultOptions
{
    /// <summary>Probability that an outgoing datagram is silently not sent.</summary>
    public double DropOutgoing { get; init; }

    /// <summary>Probability that a received datagram is silently discarded.</summary>
    public double DropIncoming { get; init; }

    /// <summary>Probability that an outgoing datagram (that was not dropped) is sent twice.</summary>
    public double DuplicateOutgoing { get; init; }

    /// <summary>
    /// Probability that an outgoing datagram (that was not dropped) is held back and sent after a random delay
    /// drawn uniformly from (0, <see cref="MaxDelay"/>]; later datagrams overtake it, so this is how the
    /// transport reorders. Needs a positive <see cref="MaxDelay"/>. Zero (the default) delays nothing.
    /// </summary>
    public double DelayOutgoing { get; init; }

    /// <summary>The longest delay of a delayed datagram (see <see cref="DelayOutgoing"/>); at most 10 s.</summary>
    public TimeSpan MaxDelay { get; init; }

    /// <summary>Seed of the fault decisions; print it with a failing run to reason about it.</summary>
    public int Seed { get; init; }

    /// <summary>True when any fault can happen.</summary>
    public bool IsActive => DropOutgoing > 0 || DropIncoming > 0 || DuplicateOutgoing > 0 || DelaysOutgoing;

    /// <summary>True when some outgoing datagrams are delayed (and so reordered).</summary>
    public bool DelaysOutgoing => DelayOutgoing > 0 && MaxDelay > TimeSpan.Zero;

    /// <summary>Throws when a probability is outside [0, 1] or <see cref="MaxDelay"/> is outside [0, 10 s].</summary>
    public void Validate()
    {
        Check(DropOutgoing, nameof(DropOutgoing));
        Check(DropIncoming, nameof(DropIncoming));
        Check(DuplicateOutgoing, nameof(DuplicateOutgoing));
        Check(DelayOutgoing, nameof(DelayOutgoing));
        if (MaxDelay < TimeSpan.Zero || MaxDelay > TimeSpan.FromSeconds(10))
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDelay), MaxDelay, "a delay must be between 0 and 10 s");
        }
    }

    private static void Check(double p, string name)
    {
        if (double.IsNaN(p) || p < 0 || p > 1)
        {
            throw new ArgumentOutOfRangeException(name, p, "a probability must be between 0 and 1");
        }
    }
}
