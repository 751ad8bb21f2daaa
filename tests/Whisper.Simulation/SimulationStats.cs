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
        $"events={Events} virtual={VirtualTime.TotalSeconds:0.###}s workloadStart={WorkloadStart?.TotalSeconds:0.###}s settled={SettledAt?.TotalSeconds:0.###}s datagrams={DatagramsSent} lost={DatagramsLost} dup={DatagramsDuplicated} blocked={DatagramsBlocked} straggling={DatagramsStraggling} unroutable={DatagramsUnroutable} broadcasts={Broadcasts} privates={Privates} deliveries={Deliveries} windowFull={WindowFullRetries} abandoned={SendsAbandoned} crashes={Crashes}");
}
