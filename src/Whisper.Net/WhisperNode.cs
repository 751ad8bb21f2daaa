using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;

namespace Whisper.Net;

/// <summary>
/// One member of a Whisper group over a real <see cref="IDatagramTransport"/>.
/// <para>
/// One driver owns the <see cref="WhisperEngine"/>: it feeds it received datagrams, application commands (from a
/// <see cref="Channel{T}"/>) and timers one at a time and drains its outputs in the engine's call contract order
/// (transmits, then events). Over a transport with a blocking receive (<see cref="IBlockingDatagramReceiver"/>) on the
/// system clock, the driver is one dedicated thread that receives and waits in the socket until the next engine
/// deadline (a caller that queues a command while it waits runs the round itself, under the same lock); otherwise an
/// asynchronous loop re-arms one timer at <see cref="WhisperEngine.NextTimeout"/> through the injected
/// <see cref="TimeProvider"/>. Sends refused for flow control wait in order and are retried after the engine processed
/// further network or timer input.
/// </para>
/// <para>All members are thread-safe. <see cref="Events"/> has a single reader and is unbounded, so a slow
/// reader never stalls the protocol (heartbeats, acks); read it, or memory grows with the traffic.</para>
/// </summary>
public sealed partial class WhisperNode : IAsyncDisposable
{
    private const int ReceiveBufferBytes = 64 * 1024;
    private const int InboxCapacity = 4096;
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    private readonly WhisperNodeOptions _options;
    private readonly IDatagramTransport _transport;
    private readonly IDatagramBatchSender? _batchSender; // the transport, when it sends batches
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private WhisperEngine _engine;
    private readonly long _epoch;
    private readonly Channel<NodeInput> _inbox;
    private readonly Channel<WhisperEvent> _events;
    private readonly Queue<NodeCommand> _pending = new();
    private readonly byte[] _transmitBuffer = new byte[WireCodec.MaxDatagramSize];
    private readonly TaskCompletionSource<JoinedEvent> _joined = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly ITimer _timer;

    private Task _loop = Task.CompletedTask;
    private Task _receiver = Task.CompletedTask;
    private volatile IReadOnlyList<MemberSnapshot> _members = [];
    private volatile IReadOnlyList<MemberRef> _initialMembers = [];
    private volatile int _state = (int)EngineState.Idle;
    private volatile Exception? _fault;
    private int _tickQueued;
    private int _parked;
    private TimeSpan _parkedUntil;
    private readonly Lock _engineLock = new();
    private IBlockingDatagramReceiver? _parkable;
    private int _disposed;
    private bool _finished;
    private bool _membersDirty;
    private bool _rejoining;
    private bool _drainDue;
    private readonly HistoryLog _history;
    private readonly List<SendCommand> _internal = [];
    private readonly List<HistoryEntry> _batchScratch = [];
    private readonly Queue<string> _historyCandidates = new();
    private string? _historyFrom;
    private List<HistoryEntry>? _lateToPush;
    private long _malformedPayloads;
    private TimeSpan? _holdLiveUntil;
    private readonly List<ChatMessage?> _heldLive = [];
    private readonly Dictionary<MessageId, int> _heldIndex = [];
    private readonly List<(SendCommand Command, MessageId Id)> _accepted = [];
    private IPEndPoint? _rejoinThrough;
    private IReadOnlyList<IPEndPoint> _rejoinFallbacks = [];
    private TimeSpan _lastNow;
    private long _sendFailures;
    private long _oversized;
    private long _deferred;
    private readonly Stack<RawSendCommand> _rawPool = new();
    private readonly DatagramBufferPool _datagramBuffers = new();
    private int _rawQueued;
    private long _rawDropped;

    private WhisperNode(WhisperNodeOptions options, IDatagramTransport transport, ILoggerFactory loggers, TimeProvider time)
    {
        _options = options;
        _transport = transport;
        _batchSender = transport is IDatagramBatchSender { SupportsBatchSend: true } batching ? batching : null;
        _time = time;
        _logger = loggers.CreateLogger<WhisperNode>();
        _engine = CreateEngine(options.Id ?? new MemberId(RandomNonZero()), options.Seed ?? RandomNonZero());
        _history = new HistoryLog(options.HistoryDepth);

        _epoch = time.GetTimestamp();
        // Synchronous continuations: when the driver loop waits for input, the thread that writes (the receive loop, a
        // caller of BroadcastAsync, the timer) runs it at once instead of queueing it to the thread pool, which saves one
        // thread hop per datagram and per send. The loop still runs on one thread at a time (it is one async method), it
        // never writes to its own inbox, and everything it completes for callers (sends, stats, joins) resumes them
        // asynchronously, so no caller's code runs inside it.
        _inbox = Channel.CreateBounded<NodeInput>(new BoundedChannelOptions(InboxCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
            AllowSynchronousContinuations = true,
        });
        _events = Channel.CreateUnbounded<WhisperEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        _timer = time.CreateTimer(static s => ((WhisperNode)s!).OnTimerFired(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>This member: its name and its incarnation id.</summary>
    public MemberRef Self => _engine.Self;

    /// <summary>The local UDP endpoint (with the real port when bound to port 0).</summary>
    public IPEndPoint LocalEndpoint => _transport.LocalEndpoint;

    /// <summary>The settings this node runs with.</summary>
    public WhisperNodeOptions Options => _options;

    /// <summary>The members listed when this node joined, itself included.</summary>
    public IReadOnlyList<MemberRef> InitialMembers => _initialMembers;

    /// <summary>The group as this node sees it now (a snapshot refreshed by the driver loop).</summary>
    public IReadOnlyList<MemberSnapshot> Members => _members;

    /// <summary>The engine's state as of the last input the driver loop processed.</summary>
    public EngineState State => (EngineState)_state;

    /// <summary>Completes when the driver loop has ended (left, stopped or failed) and the socket is closed.</summary>
    public Task Completion => _loop;

    /// <summary>
    /// Deliveries and member changes, in the order the engine produced them; ends after this node left.
    /// Single reader. Ends with the driver loop's exception if the loop failed.
    /// </summary>
    public IAsyncEnumerable<WhisperEvent> Events => ReadEventsAsync();

    /// <summary>Joins the group through <see cref="WhisperNodeOptions.Server"/> (or <see cref="WhisperNodeOptions.Peer"/> when set) over a UDP socket bound to <see cref="WhisperNodeOptions.Bind"/>.</summary>
    /// <exception cref="WhisperJoinException">The server refused the join (also for an invalid name, checked locally first), or nobody answered.</exception>
    public static async Task<WhisperNode> JoinAsync(
        WhisperNodeOptions options,
        ILoggerFactory? loggers = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ThrowIfInvalidName(options.Name);
        options.Validate();
        loggers ??= NullLoggerFactory.Instance;
        IDatagramTransport transport = UdpDatagramTransport.Bind(options.Bind, loggers.CreateLogger<UdpDatagramTransport>());
        if (options.Faults is { IsActive: true } faults)
        {
            transport = new FaultInjectingTransport(transport, faults);
        }

        return await JoinAsync(options, transport, loggers, time, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Joins the group over a transport of the caller's (for instance an in-memory network). The node owns
    /// <paramref name="transport"/> from now on and disposes it when it stops, also when the join fails.
    /// </summary>
    /// <exception cref="WhisperJoinException">The server refused the join, or nobody answered.</exception>
    public static async Task<WhisperNode> JoinAsync(
        WhisperNodeOptions options,
        IDatagramTransport transport,
        ILoggerFactory? loggers = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(transport);
        WhisperNode node;
        try
        {
            ThrowIfInvalidName(options.Name);
            options.Validate();
            node = new WhisperNode(options, transport, loggers ?? NullLoggerFactory.Instance, time ?? TimeProvider.System);
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        node.Run();
        try
        {
            await node._joined.Task.WaitAsync(options.JoinTimeout, node._time, cancellationToken).ConfigureAwait(false);
            return node;
        }
        catch (TimeoutException)
        {
            await node.StopAsync().ConfigureAwait(false);
            throw new WhisperJoinException(DenyReason.Unreachable, $"no admission within {options.JoinTimeout.TotalSeconds:0.#} s from {options.Contact}");
        }
        catch
        {
            await node.StopAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Sends <paramref name="text"/> to every member (itself included); completes when the engine accepted it.</summary>
    /// <returns>The message's id, as it will appear in every member's <see cref="ChatMessage"/>.</returns>
    /// <exception cref="MessageTooLargeException">The UTF-8 text exceeds <see cref="EngineOptions.MaxMessageBytes"/>.</exception>
    /// <exception cref="InvalidOperationException">The node is not (or no longer) a member.</exception>
    public Task<MessageId> BroadcastAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        return SubmitAsync(new SendCommand(MessageKind.Broadcast, null, Encode(text)), cancellationToken);
    }

    /// <summary>
    /// Broadcasts <paramref name="utf8Text"/> (the message text as UTF-8; copied, the caller keeps its buffer) without
    /// allocating: for high-rate senders. True when the node queued it: the engine sends it in order after the
    /// broadcasts queued before it, exactly like <see cref="BroadcastAsync"/>, unless the node stops or leaves first.
    /// False, without side effects, when the node is not a member right now or already holds
    /// <see cref="WhisperNodeOptions.MaxQueuedBroadcasts"/> such sends that wait for flow control (back-pressure: try
    /// again later). Thread-safe; the message id is not reported (it appears in every member's delivery).
    /// </summary>
    /// <exception cref="MessageTooLargeException">The text exceeds <see cref="EngineOptions.MaxMessageBytes"/>.</exception>
    public bool TryBroadcast(ReadOnlySpan<byte> utf8Text)
    {
        var max = _options.Engine.MaxMessageBytes;
        if (utf8Text.Length > max)
        {
            throw new MessageTooLargeException(utf8Text.Length, max);
        }

        if (State != EngineState.Joined || _loop.IsCompleted)
        {
            return false;
        }

        if (Interlocked.Increment(ref _rawQueued) > _options.MaxQueuedBroadcasts)
        {
            Interlocked.Decrement(ref _rawQueued);
            return false;
        }

        RawSendCommand? command;
        lock (_rawPool)
        {
            _rawPool.TryPop(out command);
        }

        command ??= new RawSendCommand();
        command.Fill(utf8Text);
        if (!_inbox.Writer.TryWrite(NodeInput.ForCommand(command)))
        {
            ReturnRaw(command);
            return false;
        }

        TryRunInline();
        return true;
    }

    /// <summary>A <see cref="TryBroadcast"/> send is done (submitted or dropped): its command goes back to the pool.</summary>
    private void ReturnRaw(RawSendCommand command)
    {
        lock (_rawPool)
        {
            if (_rawPool.Count < _options.MaxQueuedBroadcasts)
            {
                _rawPool.Push(command);
            }
        }

        Interlocked.Decrement(ref _rawQueued);
    }

    /// <summary>Sends <paramref name="text"/> to the member named <paramref name="to"/> only; completes when the engine accepted it.</summary>
    /// <exception cref="UnknownMemberException">No member of the group has that name.</exception>
    /// <exception cref="MessageTooLargeException">The UTF-8 text exceeds <see cref="EngineOptions.MaxMessageBytes"/>.</exception>
    /// <exception cref="InvalidOperationException">The node is not (or no longer) a member.</exception>
    public Task<MessageId> SendPrivateAsync(string to, string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(to);
        ArgumentNullException.ThrowIfNull(text);
        var max = _options.Engine.MaxMessageBytes - 1; // one byte says "text" (docs/protocol.md, Application payloads)
        var count = Encoding.UTF8.GetByteCount(text);
        if (count > max)
        {
            throw new MessageTooLargeException(count, max);
        }

        return SubmitAsync(new SendCommand(MessageKind.Private, to, AppPayload.PrivateText(text)), cancellationToken);
    }

    /// <summary>A consistent snapshot of the counters, taken by the driver loop.</summary>
    public async Task<WhisperNodeStats> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        var query = new StatsQuery();
        await PostAsync(query, cancellationToken).ConfigureAwait(false);
        return await query.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Leaves the group gracefully after the sends already requested: the engine lingers so the last messages
    /// reach everyone, then reports that it left and the node stops. Bounded by
    /// <see cref="WhisperNodeOptions.LeaveTimeout"/>, after which the node stops anyway. Harmless when already stopped.
    /// </summary>
    public async Task LeaveAsync(CancellationToken cancellationToken = default)
    {
        if (_loop.IsCompleted)
        {
            return;
        }

        try
        {
            await PostAsync(new LeaveCommand(), cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            return; // the loop ended meanwhile
        }

        try
        {
            await _loop.WaitAsync(_options.EffectiveLeaveTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Log.LeaveTimedOut(_logger, _options.EffectiveLeaveTimeout.TotalSeconds);
            await StopAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Leaves gracefully if still a member (bounded), then stops the loop and closes the socket.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            await _loop.WaitAsync(StopTimeout, _time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return;
        }

        if (!_loop.IsCompleted && State is EngineState.Joined or EngineState.Leaving)
        {
            try
            {
                await LeaveAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Log.LeaveFailed(_logger, ex);
            }
        }

        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    public override string ToString() => $"{Self} at {LocalEndpoint} ({State})";

    /// <summary>The server would deny the name anyway; say so the same way, without any traffic.</summary>
    private static void ThrowIfInvalidName(string name)
    {
        if (MemberName.Validate(name) is { } problem)
        {
            throw new WhisperJoinException(DenyReason.InvalidName, problem);
        }
    }

    private static ulong RandomNonZero()
    {
        Span<byte> bytes = stackalloc byte[8];
        ulong value;
        do
        {
            RandomNumberGenerator.Fill(bytes);
            value = BitConverter.ToUInt64(bytes);
        }
        while (value == 0);
        return value;
    }

    private byte[] Encode(string text)
    {
        var max = _options.Engine.MaxMessageBytes;
        var count = Encoding.UTF8.GetByteCount(text);
        if (count > max)
        {
            throw new MessageTooLargeException(count, max);
        }

        return Encoding.UTF8.GetBytes(text);
    }

    private async Task<MessageId> SubmitAsync(SendCommand command, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await PostAsync(command, cancellationToken).ConfigureAwait(false);
        using var registration = cancellationToken.Register(static (s, t) => ((SendCommand)s!).RequestCancel(t), command);
        return await command.Completion.Task.ConfigureAwait(false);
    }

    private async ValueTask PostAsync(NodeCommand command, CancellationToken cancellationToken)
    {
        try
        {
            var input = NodeInput.ForCommand(command);
            if (!_inbox.Writer.TryWrite(input))
            {
                await _inbox.Writer.WriteAsync(input, cancellationToken).ConfigureAwait(false);
            }

            TryRunInline();
        }
        catch (ChannelClosedException)
        {
            throw Stopped();
        }
    }

    private InvalidOperationException Stopped() => _fault is { } fault
        ? new InvalidOperationException($"the node {Self} has stopped after a failure: {fault.Message}", fault)
        : new InvalidOperationException($"the node {Self} has stopped (it left the group or was disposed)");

    private async IAsyncEnumerable<WhisperEvent> ReadEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var reader = _events.Reader;
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (reader.TryRead(out var item))
            {
                yield return item;
            }
        }
    }

    private async Task StopAsync()
    {
        try
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // already stopped and disposed
        }

        await _loop.WaitAsync(StopTimeout, _time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private void OnTimerFired()
    {
        if (Interlocked.Exchange(ref _tickQueued, 1) == 0 && !_inbox.Writer.TryWrite(NodeInput.Tick))
        {
            // Inbox full or closed: the loop is busy and runs due timers whenever it drained its inbox (or every few ms).
            Volatile.Write(ref _tickQueued, 0);
        }
    }
}
