using System.Diagnostics.CodeAnalysis;
using System.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Simulation;

/// <summary>
/// The node engine as the simulator drives it: exactly the call contract of <see cref="WhisperEngine"/>. The seam
/// exists so the simulator itself can be tested with deliberately broken toy engines (proving the checkers fail).
/// </summary>
public interface ISimEngine
{
    MemberRef Self { get; }

    EngineState State { get; }

    Action<TimeSpan, string>? Tracer { get; set; }

    TimeSpan? NextTimeout { get; }

    /// <summary>The latest the timers due at <see cref="NextTimeout"/> may run (<see cref="WhisperEngine.NextTimeoutLatest"/>); engines without lenient timers: <see cref="NextTimeout"/>.</summary>
    TimeSpan? NextTimeoutLatest => NextTimeout;

    IReadOnlyList<MemberSnapshot> Members { get; }

    /// <summary>Counters for reports (<see cref="EngineStats.ToString"/>).</summary>
    string StatsText { get; }

    void Start(IPEndPoint contact, TimeSpan now);

    /// <summary>
    /// Joins through <paramref name="contact"/> (a member) while naming <paramref name="server"/> for leases. Engines
    /// without that notion ignore the server.
    /// </summary>
    void Start(IPEndPoint contact, TimeSpan now, IPEndPoint? server) => Start(contact, now);

    /// <summary>As above, with members to ask too when the contact stops answering; engines without that notion ignore them.</summary>
    void Start(IPEndPoint contact, TimeSpan now, IPEndPoint? server, IReadOnlyList<IPEndPoint> fallbacks) => Start(contact, now, server);

    void OnDatagram(IPEndPoint from, ReadOnlySpan<byte> datagram, TimeSpan now);

    void OnTimeout(TimeSpan now);

    SendResult Broadcast(ReadOnlyMemory<byte> payload, TimeSpan now);

    SendResult SendPrivate(string toName, ReadOnlyMemory<byte> payload, TimeSpan now);

    void Leave(TimeSpan now);

    bool TryPollTransmit(Span<byte> buffer, out int length, [NotNullWhen(true)] out IPEndPoint? destination);

    bool TryPollEvent([NotNullWhen(true)] out EngineEvent? engineEvent);
}

/// <summary>What the simulator knows when it creates a node's engine.</summary>
public sealed record EngineSpec(EngineOptions Options, string Name, MemberId Id, ulong Seed, IPEndPoint Endpoint, IReadOnlyList<(string Name, IPEndPoint Endpoint)> AllNodes);

/// <summary>The real engine behind the simulator's seam.</summary>
public sealed class WhisperEngineAdapter(WhisperEngine engine) : ISimEngine
{
    public static ISimEngine Create(EngineSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new WhisperEngineAdapter(new WhisperEngine(spec.Options, spec.Name, spec.Id, spec.Seed));
    }

    public WhisperEngine Engine => engine;

    public MemberRef Self => engine.Self;

    public EngineState State => engine.State;

    public Action<TimeSpan, string>? Tracer { get => engine.Tracer; set => engine.Tracer = value; }

    public TimeSpan? NextTimeout => engine.NextTimeout;

    public TimeSpan? NextTimeoutLatest => engine.NextTimeoutLatest;

    public IReadOnlyList<MemberSnapshot> Members => engine.Members;

    public string StatsText => engine.Stats.ToString();

    public void Start(IPEndPoint contact, TimeSpan now) => engine.Start(contact, now);

    public void Start(IPEndPoint contact, TimeSpan now, IPEndPoint? server) => engine.Start(contact, now, server);

    public void Start(IPEndPoint contact, TimeSpan now, IPEndPoint? server, IReadOnlyList<IPEndPoint> fallbacks) =>
        engine.Start(contact, now, server, fallbacks);

    public void OnDatagram(IPEndPoint from, ReadOnlySpan<byte> datagram, TimeSpan now) => engine.OnDatagram(from, datagram, now);

    public void OnTimeout(TimeSpan now) => engine.OnTimeout(now);

    public SendResult Broadcast(ReadOnlyMemory<byte> payload, TimeSpan now) => engine.Broadcast(payload, now);

    public SendResult SendPrivate(string toName, ReadOnlyMemory<byte> payload, TimeSpan now) => engine.SendPrivate(toName, payload, now);

    public void Leave(TimeSpan now) => engine.Leave(now);

    public bool TryPollTransmit(Span<byte> buffer, out int length, [NotNullWhen(true)] out IPEndPoint? destination) =>
        engine.TryPollTransmit(buffer, out length, out destination);

    public bool TryPollEvent([NotNullWhen(true)] out EngineEvent? engineEvent) => engine.TryPollEvent(out engineEvent);
}
