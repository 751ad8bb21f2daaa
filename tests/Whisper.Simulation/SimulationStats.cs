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
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"events={Events} virtual={VirtualTime.TotalSeconds:0.###}s workloadStart={Seconds(WorkloadStart)} settled={Seconds(SettledAt)} datagrams={DatagramsSent} lost={DatagramsLost} dup={DatagramsDuplicated} blocked={DatagramsBlocked} straggling={DatagramsStraggling} unroutable={DatagramsUnroutable} broadcasts={Broadcasts} privates={Privates} deliveries={Deliveries} windowFull={WindowFullRetries} abandoned={SendsAbandoned} crashes={Crashes}");

    private static string Seconds(TimeSpan? t) => t is { } v ? v.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s" : "never";
}
