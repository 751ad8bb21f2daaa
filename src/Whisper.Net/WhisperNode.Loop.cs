using System.Net;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;

namespace Whisper.Net;

// The driver loop: the only code that touches the engine.
public sealed partial class WhisperNode
{
    private TimeSpan Now()
    {
        var now = _time.GetElapsedTime(_epoch);
        if (now < _lastNow)
        {
            now = _lastNow; // time never goes backwards for the engine
        }

        _lastNow = now;
        return now;
    }

    private void Run()
    {
        // One thread that waits in the socket needs the real clock for its waits; a test clock gets the timer-driven loop.
        if (_transport is IBlockingDatagramReceiver { SupportsBlockingReceive: true } blocking && ReferenceEquals(_time, TimeProvider.System))
        {
            _parkable = blocking;
            _loop = StartDriverThread(blocking);
            return;
        }

        var receiveStop = new CancellationTokenSource();
        _receiver = Task.Run(() => ReceiveLoopAsync(receiveStop.Token));
        _loop = Task.Run(() => DriveAsync(receiveStop));
    }

    /// <summary>
    /// The driver loop on a dedicated thread that also receives (transports with a blocking receive, on the system
    /// clock). Each round feeds the engine the datagrams already waiting in the socket (at most <see cref="MaxBatch"/>,
    /// straight from one receive buffer: no copy, no hop), then the queued commands (at most <see cref="MaxBatch"/>), runs
    /// the timers once the socket is drained (so an ack still waiting there counts before a retransmission timer judges
    /// its chunks missing; under a flood at most <see cref="TimerSlice"/> apart), and drains the transmits once, so the
    /// chunks of several sends and the acks for several datagrams share datagrams. With nothing to do it parks in the
    /// socket's receive until a datagram comes, the next engine deadline or <see cref="ReceivePoll"/>; other threads
    /// end the wait with <see cref="IBlockingDatagramReceiver.Wake"/> when they queue a command. A busy node never
    /// sleeps: datagrams that arrive while it works are read without a wake-up, which a thread that only relayed them
    /// to another would pay for nearly every datagram (docs/architecture.md, "The driver").
    /// </summary>
    private Task StartDriverThread(IBlockingDatagramReceiver receiver)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                DriveOnThread(receiver);
            }
            finally
            {
                done.TrySetResult();
            }
        })
        {
            IsBackground = true,
            Name = $"whisper {_options.Name}",
        };
        thread.Start();
        return done.Task;
    }

    private void DriveOnThread(IBlockingDatagramReceiver receiver)
    {
        Log.Starting(_logger, Self.ToString(), _transport.LocalEndpoint, _options.Peer is null ? "server" : "member", _options.Contact);
        var buffer = GC.AllocateUninitializedArray<byte>(ReceiveBufferBytes);
        var errors = 0;
        _engineLock.Enter(); // held by this thread except while it waits in the socket (see Park)
        try
        {
            _engine.Start(_options.Contact, Now(), _options.Peer is null ? null : _options.Server);
            AfterInput(isTimeout: false);
            using var wake = _stop.Token.UnsafeRegister(static s => ((WhisperNode)s!).WakeDriver(), this);
            var timersRunAt = Now();
            var reader = _inbox.Reader;
            while (!_finished)
            {
                _stop.Token.ThrowIfCancellationRequested();
                var datagrams = 0;
                while (datagrams < MaxBatch && !_finished && TakeDatagram(receiver, buffer, TimeSpan.Zero, TimeSpan.Zero, ref errors, out var received))
                {
                    Feed(buffer, received);
                    datagrams++;
                }

                var commands = HandleQueuedCommands();
                if (datagrams < MaxBatch || Now() - timersRunAt >= TimerSlice)
                {
                    timersRunAt = RunTimers();
                }

                DrainBatch();
                if (datagrams == 0 && commands == 0 && !_finished)
                {
                    Park(receiver, buffer, ref errors);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            Log.Stopped(_logger, Self.ToString(), State);
        }
        catch (Exception ex)
        {
            _fault ??= ex;
            Log.LoopFailed(_logger, Self.ToString(), ex);
        }
        finally
        {
            _finished = true;
            ShutdownAsync(receiveStop: null).GetAwaiter().GetResult(); // this thread is the receiver: nothing to wait for
            _engineLock.Exit();
        }
    }

    /// <summary>Feeds the engine the commands queued in the inbox, at most <see cref="MaxBatch"/>; returns how many.</summary>
    private int HandleQueuedCommands()
    {
        var commands = 0;
        while (commands < MaxBatch && !_finished && _inbox.Reader.TryRead(out var input))
        {
            Handle(input);
            commands++;
        }

        return commands;
    }

    /// <summary>
    /// Waits in the socket until a datagram, a wake-up, the engine's next deadline or <see cref="ReceivePoll"/>, with
    /// the engine released, so that a thread queueing a command meanwhile can run the round itself
    /// (<see cref="TryRunInline"/>). Announces the wait before it looks at the inbox, so a command queued at any moment
    /// is seen here, run inline, or wakes the wait (<see cref="WakeDriver"/>).
    /// </summary>
    private void Park(IBlockingDatagramReceiver receiver, byte[] buffer, ref int errors)
    {
        var wait = ReceivePoll;
        var slack = TimeSpan.Zero;
        var now = Now();
        if (_engine.NextTimeout is { } due)
        {
            var left = due - now;
            if (left <= wait)
            {
                wait = left <= TimeSpan.Zero ? TimeSpan.Zero : left;
                slack = _engine.NextTimeoutLatest is { } latest && latest > due ? latest - due : TimeSpan.Zero; // lenient timers may run a little late
            }
        }

        if (wait <= TimeSpan.Zero)
        {
            return;
        }

        _parkedUntil = now + wait + slack; // the wait ends by then at the latest
        Interlocked.Exchange(ref _parked, 1);
        if (_inbox.Reader.Count > 0 || _stop.IsCancellationRequested)
        {
            Volatile.Write(ref _parked, 0);
            return;
        }

        bool got;
        ReceivedDatagram received;
        _engineLock.Exit();
        try
        {
            got = TakeDatagram(receiver, buffer, wait, slack, ref errors, out received);
        }
        finally
        {
            _engineLock.Enter();
            Volatile.Write(ref _parked, 0);
        }

        if (got && !_finished)
        {
            Feed(buffer, received);
        }
    }

    /// <summary>
    /// After a command was queued: when the driver thread waits in the socket, the caller runs the round itself (its
    /// commands, due timers, the drain), so a send leaves without waking another thread first; the driver thread is
    /// woken only when its wait must end sooner (an earlier engine deadline, more input, the end). Otherwise, or when
    /// the caller is inside the loop already (a delivery handler), the driver thread is woken if it waits.
    /// </summary>
    private void TryRunInline()
    {
        if (_parkable is null)
        {
            return;
        }

        if (Volatile.Read(ref _parked) == 0 || _engineLock.IsHeldByCurrentThread || !_engineLock.TryEnter())
        {
            WakeDriver();
            return;
        }

        var wakeAfter = true;
        try
        {
            if (Volatile.Read(ref _parked) == 1 && !_finished)
            {
                HandleQueuedCommands();
                RunTimers();
                DrainBatch();
                wakeAfter = _finished || _inbox.Reader.Count > 0 || _engine.NextTimeoutLatest < _parkedUntil;
            }
        }
        catch (Exception ex)
        {
            _fault ??= ex;
            _finished = true; // the driver thread ends the node
            Log.LoopFailed(_logger, Self.ToString(), ex);
        }
        finally
        {
            _engineLock.Exit();
        }

        if (wakeAfter)
        {
            WakeDriver();
        }
    }

    /// <summary>Thread-safe: ends the driver thread's wait in the socket, if it is waiting, so it looks at its inbox.</summary>
    private void WakeDriver()
    {
        if (_parkable is { } receiver && Interlocked.Exchange(ref _parked, 0) == 1)
        {
            receiver.Wake();
        }
    }

    /// <summary>
    /// One receive on the driver thread into <paramref name="buffer"/>. True when something was taken from the socket
    /// (zero-length wake-ups included); errors other than disposal are logged and backed off (bounded), never thrown.
    /// </summary>
    /// <param name="slack">How much later than <paramref name="timeout"/> a wait that finds nothing may end (the engine's lenient timers).</param>
    private bool TakeDatagram(IBlockingDatagramReceiver receiver, byte[] buffer, TimeSpan timeout, TimeSpan slack, ref int errors, out ReceivedDatagram received)
    {
        try
        {
            if (!receiver.TryReceive(buffer, timeout, slack, out received))
            {
                return false;
            }

            errors = 0;
            return true;
        }
        catch (ObjectDisposedException) when (_stop.IsCancellationRequested)
        {
            throw new OperationCanceledException(_stop.Token);
        }
        catch (Exception ex) when (ex is not ObjectDisposedException)
        {
            // Unexpected transport error: log, back off a little (bounded), carry on.
            errors++;
            Log.ReceiveFailed(_logger, ex);
            _stop.Token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(Math.Min(1000, 10 * errors)));
            received = default;
            return false;
        }
    }

    /// <summary>A datagram taken on the driver thread, fed to the engine straight from the receive buffer.</summary>
    private void Feed(byte[] buffer, ReceivedDatagram received)
    {
        if (received.Length == 0)
        {
            return; // a wake-up (or an empty datagram from anybody): nothing for the engine
        }

        if (!IsOversized(received))
        {
            FeedEngine(received.From, buffer.AsSpan(0, received.Length));
        }
    }

    /// <summary>A datagram in: to the engine, then the sends waiting for flow control get another chance.</summary>
    private void FeedEngine(IPEndPoint from, ReadOnlySpan<byte> datagram)
    {
        _engine.OnDatagram(from, datagram, Now());
        _drainDue = true;
        FlushPending();
    }

    /// <summary>True (and counted) for a datagram longer than any the protocol sends: dropped before the engine.</summary>
    private bool IsOversized(ReceivedDatagram received)
    {
        if (received.Length <= WireCodec.MaxDatagramSize)
        {
            return false;
        }

        Interlocked.Increment(ref _oversized);
        return true;
    }

    private async Task DriveAsync(CancellationTokenSource receiveStop)
    {
        Log.Starting(_logger, Self.ToString(), _transport.LocalEndpoint, _options.Peer is null ? "server" : "member", _options.Contact);
        try
        {
            _engine.Start(_options.Contact, Now(), _options.Peer is null ? null : _options.Server);
            AfterInput(isTimeout: false);
            Rearm();
            var reader = _inbox.Reader;

            // The wait takes no token: a bounded channel reuses one waiter for an uncancellable wait but allocates one per
            // wait otherwise. Stopping wakes the loop with a tick instead, and every round checks the token.
            using var wake = _stop.Token.UnsafeRegister(static s => ((WhisperNode)s!)._inbox.Writer.TryWrite(NodeInput.Tick), this);
            while (!_finished && await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                _stop.Token.ThrowIfCancellationRequested();
                // Every TryRead consumes an item, so a batch is bounded by what was queued. Transmits are drained once per
                // batch (at most MaxBatch inputs): chunks of several sends and acks for several datagrams share datagrams.
                // Timers run once everything queued was fed to the engine: an ack waiting in the inbox counts before a
                // retransmission timer judges its chunks missing (a starved loop must not resend what was acknowledged).
                // Under a flood that never empties the inbox they still run, at most TimerSlice apart.
                // The loop usually runs inline on the thread that wrote its input (see the inbox's options), so the inbox
                // seldom holds more than one item: when the last drain was moments ago (a busy node), it yields once to the
                // thread pool before draining, so that inputs arriving meanwhile share this drain's datagrams; an idle
                // node drains at once.
                var batched = 0;
                var timersRunAt = Now();
                var gathered = false;
                while (true)
                {
                    while (!_finished && reader.TryRead(out var input))
                    {
                        Handle(input);
                        if (++batched >= MaxBatch)
                        {
                            DrainBatch();
                            batched = 0;
                            if (Now() - timersRunAt >= TimerSlice)
                            {
                                timersRunAt = RunTimers();
                            }
                        }
                    }

                    if (_finished || gathered || batched == 0 || Now() - _lastDrainAt >= BusyGap)
                    {
                        break;
                    }

                    gathered = true;
                    await Task.Yield();
                }

                RunTimers();
                DrainBatch();
                if (!_finished)
                {
                    Rearm();
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            Log.Stopped(_logger, Self.ToString(), State);
        }
        catch (Exception ex)
        {
            _fault = ex;
            Log.LoopFailed(_logger, Self.ToString(), ex);
        }
        finally
        {
            await ShutdownAsync(receiveStop).ConfigureAwait(false);
        }
    }

    private void Handle(NodeInput input)
    {
        switch (input.Kind)
        {
            case InputKind.Datagram:
                try
                {
                    FeedEngine(input.From!, input.Buffer.AsSpan(0, input.Length));
                }
                finally
                {
                    _datagramBuffers.Return(input.Buffer!);
                }

                break;

            case InputKind.Tick:
                Volatile.Write(ref _tickQueued, 0); // the timers run when the inbox is drained (see DriveAsync)
                break;

            case InputKind.Command:
                HandleCommand(input.Command!);
                break;
        }
    }

    private void HandleCommand(NodeCommand command)
    {
        switch (command)
        {
            case SendCommand send:
                if (_pending.Count > 0 || !TrySubmit(send))
                {
                    _pending.Enqueue(send);
                }

                break;

            case RawSendCommand raw:
                if (_pending.Count > 0 || !TrySubmitRaw(raw))
                {
                    _pending.Enqueue(raw);
                }

                break;

            case LeaveCommand:
                if (_pending.Count > 0)
                {
                    _pending.Enqueue(command);
                }
                else
                {
                    BeginLeave();
                }

                break;

            case StatsQuery query:
                query.Completion.TrySetResult(WhisperNodeStats.From(
                    _engine.Stats, Interlocked.Read(ref _sendFailures), Interlocked.Read(ref _oversized), _deferred, _pending.Count));
                break;
        }
    }

    /// <summary>Hands a send to the engine. False when flow control refused it (it stays pending, in order).</summary>
    private bool TrySubmit(SendCommand command)
    {
        if (!command.TryBeginSubmit())
        {
            return true; // cancelled while waiting: drop it
        }

        SendResult result;
        try
        {
            result = command.Kind == MessageKind.Broadcast
                ? _engine.Broadcast(command.Payload, Now())
                : _engine.SendPrivate(command.To!, command.Payload, Now());
        }
        catch (Exception ex)
        {
            command.Fail(new InvalidOperationException("the engine failed on this send", ex));
            throw;
        }

        switch (result.Status)
        {
            case SendStatus.Accepted:
                _accepted.Add((command, result.Id)); // completed after this batch's drain: datagrams out and own delivery published first
                _drainDue = true;
                return true;
            case SendStatus.WindowFull:
                if (!command.WasDeferred)
                {
                    command.WasDeferred = true;
                    _deferred++;
                    Log.SendDeferred(_logger, command.Kind, command.To);
                }

                command.ReturnToPending();
                return false;
            case SendStatus.TooLarge:
                command.Fail(new MessageTooLargeException(command.Payload.Length, _engine.Options.MaxMessageBytes));
                return true;
            case SendStatus.UnknownRecipient:
                command.Fail(new UnknownMemberException(command.To!, $"'{command.To}' is not a member of the group", null));
                return true;
            case SendStatus.NotJoined when _rejoining:
                command.ReturnToPending(); // sent by the new incarnation once it is a member
                return false;
            default:
                command.Fail(new InvalidOperationException($"{Self} is not a member of the group right now ({_engine.State})"));
                return true;
        }
    }

    /// <summary>Hands a <see cref="TryBroadcast"/> send to the engine. False when flow control refused it (it stays pending, in order).</summary>
    private bool TrySubmitRaw(RawSendCommand command)
    {
        var result = _engine.Broadcast(command.Payload, Now());
        switch (result.Status)
        {
            case SendStatus.Accepted:
                _drainDue = true;
                break;
            case SendStatus.WindowFull:
                _deferred++;
                return false;
            case SendStatus.NotJoined when _rejoining:
                return false; // sent by the new incarnation once it is a member
            default:
                _rawDropped++; // not a member any more (TryBroadcast checked the size)
                break;
        }

        ReturnRaw(command);
        return true;
    }

    /// <summary>Retries waiting commands in order until one is refused again (called after network or timer input).</summary>
    private void FlushPending()
    {
        while (!_finished && _pending.TryPeek(out var head))
        {
            if ((head is SendCommand send && !TrySubmit(send)) || (head is RawSendCommand raw && !TrySubmitRaw(raw)))
            {
                return;
            }

            _pending.Dequeue();
            if (head is LeaveCommand)
            {
                BeginLeave();
            }
        }
    }

    private void BeginLeave()
    {
        switch (_engine.State)
        {
            case EngineState.Joined:
                Log.Leaving(_logger, Self.ToString());
                _engine.Leave(Now());
                AfterInput(isTimeout: false);
                break;
            case EngineState.Leaving or EngineState.Left:
                break;
            default:
                _finished = true; // not a member yet: nothing to leave gracefully
                break;
        }
    }

    // ------------------------------------------------------------------ history and late messages

    /// <summary>A broadcast delivered live: shown unless history already showed it; kept for members that join later.</summary>
    private void ShowBroadcast(in DeliveryView m)
    {
        if (!_history.FirstSightingLive(m.Id))
        {
            return;
        }

        var now = DrainUtcNow();
        _history.Keep(m.Id, m.From.Name, m.Payload, now);
        if (_options.DeliveryHandler is { } handler && _holdLiveUntil is null)
        {
            Deliver(handler, new WhisperDelivery(m.Id, m.From.Name, null, m.Payload, m.Deps, now, Arrival.Live)); // no allocation
            return;
        }

        Show(new ChatMessage(m.Id, m.Kind, m.From.Name, null, Encoding.UTF8.GetString(m.Payload), ClockOf(m.Deps), now));
    }

    /// <summary>
    /// Publishes a live message, or holds it while a history answer is awaited (bounded by <see cref="HistoryWait"/>), so
    /// what was said before this incarnation joined is shown before what was said after it, which may depend on it.
    /// </summary>
    private void Show(ChatMessage message)
    {
        if (_holdLiveUntil is not null)
        {
            _heldIndex[message.Id] = _heldLive.Count;
            _heldLive.Add(message);
            return;
        }

        Emit(message);
    }

    /// <summary>A message leaves the node: to <see cref="WhisperNodeOptions.DeliveryHandler"/> when set, else to <see cref="Events"/>.</summary>
    private void Emit(ChatMessage message)
    {
        if (_options.DeliveryHandler is not { } handler)
        {
            _events.Writer.TryWrite(message);
            return;
        }

        // Held, history and late messages (rare): back to UTF-8 for the handler.
        Deliver(handler, new WhisperDelivery(
            message.Id, message.From, message.To, Encoding.UTF8.GetBytes(message.Text), message.Deps.EntrySpan, message.ReceivedAt, message.Arrival));
    }

    private void Deliver(WhisperDeliveryHandler handler, in WhisperDelivery delivery)
    {
        try
        {
            handler(delivery);
        }
        catch (Exception ex)
        {
            Log.DeliveryHandlerFailed(_logger, Self.Name, delivery.Id.ToString(), ex);
        }
    }

    private static VectorClock ClockOf(ReadOnlySpan<ClockEntry> deps) => deps.IsEmpty ? VectorClock.Empty : VectorClock.From(deps.ToArray());

    private void ReleaseHeldLive()
    {
        _holdLiveUntil = null;
        foreach (var m in _heldLive)
        {
            if (m is not null)
            {
                Emit(m);
            }
        }

        _heldLive.Clear();
        _heldIndex.Clear();
    }

    private void OnPrivatePayload(in DeliveryView m)
    {
        var payload = m.Payload;
        if (payload.IsEmpty)
        {
            _malformedPayloads++;
            return;
        }

        switch (payload[0])
        {
            case AppPayload.Text when _options.DeliveryHandler is { } handler && _holdLiveUntil is null:
                Deliver(handler, new WhisperDelivery(m.Id, m.From.Name, m.To?.Name, payload[1..], m.Deps, DrainUtcNow(), Arrival.Live));
                break;
            case AppPayload.Text:
                Show(new ChatMessage(m.Id, m.Kind, m.From.Name, m.To?.Name, Encoding.UTF8.GetString(payload[1..]), ClockOf(m.Deps), DrainUtcNow()));
                break;
            case AppPayload.HistoryRequest when AppPayload.TryReadRequest(payload, out var max):
                var batches = HistoryBatch.Encode(_history.Recent(Math.Min(max, _options.HistoryDepth)), late: false, _options.Engine.MaxMessageBytes);
                Log.ServingHistory(_logger, Self.Name, m.From.Name, _history.Count, batches.Count);
                foreach (var batch in batches)
                {
                    SendInternal(m.From.Name, batch);
                }

                break;
            case AppPayload.HistoryBatch when HistoryBatch.TryDecode(payload, out var flags, _batchScratch):
                var arrival = (flags & HistoryBatch.LateFlag) != 0 ? Arrival.Late : Arrival.History;
                foreach (var e in _batchScratch)
                {
                    if (_heldIndex.Remove(e.Id, out var heldAt))
                    {
                        // Delivered here live but held for this very answer: shown at its place in the answerer's causal
                        // order, marked like the batch (the answerer had it before we were caught up), so a later entry
                        // that answers it never comes first.
                        Emit(_heldLive[heldAt]! with { Arrival = arrival, Deps = VectorClock.Empty });
                        _heldLive[heldAt] = null;
                    }
                    else if (_history.FirstSighting(e.Id))
                    {
                        _history.Keep(e);
                        Emit(new ChatMessage(e.Id, MessageKind.Broadcast, e.From, null, e.Text, VectorClock.Empty, e.At, arrival));
                    }
                }

                if (arrival == Arrival.History && (flags & HistoryBatch.LastFlag) != 0 && m.From.Name == _historyFrom)
                {
                    _historyFrom = null;
                    _historyCandidates.Clear(); // caught up
                    ReleaseHeldLive();
                }

                break;
            default:
                _malformedPayloads++; // an unknown content type or a broken batch: dropped and counted, never thrown
                break;
        }
    }

    /// <summary>After (re)joining: ask one member after another (until one answers) for the recent broadcasts.</summary>
    private void StartHistoryCatchUp(IReadOnlyList<MemberRef> members)
    {
        _historyCandidates.Clear();
        if (_options.HistoryDepth <= 0)
        {
            return;
        }

        foreach (var m in members)
        {
            if (m.Id != _engine.Self.Id && !string.Equals(m.Name, _options.Name, StringComparison.Ordinal))
            {
                _historyCandidates.Enqueue(m.Name);
            }
        }

        AskNextForHistory();
    }

    private void AskNextForHistory()
    {
        _historyFrom = _historyCandidates.TryDequeue(out var next) ? next : null;
        if (_historyFrom is null)
        {
            ReleaseHeldLive(); // nobody left to ask
            return;
        }

        _holdLiveUntil = Now() + HistoryWait;
        SendInternal(_historyFrom, AppPayload.Request(_options.HistoryDepth));
    }

    /// <summary>How long live messages wait for a history answer before they are shown anyway.</summary>
    private static readonly TimeSpan HistoryWait = TimeSpan.FromSeconds(3);

    /// <summary>After a rejoin: hand what this node said and saw before it was removed to every member, as late messages.</summary>
    private void PushLate(IReadOnlyList<MemberRef> members)
    {
        if (_lateToPush is not { Count: > 0 } late)
        {
            return;
        }

        _lateToPush = null;
        var batches = HistoryBatch.Encode(late, late: true, _options.Engine.MaxMessageBytes);
        foreach (var m in members)
        {
            if (m.Id == _engine.Self.Id || string.Equals(m.Name, _options.Name, StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var batch in batches)
            {
                SendInternal(m.Name, batch);
            }
        }
    }

    private void SendInternal(string to, byte[] payload) =>
        _internal.Add(new SendCommand(MessageKind.Private, to, payload));

    /// <summary>
    /// Fires the engine's timers when due (after the queued inputs were handled), then retries waiting sends. Returns the
    /// time it judged them by (one clock read per round: the reads were a visible part of a receive's cost).
    /// </summary>
    private TimeSpan RunTimers()
    {
        var now = Now();
        if (!_finished && _engine.NextTimeout is { } due && due <= now)
        {
            _engine.OnTimeout(now);
            AfterInput(isTimeout: true);
            FlushPending();
        }

        return now;
    }

    /// <summary>A drain less than this after the previous one means the node is busy: gather more input first (one yield).</summary>
    private static readonly TimeSpan BusyGap = TimeSpan.FromMicroseconds(300);

    private TimeSpan _lastDrainAt = TimeSpan.MinValue / 2;

    /// <summary>Under a flood of inputs, the longest the engine's timers wait for the inbox to drain.</summary>
    private static readonly TimeSpan TimerSlice = TimeSpan.FromMilliseconds(5);

    /// <summary>Inputs handled between two drains of the engine's transmits.</summary>
    private const int MaxBatch = 64;

    /// <summary>Drains what this batch of inputs produced, then lets the callers of the accepted sends resume.</summary>
    private void DrainBatch()
    {
        if (_parkable is null)
        {
            _lastDrainAt = Now(); // only the inbox loop (DriveAsync) gathers by it
        }

        if (_drainDue)
        {
            _drainDue = false;
            AfterInput(isTimeout: false);
        }

        foreach (var (command, id) in _accepted)
        {
            command.Succeed(id);
        }

        _accepted.Clear();
    }

    /// <summary>
    /// The wall-clock time stamped on the messages of one drain, read once per drain (a full datagram delivers about nine
    /// messages, and the clock read was the costliest part of stamping them).
    /// </summary>
    private DateTimeOffset DrainUtcNow() => _drainUtc ??= _time.GetUtcNow();

    private DateTimeOffset? _drainUtc;

    /// <summary>The call contract: transmits until none, then events until none; then refresh the snapshots.</summary>
    private void AfterInput(bool isTimeout)
    {
        _drainUtc = null;
        var batch = _batchSender;
        while (_engine.TryPollTransmit(_transmitBuffer, out var length, out var destination))
        {
            var datagram = _transmitBuffer.AsSpan(0, length);
            if (!(batch is null ? _transport.Send(datagram, destination) : batch.QueueSend(datagram, destination)))
            {
                Interlocked.Increment(ref _sendFailures);
            }
        }

        // All of them in one system call where the transport can (a broadcast is one datagram to each member): they leave
        // before any receiver they wake can take this thread's processor, and the syscalls are shared.
        if (batch?.FlushSends() is > 0 and var refused)
        {
            Interlocked.Add(ref _sendFailures, refused);
        }

        while (_engine.TryPollOutput(out var engineEvent, out var delivery))
        {
            if (engineEvent is null)
            {
                OnDelivered(delivery); // a view into the engine's buffers: used before the next engine call
            }
            else
            {
                Publish(engineEvent);
            }
        }

        if (_holdLiveUntil is { } until && Now() >= until)
        {
            Log.HistoryTimedOut(_logger, Self.Name, _historyFrom ?? "nobody");
            _historyFrom = null;
            _historyCandidates.Clear();
            ReleaseHeldLive(); // no answer in time: show what came live (history may still arrive, marked, later)
        }

        if (_internal.Count > 0 && !_finished)
        {
            // Sends the node makes itself (history), queued behind the application's in FIFO order, transmitted now.
            foreach (var command in _internal)
            {
                _pending.Enqueue(command);
            }

            _internal.Clear();
            FlushPending();
            AfterInput(isTimeout);
            return;
        }

        if (_rejoinThrough is { } contact)
        {
            _rejoinThrough = null;
            Reincarnate(contact, _rejoinFallbacks);
            AfterInput(isTimeout: true);
            return;
        }

        _state = (int)_engine.State;
        // Member changes refresh the snapshot at once; timer rounds (for round-trip times) at most every MembersRefresh,
        // since a busy node runs its timers every few milliseconds and each snapshot is a new list.
        if (_membersDirty || (isTimeout && Now() - _membersAt >= MembersRefresh))
        {
            RefreshSnapshots();
        }
    }

    /// <summary>The state and member list other threads read (<see cref="State"/>, <see cref="Members"/>), from the engine now.</summary>
    private void RefreshSnapshots()
    {
        _state = (int)_engine.State;
        _membersDirty = false;
        _membersAt = Now();
        _members = Array.AsReadOnly<MemberSnapshot>([.. _engine.Members]);
    }

    private static readonly TimeSpan MembersRefresh = TimeSpan.FromMilliseconds(100);

    private TimeSpan _membersAt = TimeSpan.MinValue / 2;

    private void OnDelivered(in DeliveryView m)
    {
        if (m.Kind == MessageKind.Broadcast)
        {
            ShowBroadcast(m);
        }
        else
        {
            OnPrivatePayload(m);
        }
    }

    private void Publish(EngineEvent engineEvent)
    {
        switch (engineEvent)
        {
            case MemberStatusEvent status:
                if (status.Status is MemberStatus.Down or MemberStatus.Left && status.Member.Name == _historyFrom)
                {
                    AskNextForHistory(); // it went away before it answered
                }

                _membersDirty = true;
                Log.MemberChanged(_logger, Self.Name, status.Member.ToString(), status.Status);
                _events.Writer.TryWrite(new MemberChanged(status.Member, status.Status));
                break;
            case JoinedEvent joined:
                _membersDirty = true;
                _initialMembers = joined.Members;
                Log.Joined(_logger, joined.Self.ToString(), joined.Members.Count);
                if (_rejoining)
                {
                    _rejoining = false;
                    _events.Writer.TryWrite(new Rejoined(joined.Self, joined.Members));
                    PushLate(joined.Members);
                }

                StartHistoryCatchUp(joined.Members);
                RefreshSnapshots(); // JoinAsync returns on another thread at once: its caller reads Members and State next
                _joined.TrySetResult(joined);
                break;
            case DeniedEvent denied:
                Log.Denied(_logger, Self.ToString(), denied.Reason, denied.Message);
                if (_rejoining)
                {
                    _rejoining = false;
                    _events.Writer.TryWrite(new RejoinFailed(denied.Reason, denied.Message));
                }

                _joined.TrySetException(new WhisperJoinException(denied.Reason, denied.Message));
                _finished = true;
                break;
            case EvictedEvent evicted:
                _membersDirty = true;
                Log.Evicted(_logger, Self.ToString(), evicted.Reason);
                _events.Writer.TryWrite(new Evicted(Self, evicted.Reason, _options.AutoRejoin));
                ReleaseHeldLive();
                _lateToPush = _history.Recent(_options.HistoryDepth); // what this side said and saw, for the other side
                _historyCandidates.Clear();
                _historyFrom = null;
                if (_options.AutoRejoin)
                {
                    _rejoinThrough = evicted.Contact;
                    _rejoinFallbacks = evicted.Fallbacks;
                }
                else
                {
                    _finished = true;
                }

                break;
            case LeftEvent:
                Log.Left(_logger, Self.ToString());
                _finished = true;
                break;
        }
    }

    /// <summary>
    /// The group removed this incarnation: start a new one (same name, new id) that joins through the member that told
    /// us, keeping the discovery server (if any) informed with leases. Sends asked for meanwhile wait for it.
    /// </summary>
    private void Reincarnate(IPEndPoint contact, IReadOnlyList<IPEndPoint> fallbacks)
    {
        var previous = _engine.Self;
        _engine = CreateEngine(new MemberId(RandomNonZero()), RandomNonZero());
        _history.NewIncarnation();
        _rejoining = true;
        Log.Rejoining(_logger, previous.ToString(), _engine.Self.ToString(), contact.ToString());
        _engine.Start(contact, Now(), _options.Server, fallbacks);
    }

    private WhisperEngine CreateEngine(MemberId id, ulong seed)
    {
        var engine = new WhisperEngine(_options.Engine, _options.Name, id, seed);
        if (_logger.IsEnabled(LogLevel.Trace))
        {
            engine.Tracer = (t, line) => Log.EngineTrace(_logger, t.TotalMilliseconds, line);
        }

        return engine;
    }

    private void Rearm()
    {
        if (_engine.NextTimeout is not { } due)
        {
            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        // Timers count whole milliseconds: round up, or a deadline 0.4 ms away would fire early again and again.
        var delay = due - Now();
        var millis = delay > TimeSpan.Zero ? Math.Ceiling(delay.TotalMilliseconds) : 0;
        _timer.Change(TimeSpan.FromMilliseconds(millis), Timeout.InfiniteTimeSpan);
    }

    /// <summary>How long a blocking receive waits before it checks whether the node stopped.</summary>
    private static readonly TimeSpan ReceivePoll = TimeSpan.FromMilliseconds(250);

    /// <summary>A received datagram as the driver's input, in a pooled buffer; false (counted) when it is oversized.</summary>
    private bool TryCopyDatagram(byte[] buffer, ReceivedDatagram received, out NodeInput input, out byte[] copy)
    {
        if (IsOversized(received))
        {
            input = default;
            copy = [];
            return false;
        }

        copy = _datagramBuffers.Rent();
        buffer.AsSpan(0, received.Length).CopyTo(copy);
        input = NodeInput.ForDatagram(copy, received.Length, received.From);
        return true;
    }

    private async Task ReceiveLoopAsync(CancellationToken cancellationToken)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(ReceiveBufferBytes);
        var consecutiveErrors = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            ReceivedDatagram received;
            try
            {
                received = await _transport.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
                consecutiveErrors = 0;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (Exception ex)
            {
                // Unexpected transport error: log, back off a little (bounded), keep receiving.
                consecutiveErrors++;
                Log.ReceiveFailed(_logger, ex);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 10 * consecutiveErrors)), _time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            if (!TryCopyDatagram(buffer, received, out var input, out var copy))
            {
                continue;
            }

            try
            {
                await _inbox.Writer.WriteAsync(input, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ChannelClosedException or OperationCanceledException)
            {
                _datagramBuffers.Return(copy);
                return;
            }
        }
    }

    /// <summary>Ends the node; <paramref name="receiveStop"/> stops the separate receive loop (null on the driver thread, which receives itself).</summary>
    private async Task ShutdownAsync(CancellationTokenSource? receiveStop)
    {
        _finished = true;
        ReleaseHeldLive(); // nothing delivered is ever swallowed
        foreach (var (command, id) in _accepted)
        {
            command.Succeed(id); // the engine took them before the loop ended
        }

        _accepted.Clear();
        _state = (int)_engine.State;
        _inbox.Writer.TryComplete();
        _timer.Dispose();
        if (receiveStop is not null)
        {
            await receiveStop.CancelAsync().ConfigureAwait(false);
        }

        try
        {
            await _transport.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.TransportDisposeFailed(_logger, ex);
        }

        if (receiveStop is not null)
        {
            await _receiver.WaitAsync(StopTimeout, _time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            receiveStop.Dispose();
        }

        var stopped = Stopped();
        while (_pending.TryDequeue(out var command))
        {
            Fail(command, stopped);
        }

        while (_inbox.Reader.TryRead(out var input))
        {
            if (input.Buffer is { } buffer)
            {
                _datagramBuffers.Return(buffer);
            }
            else if (input.Command is { } command)
            {
                Fail(command, stopped);
            }
        }

        _joined.TrySetException(_fault is { } fault
            ? new InvalidOperationException($"the node {Self} failed before it joined: {fault.Message}", fault)
            : new OperationCanceledException($"the node {Self} stopped before it joined"));
        _events.Writer.TryComplete(_fault);
        Log.Closed(_logger, Self.ToString(), State);
    }

    private void Fail(NodeCommand command, Exception error)
    {
        switch (command)
        {
            case SendCommand send:
                send.Fail(error);
                break;
            case StatsQuery query:
                query.Completion.TrySetException(error);
                break;
            case RawSendCommand raw:
                Interlocked.Increment(ref _rawDropped); // the node stopped before the engine took it
                ReturnRaw(raw);
                break;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "{Self} starting on {Local}, joining through the {ContactKind} at {Contact}")]
        public static partial void Starting(ILogger logger, string self, IPEndPoint local, string contactKind, IPEndPoint contact);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "{Self} joined a group of {Count}")]
        public static partial void Joined(ILogger logger, string self, int count);

        [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "{Self} was denied: {Reason}: {Message}")]
        public static partial void Denied(ILogger logger, string self, DenyReason reason, string message);

        [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "{Self} is leaving")]
        public static partial void Leaving(ILogger logger, string self);

        [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "{Self} left the group")]
        public static partial void Left(ILogger logger, string self);

        [LoggerMessage(EventId = 6, Level = LogLevel.Debug, Message = "{Self}: {Member} is {Status}")]
        public static partial void MemberChanged(ILogger logger, string self, string member, MemberStatus status);

        [LoggerMessage(EventId = 7, Level = LogLevel.Debug, Message = "{Kind} send to {To} waits for flow control")]
        public static partial void SendDeferred(ILogger logger, MessageKind kind, string? to);

        [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Graceful leave did not finish within {Seconds} s; stopping anyway")]
        public static partial void LeaveTimedOut(ILogger logger, double seconds);

        [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Graceful leave failed")]
        public static partial void LeaveFailed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "{Self} stopped while {State}")]
        public static partial void Stopped(ILogger logger, string self, EngineState state);

        [LoggerMessage(EventId = 11, Level = LogLevel.Critical, Message = "{Self}: the driver loop failed; the node stops")]
        public static partial void LoopFailed(ILogger logger, string self, Exception exception);

        [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Receive failed; retrying")]
        public static partial void ReceiveFailed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "Closing the transport failed")]
        public static partial void TransportDisposeFailed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 14, Level = LogLevel.Debug, Message = "{Self} closed ({State})")]
        public static partial void Closed(ILogger logger, string self, EngineState state);

        [LoggerMessage(EventId = 15, Level = LogLevel.Trace, Message = "engine {Millis:0.000} ms: {Line}")]
        public static partial void EngineTrace(ILogger logger, double millis, string line);

        [LoggerMessage(EventId = 16, Level = LogLevel.Warning, Message = "{Self} was removed from the group: {Reason}")]
        public static partial void Evicted(ILogger logger, string self, string reason);

        [LoggerMessage(EventId = 17, Level = LogLevel.Information, Message = "{Previous} rejoins as {Next} through {Contact}")]
        public static partial void Rejoining(ILogger logger, string previous, string next, string contact);

        [LoggerMessage(EventId = 19, Level = LogLevel.Information, Message = "{Self} got no history from {From} in time; showing live messages")]
        public static partial void HistoryTimedOut(ILogger logger, string self, string from);

        [LoggerMessage(EventId = 20, Level = LogLevel.Error, Message = "{Self}: the delivery handler threw on {Message}; the message counts as delivered")]
        public static partial void DeliveryHandlerFailed(ILogger logger, string self, string message, Exception exception);

        [LoggerMessage(EventId = 18, Level = LogLevel.Debug, Message = "{Self} hands {To} its last {Count} broadcasts in {Batches} batch(es)")]
        public static partial void ServingHistory(ILogger logger, string self, string to, int count, int batches);
    }
}
