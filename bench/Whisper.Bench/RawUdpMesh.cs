using System.Net;
using System.Net.Sockets;

namespace Whisper.Bench;

/// <summary>
/// The baseline: plain UDP sockets, a broadcast is N-1 unicast datagrams, no reliability, no order. One
/// blocking receive thread per node; loss is a seeded drop decision per received datagram.
/// </summary>
public sealed class RawUdpMesh : IMesh
{
    private readonly Socket[] _sockets;
    private readonly SocketAddress[] _addresses;
    private readonly Thread[] _receivers;
    private readonly int _size;
    private readonly int _seed;
    private long _datagrams;
    private long _bytes;
    private volatile bool _stopping;
    private double _loss;

    public RawUdpMesh(int nodes, int size, int seed)
    {
        Nodes = nodes;
        _size = Math.Max(size, Payload.HeaderBytes);
        _seed = seed;
        _sockets = new Socket[nodes];
        _addresses = new SocketAddress[nodes];
        _receivers = new Thread[nodes];
        for (var i = 0; i < nodes; i++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)
            {
                ReceiveBufferSize = 4 * 1024 * 1024,
                SendBufferSize = 4 * 1024 * 1024,
                ReceiveTimeout = 200,
            };
            s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _sockets[i] = s;
            _addresses[i] = s.LocalEndPoint!.Serialize();
        }

        for (var i = 0; i < nodes; i++)
        {
            var node = i;
            _receivers[i] = new Thread(() => Receive(node)) { IsBackground = true, Name = $"raw-udp-{node}" };
            _receivers[i].Start();
        }
    }

    public string Name => "udp-raw";

    public int Nodes { get; }

    public Action<int, int, long>? Delivered { get; set; }

    public long OrderViolations => -1;

    public void SetLoss(double probability) => Volatile.Write(ref _loss, probability);

    public (long Datagrams, long Bytes) WireCounters() => (Interlocked.Read(ref _datagrams), Interlocked.Read(ref _bytes));

    public ValueTask<bool> BroadcastAsync(int origin, long seq, CancellationToken ct)
    {
        Span<byte> buffer = stackalloc byte[_size];
        Payload.Write(buffer, origin, seq);
        var socket = _sockets[origin];
        var sent = 0;
        for (var j = 0; j < Nodes; j++)
        {
            if (j == origin)
            {
                continue;
            }

            try
            {
                socket.SendTo(buffer, SocketFlags.None, _addresses[j]);
                sent++;
            }
            catch (SocketException)
            {
                // a full buffer or ICMP error: counted as loss by the receivers
            }
        }

        Interlocked.Add(ref _datagrams, sent);
        Interlocked.Add(ref _bytes, (long)sent * _size);
        return ValueTask.FromResult(true);
    }

    private void Receive(int node)
    {
        var random = new Random(_seed + node);
        var buffer = new byte[65536];
        var socket = _sockets[node];
        while (!_stopping)
        {
            int n;
            try
            {
                n = socket.Receive(buffer);
            }
            catch (SocketException)
            {
                continue; // timeout (bounded wait) or ICMP error
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            if (n < Payload.HeaderBytes || random.NextDouble() < Volatile.Read(ref _loss))
            {
                continue;
            }

            var (origin, seq) = Payload.Read(buffer.AsSpan(0, n));
            Delivered?.Invoke(node, origin, seq);
        }
    }

    public ValueTask DisposeAsync()
    {
        _stopping = true;
        foreach (var t in _receivers)
        {
            t.Join(TimeSpan.FromSeconds(2));
        }

        foreach (var s in _sockets)
        {
            s.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}
