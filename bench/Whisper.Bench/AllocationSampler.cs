using System.Diagnostics.Tracing;

namespace Whisper.Bench;

/// <summary>
/// Which types the process allocates, from the runtime's allocation-tick events (one event per ~100 KB allocated, naming
/// the type that crossed the threshold): a sampling profile good enough to find the source of bytes per delivery.
/// Switched on by the environment variable <c>WHISPER_BENCH_ALLOC_TYPES=1</c>; prints the top types when disposed.
/// </summary>
public sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly Dictionary<string, long> _bytesByType = [];
    private readonly TextWriter _output;

    private AllocationSampler(TextWriter output) => _output = output;

    /// <summary>A sampler when <c>WHISPER_BENCH_ALLOC_TYPES=1</c>, else null.</summary>
    public static AllocationSampler? StartIfRequested(TextWriter output) =>
        Environment.GetEnvironmentVariable("WHISPER_BENCH_ALLOC_TYPES") == "1" ? new AllocationSampler(output) : null;

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.PayloadNames is null)
        {
            return;
        }

        var type = eventData.PayloadNames.IndexOf("TypeName") is var t and >= 0 ? eventData.Payload![t] as string ?? "?" : "?";
        var bytes = eventData.PayloadNames.IndexOf("AllocationAmount64") is var a and >= 0 ? Convert.ToInt64(eventData.Payload![a], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
        lock (_bytesByType)
        {
            _bytesByType[type] = _bytesByType.GetValueOrDefault(type) + bytes;
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        lock (_bytesByType)
        {
            _output.WriteLine("allocation samples (type: sampled bytes):");
            foreach (var (type, bytes) in _bytesByType.OrderByDescending(static kv => kv.Value).Take(20))
            {
                _output.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"  {bytes,14:N0}  {type}"));
            }
        }
    }
}
