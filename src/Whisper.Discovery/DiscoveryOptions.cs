using Whisper.Protocol.Wire;

namespace Whisper.Discovery;

/// <summary>Immutable settings of a <see cref="DiscoveryEngine"/>.</summary>
public sealed record DiscoveryOptions
{
    /// <summary>Largest group the server admits (the mission's cap). At most <see cref="JoinAcceptFrame.MaxMembers"/>.</summary>
    public int MaxMembers { get; init; } = 10;

    /// <summary>
    /// How long a slot stays held without a renewal. Members renew about every second, so the default
    /// tolerates several lost leases; a crashed member's name and slot come free after this long.
    /// </summary>
    public TimeSpan LeaseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long the ids of departed members are remembered, so a delayed duplicate of an old request or
    /// lease, or a stale view that still lists them, cannot bring them back. Defaults to <see cref="LeaseTimeout"/>.
    /// </summary>
    public TimeSpan? TombstoneTimeout { get; init; }

    /// <summary>Upper bound on remembered departed ids (oldest forgotten first), so churn cannot grow memory without bound.</summary>
    public int MaxTombstones { get; init; } = 1024;

    /// <summary>
    /// After the server starts it answers no join request for this long, so the members of a group that
    /// outlived an earlier server instance can re-teach it the group with their leases (sent every 500 ms)
    /// before it hands out slots or names. Newcomers retry meanwhile. Zero for a registry known to be empty.
    /// </summary>
    public TimeSpan RelearnWindow { get; init; } = TimeSpan.FromMilliseconds(2500);

    /// <summary>
    /// A member whose own lease is at least this old and that a live member's lease no longer lists in its
    /// view is treated as gone (members report failures): its slot and name come free before the lease expires.
    /// </summary>
    public TimeSpan ReportedGoneAfter { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// When a newcomer asks for the name of a member that has not renewed in the last quarter of this, the
    /// server pings that member and waits this long for any sign of life before it declares it dead and
    /// gives its name to the newcomer (a process restarted under the same name gets in within this time).
    /// </summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromMilliseconds(1500);

    internal TimeSpan EffectiveTombstoneTimeout => TombstoneTimeout ?? LeaseTimeout;

    /// <summary>Throws when a setting is out of range.</summary>
    public void Validate()
    {
        if (MaxMembers < 1 || MaxMembers > JoinAcceptFrame.MaxMembers)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMembers), MaxMembers, $"must be 1-{JoinAcceptFrame.MaxMembers}");
        }

        if (LeaseTimeout <= TimeSpan.Zero || LeaseTimeout > TimeSpan.FromHours(1))
        {
            throw new ArgumentOutOfRangeException(nameof(LeaseTimeout), LeaseTimeout, "must be positive and at most one hour");
        }

        if (TombstoneTimeout is { } t && (t < TimeSpan.Zero || t > TimeSpan.FromHours(1)))
        {
            throw new ArgumentOutOfRangeException(nameof(TombstoneTimeout), t, "must be between zero and one hour");
        }

        if (RelearnWindow < TimeSpan.Zero || RelearnWindow > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentOutOfRangeException(nameof(RelearnWindow), RelearnWindow, "must be between zero and one minute");
        }

        if (ProbeTimeout <= TimeSpan.Zero || ProbeTimeout > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentOutOfRangeException(nameof(ProbeTimeout), ProbeTimeout, "must be positive and at most one minute");
        }

        if (ReportedGoneAfter <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ReportedGoneAfter), ReportedGoneAfter, "must be positive");
        }

        if (MaxTombstones is < 0 or > 1_000_000)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTombstones), MaxTombstones, "must be 0-1000000");
        }
    }
}
