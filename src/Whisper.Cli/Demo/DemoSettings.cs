using System.Globalization;

namespace Whisper.Cli.Demo;

/// <summary>The knobs of <c>whisper demo</c>, validated. The faults besides loss are fixed so one seed describes a run.</summary>
internal sealed record DemoSettings
{
    public const int MinNodes = 2;
    public const int MaxNodes = 10;
    public const double MaxLoss = 0.9;
    public const double MinDuration = 3;
    public const double MaxDuration = 300;

    /// <summary>Members in the group.</summary>
    public int Nodes { get; init; } = MaxNodes;

    /// <summary>Probability that a sent datagram is lost.</summary>
    public double Loss { get; init; } = 0.05;

    /// <summary>Probability that a sent datagram (not lost) arrives twice.</summary>
    public double Duplication { get; init; } = 0.05;

    /// <summary>Probability that a sent datagram is held back up to <see cref="MaxDelay"/>, so later ones overtake it.</summary>
    public double Reordering { get; init; } = 0.1;

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMilliseconds(40);

    /// <summary>Seed of the script (who says what, when, who crashes) and of every node's fault draws.</summary>
    public int Seed { get; init; }

    /// <summary>Length of the scripted conversation (joining, settling and leaving come on top).</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(12);

    /// <summary>
    /// Parses the raw option values (null: not given). Returns null with <paramref name="error"/> set to one
    /// sentence when a value is malformed or out of range. A missing seed is drawn at random.
    /// </summary>
    public static DemoSettings? TryParse(string? nodes, string? loss, string? seed, string? duration, out string? error)
    {
        error = null;
        var settings = new DemoSettings { Seed = Random.Shared.Next(1, 1_000_000) };
        if (nodes is not null)
        {
            if (!int.TryParse(nodes, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n is < MinNodes or > MaxNodes)
            {
                error = $"--nodes must be a whole number from {MinNodes} to {MaxNodes} (a group holds at most 10 members), not '{nodes}'.";
                return null;
            }

            settings = settings with { Nodes = n };
        }

        if (loss is not null)
        {
            if (!double.TryParse(loss, NumberStyles.Float, CultureInfo.InvariantCulture, out var p) || double.IsNaN(p) || p is < 0 or > MaxLoss)
            {
                error = string.Create(CultureInfo.InvariantCulture, $"--loss must be a fraction of datagrams from 0 to {MaxLoss} (for example 0.2), not '{loss}'.");
                return null;
            }

            settings = settings with { Loss = p };
        }

        if (seed is not null)
        {
            if (!int.TryParse(seed, NumberStyles.Integer, CultureInfo.InvariantCulture, out var s))
            {
                error = $"--seed must be a whole number (32-bit), not '{seed}'.";
                return null;
            }

            settings = settings with { Seed = s };
        }

        if (duration is not null)
        {
            if (!double.TryParse(duration, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || double.IsNaN(d) || d is < MinDuration or > MaxDuration)
            {
                error = string.Create(CultureInfo.InvariantCulture, $"--duration must be a number of seconds from {MinDuration} to {MaxDuration}, not '{duration}'.");
                return null;
            }

            settings = settings with { Duration = TimeSpan.FromSeconds(d) };
        }

        return settings;
    }

    /// <summary>The command line that repeats this run's script and fault draws.</summary>
    public string ReplayCommand => string.Create(CultureInfo.InvariantCulture,
        $"whisper demo --nodes {Nodes} --loss {Loss} --seed {Seed} --duration {Duration.TotalSeconds}");
}
