using System.Globalization;

namespace Whisper.Simulation;

/// <summary>Counters of one run.</summary>
public sealed record SimulationStats(
    long Events,
    TimeSpan VirtualTime,
    TimeSpan? WorkloadStart,
    TimeSpan? SettledAt,
    long DatagramsSent,
    long DatagramsLost,
    long DatagramsDuplicated,
    long DatagramsBlocked,
    long DatagramsStraggling,
    long DatagramsUnroutable,
    int Broadcasts,
    int Privates,
    int Deliveries,
    long WindowFullRetries,
    long SendsAbandoned,
    int Crashes)
{
    /// <summary>Incarnations that learned the group had declared them down and stopped.</summary>
    public int Evictions { get; init; }

    /// <summary>Down (or left) reports about members that were running at the time (expected in worlds with long pauses and partitions).</summary>
    public int FalseDowns { get; init; }

    /// <summary>Per (crashed member, survivor): time from the crash to the survivor reporting it down.</summary>
    public IReadOnlyList<TimeSpan> Detection { get; init; } = [];

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"events={Events} virtual={VirtualTime.TotalSeconds:0.###}s workloadStart={Seconds(WorkloadStart)} settled={Seconds(SettledAt)} datagrams={DatagramsSent} lost={DatagramsLost} dup={DatagramsDuplicated} blocked={DatagramsBlocked} straggling={DatagramsStraggling} unroutable={DatagramsUnroutable} broadcasts={Broadcasts} privates={Privates} deliveries={Deliveries} windowFull={WindowFullRetries} abandoned={SendsAbandoned} crashes={Crashes} evictions={Evictions} falseDowns={FalseDowns} detection={DetectionText}");

    /// <summary>Value equality over every counter and every detection time (the list compares by content).</summary>
    public bool Equals(SimulationStats? other) =>
        other is not null && string.Equals(ToString(), other.ToString(), StringComparison.Ordinal) && Detection.SequenceEqual(other.Detection);

    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);

    private string DetectionText => Detection.Count == 0
        ? "none"
        : string.Create(CultureInfo.InvariantCulture, $"n={Detection.Count} max={Detection.Max().TotalMilliseconds:0}ms");

    private static string Seconds(TimeSpan? t) => t is { } v ? v.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s" : "never";
}
