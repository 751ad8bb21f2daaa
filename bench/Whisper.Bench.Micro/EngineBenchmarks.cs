using BenchmarkDotNet.Attributes;

namespace Whisper.Bench.Micro;

/// <summary>
/// The engine alone, per broadcast of 100 bytes in a formed 10-member group (<see cref="EngineGroup"/>, in memory, on
/// a virtual clock): the sender's encode and transmits, nine receptions (decode, acks, stability, delivery) and the
/// timers that come due, with no sockets, driver or threads. The managed share of what one broadcast costs a group.
/// </summary>
[MemoryDiagnoser]
public class EngineBenchmarks
{
    private const int PerInvoke = 100;
    private readonly byte[] _payload = new byte[100];
    private EngineGroup _group = null!;

    [GlobalSetup]
    public void Setup()
    {
        _group = EngineGroup.Form(10);
        for (var i = 0; i < 20_000; i++)
        {
            _group.Broadcast(_payload); // every buffer and pool at its working size
        }

        if (_group.Deliveries != _group.Broadcasts * (_group.Members - 1))
        {
            throw new InvalidOperationException($"{_group.Deliveries} deliveries for {_group.Broadcasts} broadcasts to {_group.Members - 1} others");
        }
    }

    /// <summary>One broadcast delivered at the nine other members, per operation.</summary>
    [Benchmark(OperationsPerInvoke = PerInvoke)]
    public void BroadcastToNineMembers()
    {
        for (var i = 0; i < PerInvoke; i++)
        {
            _group.Broadcast(_payload);
        }
    }
}
