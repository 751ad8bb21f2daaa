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

    /// <summary>Seed of the fault decisions; print it with a failing run to reason about it.</summary>
    public int Seed { get; init; }

    /// <summary>True when any fault can happen.</summary>
    public bool IsActive => DropOutgoing > 0 || DropIncoming > 0 || DuplicateOutgoing > 0;

    /// <summary>Throws when a probability is outside [0, 1].</summary>
    public void Validate()
    {
        Check(DropOutgoing, nameof(DropOutgoing));
        Check(DropIncoming, nameof(DropIncoming));
        Check(DuplicateOutgoing, nameof(DuplicateOutgoing));
    }

    private static void Check(double p, string name)
    {
        if (double.IsNaN(p) || p < 0 || p > 1)
        {
            throw new ArgumentOutOfRangeException(name, p, "a probability must be between 0 and 1");
        }
    }
}
