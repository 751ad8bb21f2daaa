using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace Whisper.Protocol.Engine;

// Temporary stub: the signatures of the engine while its body is being written.
public sealed partial class WhisperEngine
{
    private SplitMix64 _rng;

    private void InitializeState() { }

    public Action<TimeSpan, string>? Tracer { get; set; }

    public TimeSpan? NextTimeout => null;

    public IReadOnlyList<MemberSnapshot> Members => [];

    public void Start(IPEndPoint contact, TimeSpan now) => throw new NotImplementedException();

    public void OnDatagram(IPEndPoint from, ReadOnlySpan<byte> datagram, TimeSpan now) => throw new NotImplementedException();

    public void OnTimeout(TimeSpan now) => throw new NotImplementedException();

    public SendResult Broadcast(ReadOnlyMemory<byte> payload, TimeSpan now) => throw new NotImplementedException();

    public SendResult SendPrivate(string toName, ReadOnlyMemory<byte> payload, TimeSpan now) => throw new NotImplementedException();

    public void Leave(TimeSpan now) => throw new NotImplementedException();

    public bool TryPollTransmit(Span<byte> buffer, out int length, [NotNullWhen(true)] out IPEndPoint? destination) => throw new NotImplementedException();

    public bool TryPollEvent([NotNullWhen(true)] out EngineEvent? engineEvent) => throw new NotImplementedException();
}
