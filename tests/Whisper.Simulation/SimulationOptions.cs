namespace Whisper.Simulation;

/// <summary>How a run is observed. None of these options changes what happens in the simulated world.</summary>
public sealed record SimulationOptions
{
    /// <summary>Trace records kept for the report's tail (older ones only count in the trace hash).</summary>
    public int TraceCapacity { get; init; } = 4000;

    /// <summary>Lines of trace printed in a failure report.</summary>
    public int ReportTraceLines { get; init; } = 250;

    /// <summary>
    /// How much trace before the first violation's instant the report shows (when the ring still holds it; raise
    /// <see cref="TraceCapacity"/> for replays).
    /// </summary>
    public TimeSpan FocusBefore { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Attach every engine's <c>Tracer</c> too (slower; engine lines are not part of the trace hash).</summary>
    public bool EngineTracing { get; init; }

    /// <summary>Receives every trace line as it happens (for a full trace of a replayed seed).</summary>
    public Action<string>? TraceSink { get; init; }

    /// <summary>Creates node engines; defaults to the real <c>WhisperEngine</c>.</summary>
    public Func<EngineSpec, ISimEngine>? EngineFactory { get; init; }

    /// <summary>Also require private predecessors in causal order (stronger than the protocol promises; off by default).</summary>
    public bool IncludePrivatePredecessors { get; init; }
}
