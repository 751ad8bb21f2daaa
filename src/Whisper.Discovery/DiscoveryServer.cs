using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Whisper.Protocol;
using Whisper.Protocol.Wire;

namespace Whisper.Discovery;

/// <summary>
/// The discovery server on a UDP socket: one driver loop receives datagrams, feeds them to a
/// <see cref="DiscoveryEngine"/>, sends what it produces, re-arms one timer from
/// <see cref="DiscoveryEngine.NextTimeout"/> and logs what happened. All protocol decisions live in the engine.
/// Bad input and ICMP errors (connection reset) on receive are dropped, never fatal.
/// </summary>
public sealed partial class DiscoveryServer : IAsyncDisposable
{
    /// <summary>Larger than any valid datagram, so an oversized one is seen as such and dropped by the codec.</summary>
    private const int ReceiveBufferSize = 2048;

    /// <summary>Errors in a row after which the socket is considered broken and the loop stops (bounds a spin).</summary>
    private const int MaxConsecutiveReceiveErrors = 1000;

    /// <summary>Windows only: stop ICMP port-unreachable from surfacing as ConnectionReset on later receives.</summary>
    private const int SioUdpConnReset = -1744830452;

    private readonly Socket _socket;
    private readonly DiscoveryEngine _engine;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly int _maxMembers;
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[] _receiveBuffer = new byte[ReceiveBufferSize];
    private readonly byte[] _sendBuffer = new byte[WireCodec.MaxDatagramSize];
    private volatile IReadOnlyList<MemberRecord> _members = [];
    private int _disposed;

    private DiscoveryServer(Socket socket, DiscoveryOptions options, ILogger logger, TimeProvider time)
    {
        _socket = socket;
        _engine = new DiscoveryEngine(options);
        _logger = logger;
        _time = time;
        _started = time.GetTimestamp();
        _maxMembers = options.MaxMembers;
        LocalEndpoint = (IPEndPoint)socket.LocalEndPoint!;
        Completion = Task.CompletedTask;
    }

    /// <summary>Where the server listens, with the real port when bound to port 0.</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>The live members in admission order; a snapshot, safe to read from any thread.</summary>
    public IReadOnlyList<MemberRecord> Members => _members;

    /// <summary>Completes when the loop stops: normally after <see cref="DisposeAsync"/>, faulted if the socket broke.</summary>
    public Task Completion { get; private set; }

    /// <summary>Binds the socket and starts the loop.</summary>
    /// <exception cref="InvalidOperationException">The endpoint cannot be bound (for example the port is already in use); the inner exception has the socket error.</exception>
    public static Task<DiscoveryServer> StartAsync(DiscoveryServerOptions options, ILogger? logger = null, TimeProvider? time = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Bind);
        ArgumentNullException.ThrowIfNull(options.Engine);
        options.Engine.Validate();
        ct.ThrowIfCancellationRequested();

        var socket = Bind(options.Bind);
        var server = new DiscoveryServer(socket, options.Engine, logger ?? NullLogger.Instance, time ?? TimeProvider.System);
        server.LogListening(server.LocalEndpoint, options.Engine.MaxMembers, options.Engine.LeaseTimeout.TotalSeconds);
        var token = server._stop.Token;
        server.Completion = Task.Run(() => server.RunAsync(token), CancellationToken.None);
        return Task.FromResult(server);
    }

    /// <summary>Stops the loop and closes the socket. Never throws; a loop failure stays visible on <see cref="Completion"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose(); // also ends a receive that did not observe the cancellation
        try
        {
            await Completion.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogLoopEndedWithError(ex);
        }

        _stop.Dispose();
        LogStopped(_engine.Stats.ToString());
    }

    private static Socket Bind(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (OperatingSystem.IsWindows())
            {
                socket.ExclusiveAddressUse = true;
                socket.IOControl(SioUdpConnReset, [0, 0, 0, 0], null);
            }

            socket.Bind(endpoint);
            return socket;
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            var why = ex.SocketErrorCode == SocketError.AddressAlreadyInUse
                ? "the port is already in use (is another discovery server running there?)"
                : ex.Message;
            throw new InvalidOperationException($"cannot start the discovery server on {endpoint}: {why}", ex);
        }
    }

    private TimeSpan Now => _time.GetElapsedTime(_started);

    private async Task RunAsync(CancellationToken token)
    {
        var any = new IPEndPoint(_socket.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        Task<SocketReceiveFromResult>? receive = null;
        var errors = 0;
        try
        {
            while (!token.IsCancellationRequested)
            {
                receive ??= _socket.ReceiveFromAsync(_receiveBuffer, SocketFlags.None, any, token).AsTask();
                if (_engine.NextTimeout is { } due)
                {
                    var now = Now;
                    if (due <= now)
                    {
                        _engine.OnTimeout(now);
                        await FlushAsync(token).ConfigureAwait(false);
                        continue;
                    }

                    using var timer = CancellationTokenSource.CreateLinkedTokenSource(token);
                    var delay = Task.Delay(due - now, _time, timer.Token);
                    var first = await Task.WhenAny(receive, delay).ConfigureAwait(false);
                    await timer.CancelAsync().ConfigureAwait(false);
                    if (first != receive)
                    {
                        continue; // the top of the loop runs the due timeout
                    }
                }
                else
                {
                    await Task.WhenAny(receive).ConfigureAwait(false);
                }

                var completed = receive;
                receive = null;
                SocketReceiveFromResult result;
                try
                {
                    result = await completed.ConfigureAwait(false);
                    errors = 0;
                }
                catch (SocketException ex) when (!token.IsCancellationRequested)
                {
                    // ConnectionReset (an ICMP error for an earlier send), MessageSize (oversized, Windows) and the like.
                    LogReceiveError(ex.SocketErrorCode);
                    if (++errors >= MaxConsecutiveReceiveErrors)
                    {
                        throw new InvalidOperationException($"the discovery socket failed {errors} times in a row; last error {ex.SocketErrorCode}", ex);
                    }

                    continue;
                }

                _engine.OnDatagram((IPEndPoint)result.RemoteEndPoint, _receiveBuffer.AsSpan(0, result.ReceivedBytes), Now);
                await FlushAsync(token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (token.IsCancellationRequested && ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // stopping
        }
        finally
        {
            // A receive still pending when the loop ends fails once the socket closes; observe that failure.
            _ = receive?.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }

    private async Task FlushAsync(CancellationToken token)
    {
        _members = _engine.Members; // before sending: whoever got an answer already finds itself here
        while (_engine.TryPollTransmit(_sendBuffer, out var length, out var destination))
        {
            try
            {
                await _socket.SendToAsync(_sendBuffer.AsMemory(0, length), SocketFlags.None, destination, token).ConfigureAwait(false);
            }
            catch (SocketException ex) when (!token.IsCancellationRequested)
            {
                LogSendError(destination, ex.SocketErrorCode);
            }
        }

        while (_engine.TryPollEvent(out var ev))
        {
            Log(ev);
        }
    }

    private void Log(DiscoveryEvent ev)
    {
        switch (ev)
        {
            case MemberAdmitted a: LogAdmitted(a.Member.Name, a.MemberCount, _maxMembers, a.Member.Endpoint, a.Member.Id); break;
            case JoinDenied d: LogDenied(DiscoveryEvent.Printable(d.Name), d.From, d.Reason, DiscoveryEvent.Printable(d.Message, 600)); break;
            case MemberLeft l: LogLeft(l.Member.Name, l.MemberCount, _maxMembers, l.Member.Endpoint); break;
            case LeaseExpired e: LogExpired(e.Member.Name, e.Member.Endpoint, e.MemberCount, _maxMembers); break;
            case MemberRelearned r: LogRelearned(r.Member.Name, r.Member.Endpoint, r.MemberCount, _maxMembers, r.Via == r.Member.Id ? "its own lease" : "the view of " + r.Via); break;
            case MemberReplaced r: LogReplaced(r.New.Name, r.New.Endpoint, r.Old.Id, r.New.Id); break;
            case LeaseRefused r: LogLeaseRefused(r.Member.Name, r.Member.Endpoint, r.Reason, r.MemberCount, _maxMembers); break;
            default: LogOther(ev.Describe(_maxMembers)); break;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "discovery server listening on {Endpoint} (up to {MaxMembers} members, lease timeout {LeaseSeconds} s)")]
    private partial void LogListening(IPEndPoint endpoint, int maxMembers, double leaseSeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "admitted {Name} ({Count}/{MaxMembers}) from {Endpoint} as {Id}")]
    private partial void LogAdmitted(string name, int count, int maxMembers, IPEndPoint endpoint, MemberId id);

    [LoggerMessage(Level = LogLevel.Information, Message = "denied '{Name}' from {Endpoint}: {Reason}: {Message}")]
    private partial void LogDenied(string name, IPEndPoint endpoint, DenyReason reason, string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Name} left ({Count}/{MaxMembers}), was at {Endpoint}")]
    private partial void LogLeft(string name, int count, int maxMembers, IPEndPoint endpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "lease of {Name} at {Endpoint} expired ({Count}/{MaxMembers})")]
    private partial void LogExpired(string name, IPEndPoint endpoint, int count, int maxMembers);

    [LoggerMessage(Level = LogLevel.Information, Message = "re-learned {Name} at {Endpoint} ({Count}/{MaxMembers}) from {Source}")]
    private partial void LogRelearned(string name, IPEndPoint endpoint, int count, int maxMembers, string source);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Name} at {Endpoint} rejoined as a new incarnation {NewId}; the old one {OldId} is dropped")]
    private partial void LogReplaced(string name, IPEndPoint endpoint, MemberId oldId, MemberId newId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cannot re-learn {Name} at {Endpoint} from a lease: {Reason} ({Count}/{MaxMembers})")]
    private partial void LogLeaseRefused(string name, IPEndPoint endpoint, DenyReason reason, int count, int maxMembers);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Text}")]
    private partial void LogOther(string text);

    [LoggerMessage(Level = LogLevel.Debug, Message = "ignored a receive error: {Error}")]
    private partial void LogReceiveError(SocketError error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "could not send to {Endpoint}: {Error}")]
    private partial void LogSendError(IPEndPoint endpoint, SocketError error);

    [LoggerMessage(Level = LogLevel.Error, Message = "the discovery loop ended with an error")]
    private partial void LogLoopEndedWithError(Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "discovery server stopped: {Stats}")]
    private partial void LogStopped(string stats);
}
