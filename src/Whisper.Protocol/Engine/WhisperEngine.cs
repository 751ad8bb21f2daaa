using System.Diagnostics.CodeAnalysis;
using System.Net;
using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Engine;

/// <summary>
/// The Whisper protocol for one node, as a deterministic, sans-IO state machine.
/// <para><b>Call contract.</b></para>
/// <list type="bullet">
/// <item>Inputs: <see cref="Start"/> (join through a discovery server or member), <see cref="OnDatagram"/>
/// (bytes received from the network), <see cref="OnTimeout"/> (the time from <see cref="NextTimeout"/> came),
/// and commands <see cref="Broadcast"/>, <see cref="SendPrivate"/>, <see cref="Leave"/>.</item>
/// <item>Outputs, drained by the caller after every input: <see cref="TryPollTransmit"/> until false (datagrams
/// to send, written into the caller's buffer), <see cref="TryPollEvent"/> until false (deliveries and member
/// changes), then re-arm one timer at <see cref="NextTimeout"/>; it may fire as late as <see cref="NextTimeoutLatest"/>
/// (lenient timers: acks, heartbeats, housekeeping), never later (loss repair).</item>
/// <item><c>now</c> is time since an arbitrary epoch and never goes backwards. A spurious or late
/// <see cref="OnTimeout"/> is harmless. The engine holds no sockets, clocks or threads and is not thread-safe:
/// one driver loop owns it. The same inputs produce the same outputs.</item>
/// <item>Untrusted bytes never throw: malformed datagrams are counted in <see cref="Stats"/> and dropped.</item>
/// </list>
/// </summary>
public sealed partial class WhisperEngine
{
    private readonly EngineOptions _options;

    public WhisperEngine(EngineOptions options, string name, MemberId id, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (id.IsNone)
        {
            throw new ArgumentException("member id must be non-zero", nameof(id));
        }

        _options = options;
        Self = new MemberRef(name, id);
        _rng = new SplitMix64(seed);
        InitializeState();
    }

    public MemberRef Self { get; }

    public EngineOptions Options => _options;

    public EngineState State { get; private set; } = EngineState.Idle;

    public EngineStats Stats { get; } = new();
}

/// <summary>Small deterministic PRNG (SplitMix64); the engine's only source of randomness.</summary>
internal sealed class SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, bound).</summary>
    public int NextInt(int bound) => (int)(Next() % (ulong)bound);
}
