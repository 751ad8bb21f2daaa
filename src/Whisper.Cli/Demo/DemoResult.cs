namespace Whisper.Cli.Demo;

/// <summary>Stages of a run, in order.</summary>
internal enum DemoPhase
{
    Forming,
    Conversation,
    Settling,
    Leaving,
    Verifying,
}

/// <summary>Something that happened to the group (crash, restart, server stopped, ...), on the demo's clock.</summary>
internal sealed record DemoEvent(TimeSpan At, string Kind, string Text);

/// <summary>One line of the conversation as it was said.</summary>
internal sealed record DemoLine(TimeSpan At, int Slot, string From, string? To, string Text, string? Answers);

/// <summary>Counters summed over every incarnation, and latencies of deliveries at others than the sender.</summary>
internal sealed record DemoStats
{
    public int Broadcasts { get; init; }
    public int Privates { get; init; }
    public int Deliveries { get; init; }
    public long DatagramsSent { get; init; }
    public long ChunksRetransmitted { get; init; }
    public long NacksSent { get; init; }
    public long DroppedOnPurpose { get; init; }
    public long DuplicatedOnPurpose { get; init; }
    public long DelayedOnPurpose { get; init; }
    public double LatencyP50Ms { get; init; }
    public double LatencyP99Ms { get; init; }
    public double LatencyMaxMs { get; init; }
    public TimeSpan FormedIn { get; init; }
    public TimeSpan SettledIn { get; init; }
    public TimeSpan Runtime { get; init; }
}

/// <summary>What a run produced: the checks (all must pass), the statistics and the story.</summary>
internal sealed record DemoResult(
    DemoSettings Settings,
    IReadOnlyList<DemoCheck> Checks,
    DemoStats Stats,
    IReadOnlyList<DemoEvent> Events,
    IReadOnlyList<DemoLine> Lines,
    DemoLog Log)
{
    public bool Passed => Checks.Count > 0 && Checks.All(c => c.Passed);
}

/// <summary>Receives the progress of a run as it happens; called from several threads.</summary>
internal interface IDemoObserver
{
    void OnPhase(DemoPhase phase);

    void OnEvent(DemoEvent e);

    void OnLine(DemoLine line);

    /// <summary>Periodic: how far the conversation is (0..1), messages sent, deliveries so far, deliveries still required.</summary>
    void OnProgress(double conversation, int sent, int delivered, int outstanding);
}
