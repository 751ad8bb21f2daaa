using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Whisper.Net;

/// <summary>
/// <see cref="IDatagramTransport"/> over one UDP <see cref="Socket"/> (IPv4 or IPv6; an IPv6 wildcard bind is
/// dual-mode). ICMP errors that a previous send provoked (connection reset/refused, unreachable) are ignored,
/// as are send failures: UDP promises nothing and the protocol recovers. Received IPv4-mapped IPv6 addresses
/// are reported as plain IPv4 so one peer always has one endpoint.
/// </summary>
public sealed partial class UdpDatagramTransport : IDatagramTransport, IBlockingDatagramReceiver, IDatagramBatchSender
{
    /// <summary>Socket buffer size asked of the OS (it may grant less): room for bursts of a 10-member group.</summary>
    public const int SocketBufferBytes = 4 * 1024 * 1024;

    private const int WindowsSioUdpConnReset = unchecked((int)0x9800000C);

    private readonly Socket _socket;
    private readonly EndPoint _anyRemote;

    // Address caches, so a datagram in or out allocates nothing once its peer is known (each side is used by one
    // caller at a time, see IDatagramTransport). Bounded: a flood of new source addresses just clears them.
    private const int MaxCachedAddresses = 1024;
    private readonly SocketAddress _receivedFrom;
    private readonly SocketAddress? _wakeAddress;
    private readonly LinuxSocketWait? _native;

    /// <summary>True when the blocking receive is the native one (Linux: recvmmsg, see <see cref="LinuxSocketWait"/>), false for .NET's own.</summary>
    internal bool UsesNativeWait => _native is not null;

    /// <summary>True when the native receive waits in the socket itself (blocking recvmmsg), false when it polls.</summary>
    internal bool WaitsInSocket => _native is { BlocksInSocket: true };
    private readonly Dictionary<AddressKey, IPEndPoint> _receiveCache = [];
    private readonly Dictionary<IPEndPoint, SocketAddress> _sendCache = [];
    private readonly ILogger _logger;
    private long _sendFailures;
    private long _receiveErrors;
    private int _disposed;
    private int _receiveTimeoutMillis;

    private UdpDatagramTransport(Socket socket, ILogger logger, bool nativeWait)
    {
        _socket = socket;
        _logger = logger;
        LocalEndpoint = Normalize((IPEndPoint)socket.LocalEndPoint!);
        _anyRemote = socket.AddressFamily == AddressFamily.InterNetworkV6
            ? new IPEndPoint(IPAddress.IPv6Any, 0)
            : new IPEndPoint(IPAddress.Any, 0);
        _receivedFrom = new SocketAddress(socket.AddressFamily);
        _wakeAddress = TryTarget(WakeTarget(LocalEndpoint), out var wake) ? wake.Serialize() : null;
        _native = nativeWait ? LinuxSocketWait.TryCreate(socket, canWakeBySelf: _wakeAddress is not null) : null;
    }

    public IPEndPoint LocalEndpoint { get; }

    /// <summary>Datagrams the OS refused to send (counted, not thrown).</summary>
    public long SendFailures => Interlocked.Read(ref _sendFailures);

    /// <summary>Receive errors that were ignored (ICMP echoes of earlier sends and the like).</summary>
    public long ReceiveErrors => Interlocked.Read(ref _receiveErrors);

    /// <summary>Creates a UDP socket bound to <paramref name="endpoint"/> (port 0 picks a free port).</summary>
    /// <exception cref="SocketException">The address cannot be bound (in use, not local, ...).</exception>
    public static UdpDatagramTransport Bind(IPEndPoint endpoint, ILogger? logger = null) => Bind(endpoint, logger, nativeWait: true);

    /// <summary>
    /// Like <see cref="Bind(IPEndPoint, ILogger?)"/>; <paramref name="nativeWait"/> false keeps .NET's own blocking receive
    /// and a self-addressed wake-up datagram even on Linux (the path other systems take), so tests cover both.
    /// </summary>
    internal static UdpDatagramTransport Bind(IPEndPoint endpoint, ILogger? logger, bool nativeWait)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            if (OperatingSystem.IsWindows())
            {
                // Without this, an ICMP port-unreachable for an earlier send fails the next receive on Windows.
                socket.IOControl(WindowsSioUdpConnReset, new byte[4], null);
            }

            TrySetBuffers(socket);
            socket.Bind(endpoint);
            var transport = new UdpDatagramTransport(socket, logger ?? NullLogger.Instance, nativeWait);
            Log.Bound(transport._logger, transport.LocalEndpoint);
            return transport;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public bool Send(ReadOnlySpan<byte> datagram, IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return TryResolve(destination, out var address) ? SendNow(datagram, destination, address) : CountSendFailure(destination, SocketError.AddressFamilyNotSupported);
    }

    /// <summary>True on Linux, where queued datagrams leave with one <c>sendmmsg</c> per flush.</summary>
    public bool SupportsBatchSend => _native is not null;

    public bool QueueSend(ReadOnlySpan<byte> datagram, IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!TryResolve(destination, out var address))
        {
            return CountSendFailure(destination, SocketError.AddressFamilyNotSupported);
        }

        if (_native is not { } native)
        {
            return SendNow(datagram, destination, address);
        }

        if (native.Queue(datagram, address))
        {
            return true;
        }

        FlushSends(); // the batch is full or the datagram too long for it: what is queued leaves first, so the order holds
        return native.Queue(datagram, address) || SendNow(datagram, destination, address);
    }

    public int FlushSends()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_native is not { } native)
        {
            return 0;
        }

        var failed = native.Flush();
        if (failed > 0)
        {
            Interlocked.Add(ref _sendFailures, failed);
            Log.BatchSendFailed(_logger, failed);
        }

        return failed;
    }

    /// <summary>The native address for <paramref name="destination"/>, made once per endpoint; false for an unusable family.</summary>
    private bool TryResolve(IPEndPoint destination, out SocketAddress address)
    {
        if (_sendCache.TryGetValue(destination, out address!))
        {
            return true;
        }

        if (!TryTarget(destination, out var target))
        {
            return false;
        }

        if (_sendCache.Count >= MaxCachedAddresses)
        {
            _sendCache.Clear();
        }

        address = target.Serialize();
        _sendCache[new IPEndPoint(destination.Address, destination.Port)] = address; // a private copy: callers' endpoints are mutable
        return true;
    }

    private bool SendNow(ReadOnlySpan<byte> datagram, IPEndPoint destination, SocketAddress address)
    {
        try
        {
            _socket.SendTo(datagram, SocketFlags.None, address);
            return true;
        }
        catch (SocketException ex)
        {
            return CountSendFailure(destination, ex.SocketErrorCode);
        }
        catch (ObjectDisposedException) when (Volatile.Read(ref _disposed) != 0)
        {
            throw;
        }
    }

    /// <summary>The address to send to on this socket's family (IPv4 mapped into a dual-mode IPv6 socket and back).</summary>
    private bool TryTarget(IPEndPoint destination, out IPEndPoint target)
    {
        target = destination;
        if (_socket.AddressFamily == AddressFamily.InterNetworkV6 && destination.AddressFamily == AddressFamily.InterNetwork)
        {
            if (!_socket.DualMode)
            {
                return false;
            }

            target = new IPEndPoint(destination.Address.MapToIPv6(), destination.Port);
        }
        else if (_socket.AddressFamily == AddressFamily.InterNetwork && destination.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (!destination.Address.IsIPv4MappedToIPv6)
            {
                return false;
            }

            target = new IPEndPoint(destination.Address.MapToIPv4(), destination.Port);
        }

        return true;
    }

    // Pooled state machine: a datagram that is not already waiting would otherwise cost one boxed state machine.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReceivedDatagram> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

        // Each iteration needs a new datagram or ICMP error from outside, so this never spins on its own.
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, _receivedFrom, cancellationToken).ConfigureAwait(false);
                return new ReceivedDatagram(received, Sender());
            }
            catch (SocketException ex) when (IsIgnorable(ex.SocketErrorCode))
            {
                Interlocked.Increment(ref _receiveErrors);
                Log.ReceiveErrorIgnored(_logger, ex.SocketErrorCode);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.OperationAborted || Volatile.Read(ref _disposed) != 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                throw new ObjectDisposedException(nameof(UdpDatagramTransport), ex);
            }
        }
    }

    /// <summary>The endpoint of the datagram just received: one shared instance per source address (never mutated).</summary>
    public bool SupportsBlockingReceive => true;

    public bool TryReceive(Span<byte> buffer, TimeSpan timeout, out ReceivedDatagram received) =>
        TryReceive(buffer, timeout, TimeSpan.Zero, out received);

    /// <summary>On Linux, a wait may block in the socket for whole scheduler ticks up to <paramref name="slack"/> past <paramref name="timeout"/> (<see cref="LinuxSocketWait"/>); elsewhere the slack is not used.</summary>
    public bool TryReceive(Span<byte> buffer, TimeSpan timeout, TimeSpan slack, out ReceivedDatagram received)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_native is { } native)
        {
            long ignored = 0;
            var length = native.Receive(buffer, _receivedFrom, timeout, slack, ref ignored);
            if (ignored > 0)
            {
                Interlocked.Add(ref _receiveErrors, ignored);
            }

            received = length >= 0 ? new ReceivedDatagram(length, Sender()) : default;
            return length >= 0;
        }

        if (timeout <= TimeSpan.Zero && _socket.Available == 0)
        {
            // Nothing waiting (FIONREAD; a zero-length datagram at the head also reads 0 and is taken by the next wait).
            received = default;
            return false;
        }

        var millis = (int)Math.Clamp(Math.Ceiling(timeout.TotalMilliseconds), 1, int.MaxValue);
        if (_receiveTimeoutMillis != millis)
        {
            _socket.ReceiveTimeout = millis;
            _receiveTimeoutMillis = millis;
        }

        // Each iteration needs a datagram, an ICMP error or the timeout, so this never spins on its own.
        while (true)
        {
            try
            {
                var length = _socket.ReceiveFrom(buffer, SocketFlags.None, _receivedFrom);
                received = new ReceivedDatagram(length, Sender());
                return true;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                received = default;
                return false;
            }
            catch (SocketException ex) when (IsIgnorable(ex.SocketErrorCode))
            {
                Interlocked.Increment(ref _receiveErrors);
                Log.ReceiveErrorIgnored(_logger, ex.SocketErrorCode);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted || Volatile.Read(ref _disposed) != 0)
            {
                throw new ObjectDisposedException(nameof(UdpDatagramTransport), ex);
            }
        }
    }

    /// <summary>
    /// Ends a waiting <see cref="TryReceive"/> with a zero-length datagram to this socket itself (to the loopback address
    /// when it is bound to a wildcard); on Linux through the eventfd instead while the native receive polls
    /// (<see cref="LinuxSocketWait.Wake"/>). Safe from any thread: it touches only the socket, the eventfd and an address
    /// made once.
    /// </summary>
    public void Wake()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        if (_native is { BlocksInSocket: false } native)
        {
            native.Wake();
            return;
        }

        if (_wakeAddress is null)
        {
            return; // no address of our own to send to: the bounded wait ends by itself
        }

        try
        {
            _socket.SendTo(ReadOnlySpan<byte>.Empty, SocketFlags.None, _wakeAddress);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // best effort: the driver's wait is bounded, so a lost wake-up only delays its input
        }
    }

    /// <summary>This socket's own address, with a wildcard bind replaced by loopback (mapped by <see cref="TryTarget"/>).</summary>
    private static IPEndPoint WakeTarget(IPEndPoint local) =>
        local.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, local.Port)
        : local.Address.Equals(IPAddress.IPv6Any) ? new IPEndPoint(IPAddress.IPv6Loopback, local.Port)
        : local;

    private IPEndPoint Sender()
    {
        if (!AddressKey.TryCreate(_receivedFrom, out var key))
        {
            return Normalize((IPEndPoint)_anyRemote.Create(_receivedFrom)); // longer than any IP address: not cached
        }

        if (_receiveCache.TryGetValue(key, out var known))
        {
            return known;
        }

        if (_receiveCache.Count >= MaxCachedAddresses)
        {
            _receiveCache.Clear();
        }

        var endpoint = Normalize((IPEndPoint)_anyRemote.Create(_receivedFrom));
        _receiveCache[key] = endpoint;
        return endpoint;
    }

    /// <summary>
    /// A native socket address (sockaddr_in or sockaddr_in6: at most 28 bytes) as a value, so the receive cache compares
    /// and hashes four words instead of hashing the <see cref="SocketAddress"/> buffer for every datagram.
    /// </summary>
    private readonly struct AddressKey : IEquatable<AddressKey>
    {
        private const int MaxBytes = 32;
        private readonly ulong _a;
        private readonly ulong _b;
        private readonly ulong _c;
        private readonly ulong _d; // the last bytes and the length, so addresses of different sizes never compare equal

        private AddressKey(ReadOnlySpan<byte> bytes)
        {
            Span<byte> padded = stackalloc byte[MaxBytes];
            padded.Clear();
            bytes.CopyTo(padded);
            _a = BinaryPrimitives.ReadUInt64LittleEndian(padded);
            _b = BinaryPrimitives.ReadUInt64LittleEndian(padded[8..]);
            _c = BinaryPrimitives.ReadUInt64LittleEndian(padded[16..]);
            _d = BinaryPrimitives.ReadUInt32LittleEndian(padded[24..]) | (ulong)bytes.Length << 32;
        }

        public static bool TryCreate(SocketAddress address, out AddressKey key)
        {
            if (address.Size > MaxBytes - 4)
            {
                key = default;
                return false;
            }

            key = new AddressKey(address.Buffer.Span[..address.Size]);
            return true;
        }

        public bool Equals(AddressKey other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;

        public override bool Equals(object? obj) => obj is AddressKey other && Equals(other);

        public override int GetHashCode()
        {
            var h = (_a * 0x9E3779B97F4A7C15UL) ^ (_b * 0xC2B2AE3D27D4EB4FUL) ^ (_c * 0x165667B19E3779F9UL) ^ _d;
            return (int)(h ^ (h >> 32));
        }
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _socket.Dispose();
            _native?.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    public override string ToString() => $"udp {LocalEndpoint}";

    private static IPEndPoint Normalize(IPEndPoint endpoint) =>
        endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint;

    private static bool IsIgnorable(SocketError error) => error is
        SocketError.ConnectionReset or SocketError.ConnectionRefused or SocketError.HostUnreachable or
        SocketError.NetworkUnreachable or SocketError.NetworkReset or SocketError.MessageSize or
        SocketError.TimedOut or SocketError.NoBufferSpaceAvailable;

    private static void TrySetBuffers(Socket socket)
    {
        try
        {
            socket.ReceiveBufferSize = SocketBufferBytes;
            socket.SendBufferSize = SocketBufferBytes;
        }
        catch (SocketException)
        {
            // The OS keeps its defaults; that only means less room for bursts.
        }
    }

    private bool CountSendFailure(IPEndPoint destination, SocketError error)
    {
        Interlocked.Increment(ref _sendFailures);
        Log.SendFailed(_logger, destination, error);
        return false;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 100, Level = LogLevel.Debug, Message = "UDP socket bound to {Endpoint}")]
        public static partial void Bound(ILogger logger, IPEndPoint endpoint);

        [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "Send to {Destination} failed: {Error}; counted as lost")]
        public static partial void SendFailed(ILogger logger, IPEndPoint destination, SocketError error);

        [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "{Count} datagrams of a batch were refused by the OS; counted as lost")]
        public static partial void BatchSendFailed(ILogger logger, int count);

        [LoggerMessage(EventId = 102, Level = LogLevel.Trace, Message = "Ignored receive error {Error}")]
        public static partial void ReceiveErrorIgnored(ILogger logger, SocketError error);
    }
}
