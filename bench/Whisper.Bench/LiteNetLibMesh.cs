using System.Net;
using LiteNetLib;
using LiteNetLib.Layers;

namespace Whisper.Bench;

/// <summary>
/// LiteNetLib 2.1.5 full mesh with <see cref="DeliveryMethod.ReliableOrdered"/> on channel 0. Settings as
/// its docs recommend for low latency: <c>UnsyncedEvents = true</c> (receive events are raised on its own
/// logic thread, no PollEvents loop), <c>TriggerUpdate()</c> after each broadcast so queued reliable packets
/// leave at once instead of at the next 15 ms update. Flow control: a peer whose reliable queue holds a
/// full window (64) is not sent to now (the broadcast is refused and retried).
/// Loss: the release package ignores <c>SimulatePacketLoss</c> (DEBUG only), so a packet layer drops a
/// received datagram with a seeded decision, the same model as the other meshes.
/// </summary>
public sealed class LiteNetLibMesh : IMesh
{
    private const int Window = 64;
    private readonly NetManager[] _managers;
    private readonly DropLayer[] _layers;
    private readonly NetPeer[][] _peers;
    private readonly int[][] _peerNode;
    private readonly int _size;
    private long _disorder;
    private readonly long[][] _last;

    private LiteNetLibMesh(int nodes, int size, int seed)
    {
        Nodes = nodes;
        _size = Math.Max(size, Payload.HeaderBytes);
        _managers = new NetManager[nodes];
        _layers = new DropLayer[nodes];
        _peers = new NetPeer[nodes][];
        _peerNode = new int[nodes][];
        _last = new long[nodes][];
        for (var i = 0; i < nodes; i++)
        {
            var node = i;
            _last[i] = new long[nodes];
            Array.Fill(_last[i], -1);
            var listener = new EventBasedNetListener();
            listener.ConnectionRequestEvent += r => r.AcceptIfKey("whisper-bench");
            listener.NetworkReceiveEvent += (peer, reader, channel, method) =>
            {
                var span = reader.GetRemainingBytesSpan();
                if (span.Length >= Payload.HeaderBytes)
                {
                    var (origin, seq) = Payload.Read(span);
                    if (seq <= _last[node][origin])
                    {
                        Interlocked.Increment(ref _disorder);
                    }

                    _last[node][origin] = seq;
                    Delivered?.Invoke(node, origin, seq);
                }

                reader.Recycle();
            };
            _layers[i] = new DropLayer(seed + i);
            _managers[i] = new NetManager(listener, _layers[i])
            {
                UnsyncedEvents = true,
                EnableStatistics = true,
                DisconnectTimeout = 30_000,
            };
            if (!_managers[i].Start(IPAddress.Loopback, IPAddress.IPv6Loopback, 0))
            {
                throw new InvalidOperationException("LiteNetLib could not start");
            }
        }
    }

    public string Name => "litenetlib";

    public int Nodes { get; }

    public Action<int, int, long>? Delivered { get; set; }

    public long OrderViolations => Interlocked.Read(ref _disorder);

    public static async Task<LiteNetLibMesh> StartAsync(int nodes, int size, int seed, CancellationToken ct)
    {
        var mesh = new LiteNetLibMesh(nodes, size, seed);
        for (var i = 0; i < nodes; i++)
        {
            for (var j = i + 1; j < nodes; j++)
            {
                mesh._managers[i].Connect(new IPEndPoint(IPAddress.Loopback, mesh._managers[j].LocalPort), "whisper-bench");
            }
        }

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (mesh._managers.Any(m => m.ConnectedPeersCount < nodes - 1))
        {
            if (DateTime.UtcNow > deadline)
            {
                await mesh.DisposeAsync().ConfigureAwait(false);
                throw new TimeoutException("LiteNetLib mesh did not connect within 20 s");
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }

        for (var i = 0; i < nodes; i++)
        {
            var peers = new List<NetPeer>();
            mesh._managers[i].GetConnectedPeers(peers);
            mesh._peers[i] = [.. peers];
            mesh._peerNode[i] = [.. peers.Select(p => Array.FindIndex(mesh._managers, m => m.LocalPort == p.Port))];
        }

        return mesh;
    }

    public void SetLoss(double probability)
    {
        foreach (var l in _layers)
        {
            l.Loss = probability;
        }
    }

    public (long Datagrams, long Bytes) WireCounters()
    {
        long d = 0, b = 0;
        foreach (var m in _managers)
        {
            d += m.Statistics.PacketsSent;
            b += m.Statistics.BytesSent;
        }

        return (d, b);
    }

    public ValueTask<bool> BroadcastAsync(int origin, long seq, CancellationToken ct)
    {
        var peers = _peers[origin];
        foreach (var p in peers)
        {
            if (p.GetPacketsCountInReliableQueue(0, true) >= Window)
            {
                return ValueTask.FromResult(false);
            }
        }

        Span<byte> buffer = stackalloc byte[_size];
        Payload.Write(buffer, origin, seq);
        foreach (var p in peers)
        {
            p.Send(buffer, DeliveryMethod.ReliableOrdered);
        }

        _managers[origin].TriggerUpdate();
        return ValueTask.FromResult(true);
    }

    public ValueTask DisposeAsync()
    {
        foreach (var m in _managers)
        {
            m.Stop();
        }

        return ValueTask.CompletedTask;
    }

    private sealed class DropLayer(int seed) : PacketLayerBase(0)
    {
        private readonly Random _random = new(seed);

        public volatile float LossField;

        public double Loss
        {
            get => LossField;
            set => LossField = (float)value;
        }

        public override void ProcessInboundPacket(ref IPEndPoint endPoint, ref byte[] data, ref int length)
        {
            if (LossField > 0 && _random.NextDouble() < LossField)
            {
                length = 0;
            }
        }

        public override void ProcessOutBoundPacket(ref IPEndPoint endPoint, ref byte[] data, ref int offset, ref int length)
        {
        }
    }
}
