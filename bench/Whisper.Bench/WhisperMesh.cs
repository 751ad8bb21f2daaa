using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using Whisper.Discovery;
using Whisper.Net;
using Whisper.Protocol.Engine;

namespace Whisper.Bench;

/// <summary>
/// Whisper nodes joined through an in-process <see cref="DiscoveryServer"/>, each on its own UDP socket
/// wrapped in a <see cref="CountingLossTransport"/> (wire counters and seeded receive-side loss, switched on
/// after the group formed). Checks every delivery: per (receiver, origin) sequences strictly increase,
/// which proves exactly-once and per-origin order (the FIFO part of causal order).
/// Uses the node's allocation-free paths: <see cref="WhisperNode.TryBroadcast(ReadOnlySpan{byte})"/> (refused while
/// <see cref="InFlightPerNode"/> sends wait for flow control; the runner retries after 1 ms, as with LiteNetLib) and
/// <see cref="WhisperNodeOptions.DeliveryHandler"/> (deliveries checked on each node's driver thread).
/// </summary>
public sealed class WhisperMesh : IMesh
{
    private readonly DiscoveryServer _server;
    private readonly WhisperNode[] _nodes;
    private readonly CountingLossTransport[] _transports;
    private readonly Task[] _readers;
    private readonly long[][] _last;
    private readonly int _size;
    private long _violations;

    /// <summary>
    /// Sends per node that may wait in front of the engine (its flow-control window is 1024 chunks) before a broadcast is
    /// refused and the runner retries after 1 ms: deep enough that the senders wait for flow control, not for the retry.
    /// </summary>
    public const int InFlightPerNode = 1024;

    private WhisperMesh(DiscoveryServer server, WhisperNode[] nodes, CountingLossTransport[] transports, long[][] last, int size)
    {
        _server = server;
        _nodes = nodes;
        _transports = transports;
        _size = size;
        Nodes = nodes.Length;
        _last = last;
        _readers = new Task[Nodes];
        for (var i = 0; i < Nodes; i++)
        {
            var node = i;
            _readers[i] = Task.Run(() => ReadAsync(node));
        }
    }

    public string Name => "whisper";

    public int Nodes { get; }

    public Action<int, int, long>? Delivered { get; set; }

    public long OrderViolations => Interlocked.Read(ref _violations);

    public static async Task<WhisperMesh> StartAsync(int nodes, int size, int seed, CancellationToken ct)
    {
        var server = await DiscoveryServer.StartAsync(
            new DiscoveryServerOptions { Bind = new IPEndPoint(IPAddress.Loopback, 0), Engine = new DiscoveryOptions { MaxMembers = nodes } },
            null, TimeProvider.System, ct).ConfigureAwait(false);
        var list = new WhisperNode[nodes];
        var transports = new CountingLossTransport[nodes];
        var last = new long[nodes][];
        var sink = new DeliverySink();
        for (var i = 0; i < nodes; i++)
        {
            last[i] = new long[nodes];
            Array.Fill(last[i], -1);
            var node = i;
            transports[i] = new CountingLossTransport(UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0)), seed + i);
            list[i] = await WhisperNode.JoinAsync(
                new WhisperNodeOptions
                {
                    Name = $"n{i}",
                    Server = server.LocalEndpoint,
                    Seed = (ulong)(seed + i),
                    MaxQueuedBroadcasts = InFlightPerNode,
                    DeliveryHandler = (in WhisperDelivery d) => sink.Mesh?.OnDelivery(node, d),
                },
                transports[i], null, null, ct).ConfigureAwait(false);
        }

        var mesh = new WhisperMesh(server, list, transports, last, size);
        sink.Mesh = mesh;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (list.Any(n => n.Members.Count(m => m.Status == MemberStatus.Up) < nodes))
        {
            if (DateTime.UtcNow > deadline)
            {
                await mesh.DisposeAsync().ConfigureAwait(false);
                throw new TimeoutException("the Whisper group did not form within 30 s");
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }

        return mesh;
    }

    public void SetLoss(double probability)
    {
        foreach (var t in _transports)
        {
            t.Loss = probability;
        }
    }

    public (long Datagrams, long Bytes) WireCounters()
    {
        long d = 0, b = 0;
        foreach (var t in _transports)
        {
            d += t.Datagrams;
            b += t.Bytes;
        }

        return (d, b);
    }

    public ValueTask<bool> BroadcastAsync(int origin, long seq, CancellationToken ct)
    {
        Span<byte> text = stackalloc byte[Math.Max(_size, 20)];
        var length = Payload.WriteUtf8Text(text, origin, seq, _size);
        return new ValueTask<bool>(_nodes[origin].TryBroadcast(text[..length]));
    }

    /// <summary>Engine counters summed over the nodes (acks, nacks, retransmissions, flow-control waits).</summary>
    public async Task<(long Acks, long Nacks, long Retransmitted, long Deferred, long Chunks, long Control, long Datagrams, long Redundant)> CountersAsync(CancellationToken ct)
    {
        long acks = 0, nacks = 0, retx = 0, deferred = 0, chunks = 0, control = 0, datagrams = 0, redundant = 0;
        foreach (var n in _nodes)
        {
            var s = await n.GetStatsAsync(ct).ConfigureAwait(false);
            acks += s.AcksSent;
            nacks += s.NacksSent;
            retx += s.ChunksRetransmitted;
            deferred += s.SendsDeferred;
            chunks += s.ChunksSent;
            control += s.ControlDatagramsSent;
            datagrams += s.DatagramsSent;
            redundant += s.RedundantDatagrams;
        }

        return (acks, nacks, retx, deferred, chunks, control, datagrams, redundant);
    }

    /// <summary>On <paramref name="node"/>'s driver thread, for every message it delivers.</summary>
    private void OnDelivery(int node, in WhisperDelivery d)
    {
        if (d.To is null && Payload.TryReadUtf8Text(d.Utf8Text, out var origin, out var seq) && origin != node && (uint)origin < (uint)Nodes)
        {
            if (seq <= _last[node][origin])
            {
                Interlocked.Increment(ref _violations);
            }

            _last[node][origin] = seq;
            Delivered?.Invoke(node, origin, seq);
        }
    }

    /// <summary>Drains the node's other events (member changes); messages go to <see cref="OnDelivery"/>.</summary>
    private async Task ReadAsync(int node)
    {
        try
        {
            await foreach (var e in _nodes[node].Events.ConfigureAwait(false))
            {
                _ = e;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await Task.WhenAll(_nodes.Select(n => n.DisposeAsync().AsTask())).WaitAsync(cts.Token).ConfigureAwait(false);
            await Task.WhenAll(_readers).WaitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // bounded: a node that does not stop in 10 s is abandoned
        }

        await _server.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>The mesh, once built, for the nodes' delivery handlers (they are created before it).</summary>
internal sealed class DeliverySink
{
    public volatile WhisperMesh? Mesh;
}

/// <summary>Counts sent datagrams and bytes; drops received datagrams with a seeded probability (off until set).</summary>
public sealed class CountingLossTransport(IDatagramTransport inner, int seed) : IDatagramTransport, IBlockingDatagramReceiver, IDatagramBatchSender
{
    private readonly Random _random = new(seed);
    private long _datagrams;
    private long _bytes;

    public volatile float LossField;

    public double Loss
    {
        get => LossField;
        set => LossField = (float)value;
    }

    public long Datagrams => Interlocked.Read(ref _datagrams);

    public long Bytes => Interlocked.Read(ref _bytes);

    public IPEndPoint LocalEndpoint => inner.LocalEndpoint;

    public bool Send(ReadOnlySpan<byte> datagram, IPEndPoint destination) => inner.Send(Counted(datagram), destination);

    public bool SupportsBatchSend => inner is IDatagramBatchSender { SupportsBatchSend: true };

    public bool QueueSend(ReadOnlySpan<byte> datagram, IPEndPoint destination) => ((IDatagramBatchSender)inner).QueueSend(Counted(datagram), destination);

    public int FlushSends() => ((IDatagramBatchSender)inner).FlushSends();

    private ReadOnlySpan<byte> Counted(ReadOnlySpan<byte> datagram)
    {
        Interlocked.Increment(ref _datagrams);
        Interlocked.Add(ref _bytes, datagram.Length);
        return datagram;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // no boxed state machine per datagram
    public async ValueTask<ReceivedDatagram> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        for (var i = 0; ; i++)
        {
            var d = await inner.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (LossField <= 0 || _random.NextDouble() >= LossField)
            {
                return d;
            }
        }
    }

    public bool SupportsBlockingReceive => inner is IBlockingDatagramReceiver { SupportsBlockingReceive: true };

    public bool TryReceive(Span<byte> buffer, TimeSpan timeout, out ReceivedDatagram received) =>
        TryReceive(buffer, timeout, TimeSpan.Zero, out received);

    public bool TryReceive(Span<byte> buffer, TimeSpan timeout, TimeSpan slack, out ReceivedDatagram received)
    {
        var blocking = (IBlockingDatagramReceiver)inner;
        var left = timeout;
        while (blocking.TryReceive(buffer, left, slack, out received))
        {
            if (received.Length == 0 || LossField <= 0 || _random.NextDouble() >= LossField) // wake-ups are never dropped
            {
                return true;
            }

            // A dropped datagram ends the wait once the socket holds nothing more, as a timeout would: the node then
            // parks again until its own next deadline (no clock read here for the datagrams that pass).
            left = TimeSpan.Zero;
        }

        return false;
    }

    public void Wake() => (inner as IBlockingDatagramReceiver)?.Wake();

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
