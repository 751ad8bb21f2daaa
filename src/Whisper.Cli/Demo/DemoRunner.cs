using System.Diagnostics;
using System.Globalization;
using System.Net;
using Whisper.Discovery;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Cli.Demo;

/// <summary>
/// Runs one demo in this process on 127.0.0.1: a <see cref="DiscoveryServer"/> and <see cref="DemoSettings.Nodes"/>
/// <see cref="WhisperNode"/>s, each on its own UDP socket behind a <see cref="FaultInjectingTransport"/> (loss,
/// duplication, delay/reordering drawn from the seed). Script: the group forms; a few conversation threads run at
/// once, each line answering the previous one and said only after its speaker delivered it (plus private asides);
/// at 30% of the conversation a member crashes (its plug is pulled: no leave) and restarts under the same name;
/// once it is back and no earlier than half-way the server stops, and the group chats on. Then the run waits for
/// every required delivery (bounded), reads the counters, leaves, and hands the delivery logs to
/// <see cref="DemoVerifier"/>. Every wait is bounded; a bound that expires becomes a failed check, never a hang.
/// </summary>
internal sealed class DemoRunner
{
    private static readonly TimeSpan FormTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RejoinTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ReplyWait = TimeSpan.FromSeconds(8);
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(10);

    private readonly DemoSettings _settings;
    private readonly IDemoObserver _observer;
    private readonly Stopwatch _clock = new();
    private readonly Lock _gate = new();
    private readonly List<DemoPeer> _all = [];
    private readonly DemoPeer?[] _live;
    private readonly List<DemoSend> _sends = [];
    private readonly List<DemoEvent> _events = [];
    private readonly List<DemoLine> _lines = [];
    private readonly List<string> _problems = [];
    private readonly List<Task> _stopping = [];
    private DiscoveryServer? _server;
    private TimeSpan? _serverStoppedAt;
    private TimeSpan _conversationStart;
    private TimeSpan _conversationEnd;
    private int _evictions;
    private bool _restarted;

    public DemoRunner(DemoSettings settings, IDemoObserver observer)
    {
        _settings = settings ?? throw new ArgumentNullException(nameof(settings));
        _observer = observer ?? throw new ArgumentNullException(nameof(observer));
        _live = new DemoPeer?[settings.Nodes];
    }

    public async Task<DemoResult> RunAsync(CancellationToken ct)
    {
        _clock.Start();
        var formedIn = TimeSpan.Zero;
        var settledIn = TimeSpan.Zero;
        using var progressStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var progress = Task.Run(() => ReportProgressAsync(progressStop.Token), CancellationToken.None);
        try
        {
            formedIn = await FormAsync(ct).ConfigureAwait(false);
            await ConverseAsync(ct).ConfigureAwait(false);
            settledIn = await SettleAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DemoAbortedException or InvalidOperationException)
        {
            Problem(ex.Message);
        }
        finally
        {
            await progressStop.CancelAsync().ConfigureAwait(false);
            await progress.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await StopAsync().ConfigureAwait(false);
        }

        _observer.OnPhase(DemoPhase.Verifying);
        var log = BuildLog();
        var checks = new List<DemoCheck> { FormedCheck(formedIn) };
        checks.AddRange(DemoVerifier.Verify(log));
        checks.AddRange([RestartCheck(), EvictionCheck(), RunCheck()]);
        return new DemoResult(_settings, checks, Stats(log, formedIn, settledIn), Snapshot(_events), Snapshot(_lines), log);
    }

    private TimeSpan Now => _clock.Elapsed;

    private TimeSpan ConversationAt(double fraction) => _conversationStart + (_settings.Duration * fraction);

    private async Task<TimeSpan> FormAsync(CancellationToken ct)
    {
        _observer.OnPhase(DemoPhase.Forming);
        _server = await DiscoveryServer.StartAsync(
            new DiscoveryServerOptions { Bind = new IPEndPoint(IPAddress.Loopback, 0), Engine = new DiscoveryOptions { MaxMembers = DemoSettings.MaxNodes } },
            null, TimeProvider.System, ct).ConfigureAwait(false);
        Event("server", $"discovery server listening on {_server.LocalEndpoint}");
        // Everyone joins at once, as people do when a meeting starts; the server admits them one datagram at a time.
        var joins = Enumerable.Range(0, _settings.Nodes).Select(slot => JoinAsync(slot, incarnation: 0, ct)).ToArray();
        try
        {
            await Task.WhenAll(joins).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                foreach (var join in joins.Where(j => j.IsCompletedSuccessfully))
                {
                    _all.Add(join.Result);
                    _live[join.Result.Slot] = join.Result;
                }
            }
        }

        var peers = LivePeers();
        await WaitUntilAsync(() => peers.All(p => SeesUp(p, peers)), FormTimeout, ct,
            $"the group did not form within {FormTimeout.TotalSeconds:0} s (not every member saw every other up)").ConfigureAwait(false);
        _conversationStart = Now;
        _conversationEnd = _conversationStart + _settings.Duration;
        foreach (var p in peers)
        {
            p.MarkLive(_conversationStart);
        }

        Event("formed", string.Create(CultureInfo.InvariantCulture, $"{peers.Count} members joined and see each other up ({_conversationStart.TotalSeconds:0.0} s)"));
        return _conversationStart;
    }

    private async Task<DemoPeer> JoinAsync(int slot, int incarnation, CancellationToken ct)
    {
        var seed = unchecked((_settings.Seed * 131) + (slot * 17) + (incarnation * 7919));
        var faults = new FaultOptions
        {
            DropOutgoing = _settings.Loss,
            DuplicateOutgoing = _settings.Duplication,
            DelayOutgoing = _settings.Reordering,
            MaxDelay = _settings.MaxDelay,
            Seed = seed,
        };
        var faulty = new FaultInjectingTransport(UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0)), faults);
        var plug = new PlugTransport(faulty);
        var options = new WhisperNodeOptions
        {
            Name = DemoScript.Names[slot],
            Server = _server!.LocalEndpoint,
            Seed = unchecked((ulong)(uint)seed + 1),
            JoinTimeout = RejoinTimeout,
            LeaveTimeout = TimeSpan.FromSeconds(4),
        };
        try
        {
            var node = await WhisperNode.JoinAsync(options, plug, null, null, ct).ConfigureAwait(false);
            return new DemoPeer(slot, node, plug, faulty, _clock, OnNodeEvent);
        }
        catch (WhisperJoinException ex)
        {
            throw new DemoAbortedException($"{options.Name} could not join: {ex.Message}");
        }
    }

    private async Task ConverseAsync(CancellationToken ct)
    {
        _observer.OnPhase(DemoPhase.Conversation);
        var threads = Math.Clamp((_settings.Nodes + 2) / 3, 1, 3);
        var talks = Enumerable.Range(0, threads).Select(k => Task.Run(() => ThreadAsync(k, threads, ct), CancellationToken.None)).ToArray();
        var script = new Random(_settings.Seed);

        await DelayUntilAsync(ConversationAt(0.3), ct).ConfigureAwait(false);
        var victim = LivePeers().Where(p => p.Slot != 0).OrderBy(p => p.Slot).ElementAt(script.Next(_settings.Nodes - 1));
        await CrashAsync(victim).ConfigureAwait(false);
        await RestartAsync(victim.Slot, ct).ConfigureAwait(false);

        await DelayUntilAsync(ConversationAt(0.5), ct).ConfigureAwait(false);
        await _server!.DisposeAsync().ConfigureAwait(false);
        lock (_gate)
        {
            _serverStoppedAt = Now;
        }

        Event("stopped", "discovery server stopped; the members carry on peer to peer");

        var bound = _conversationEnd - Now + SendTimeout + ReplyWait;
        try
        {
            await Task.WhenAll(talks).WaitAsync(bound > TimeSpan.Zero ? bound : SendTimeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Problem("the conversation did not end on time");
        }
    }

    private async Task ThreadAsync(int k, int threads, CancellationToken ct)
    {
        var random = new Random(unchecked((_settings.Seed * 7919) + k));
        var topic = k;
        try
        {
            while (Now < _conversationEnd)
            {
                await TalkAsync(DemoScript.Threads[topic % DemoScript.Threads.Length], random, ct).ConfigureAwait(false);
                topic += threads;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Ctrl-C
        }
    }

    /// <summary>One thread of conversation: each line answers the previous one, said once its speaker delivered that one.</summary>
    private async Task TalkAsync(string[] lines, Random random, CancellationToken ct)
    {
        DemoSend? head = null;
        DemoPeer? author = null;
        foreach (var line in lines)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(random.Next(150, 500)), ct).ConfigureAwait(false);
            if (Now >= _conversationEnd)
            {
                return;
            }

            var candidates = LivePeers().Where(p => p != author).ToList();
            if (candidates.Count == 0)
            {
                return;
            }

            var speaker = candidates[random.Next(candidates.Count)];
            if (head is not null && !await WaitForDeliveryAsync(speaker, head, ct).ConfigureAwait(false))
            {
                return;
            }

            var said = await SayAsync(speaker, null, line, head, ct).ConfigureAwait(false);
            if (said is null)
            {
                return;
            }

            if (head is not null && author is { Crashed: false } && random.NextDouble() < 0.3)
            {
                await SayAsync(speaker, author.Name, DemoScript.Asides[random.Next(DemoScript.Asides.Length)], head, ct).ConfigureAwait(false);
            }

            head = said;
            author = speaker;
        }
    }

    private async Task<bool> WaitForDeliveryAsync(DemoPeer speaker, DemoSend head, CancellationToken ct)
    {
        var deadline = Now + ReplyWait;
        while (!speaker.HasDelivered(head.Id))
        {
            if (speaker.Crashed)
            {
                return false;
            }

            if (Now > deadline)
            {
                Event("slow", string.Create(CultureInfo.InvariantCulture, $"{speaker.Name} had not delivered {head} after {ReplyWait.TotalSeconds:0} s; the thread moves on"));
                return false;
            }

            await Task.Delay(Poll, ct).ConfigureAwait(false);
        }

        return true;
    }

    private async Task<DemoSend?> SayAsync(DemoPeer speaker, string? to, string text, DemoSend? answers, CancellationToken ct)
    {
        if (!await speaker.SendGate.WaitAsync(SendTimeout, ct).ConfigureAwait(false))
        {
            Problem($"{speaker.Name} could not send for {SendTimeout.TotalSeconds:0} s");
            return null;
        }

        try
        {
            if (speaker.Crashed)
            {
                return null;
            }

            var at = Now;
            MessageId id;
            try
            {
                var sending = to is null ? speaker.Node.BroadcastAsync(text, ct) : speaker.Node.SendPrivateAsync(to, text, ct);
                id = await sending.WaitAsync(SendTimeout, ct).ConfigureAwait(false);
            }
            catch (UnknownMemberException)
            {
                return null; // the addressee is not (yet) known to the speaker, e.g. just restarted
            }
            catch (TimeoutException)
            {
                Problem($"{speaker.Name}'s send was not accepted within {SendTimeout.TotalSeconds:0} s");
                return null;
            }
            catch (InvalidOperationException ex)
            {
                Problem($"{speaker.Name} could not send: {ex.Message}");
                return null;
            }

            DemoSend send;
            var line = new DemoLine(at, speaker.Slot, speaker.Name, to, text, answers?.From);
            lock (_gate)
            {
                send = new DemoSend(_sends.Count, id, speaker.Name, to, at, text, answers?.Id);
                _sends.Add(send);
                _lines.Add(line);
            }

            _observer.OnLine(line);
            return send;
        }
        finally
        {
            speaker.SendGate.Release();
        }
    }

    /// <summary>Pulls the victim's plug (no leave reaches anyone), after its send in progress, and disposes it in the background.</summary>
    private async Task CrashAsync(DemoPeer victim)
    {
        if (!await victim.SendGate.WaitAsync(SendTimeout).ConfigureAwait(false))
        {
            throw new DemoAbortedException($"could not crash {victim.Name}: its send did not finish within {SendTimeout.TotalSeconds:0} s");
        }

        try
        {
            victim.FinalStats = await TryStatsAsync(victim).ConfigureAwait(false);
            victim.Plug.Pull();
            victim.Crashed = true;
            victim.MarkDead(Now);
            lock (_gate)
            {
                _live[victim.Slot] = null;
            }
        }
        finally
        {
            victim.SendGate.Release();
        }

        Event("crash", $"{victim.Name} (incarnation {Short(victim.Id)}) crashed: its process is gone, no goodbye");
        lock (_gate)
        {
            _stopping.Add(Task.Run(async () => await victim.Node.DisposeAsync().ConfigureAwait(false), CancellationToken.None));
        }
    }

    private async Task RestartAsync(int slot, CancellationToken ct)
    {
        var started = Now;
        DemoPeer peer;
        try
        {
            peer = await JoinAsync(slot, incarnation: 1, ct).ConfigureAwait(false);
        }
        catch (DemoAbortedException ex)
        {
            Problem($"after its crash, {ex.Message}");
            return;
        }

        lock (_gate)
        {
            _all.Add(peer);
        }

        Event("restart", string.Create(CultureInfo.InvariantCulture, $"{peer.Name} restarted and was admitted as {Short(peer.Id)} after {(Now - started).TotalSeconds:0.0} s"));
        var everyone = LivePeers().Append(peer).ToList();
        try
        {
            await WaitUntilAsync(() => everyone.All(p => p.Crashed || SeesUp(p, [peer])), RejoinTimeout, ct,
                $"not every member saw the restarted {peer.Name} up within {RejoinTimeout.TotalSeconds:0} s").ConfigureAwait(false);
        }
        catch (DemoAbortedException ex)
        {
            Problem(ex.Message);
            return;
        }

        peer.MarkLive(Now);
        lock (_gate)
        {
            _live[slot] = peer;
        }

        _restarted = true;
        Event("rejoined", string.Create(CultureInfo.InvariantCulture, $"every member sees {peer.Name} {Short(peer.Id)} up; it speaks again ({(Now - started).TotalSeconds:0.0} s after the restart)"));
    }

    private async Task<TimeSpan> SettleAsync(CancellationToken ct)
    {
        _observer.OnPhase(DemoPhase.Settling);
        var started = Now;
        try
        {
            await WaitUntilAsync(() => DemoVerifier.Outstanding(BuildLog()) == 0, SettleTimeout, ct, string.Empty, Poll * 10).ConfigureAwait(false);
            Event("settled", string.Create(CultureInfo.InvariantCulture, $"every required delivery done {(Now - started).TotalMilliseconds:0} ms after the conversation ended"));
        }
        catch (DemoAbortedException)
        {
            Event("settled", $"{DemoVerifier.Outstanding(BuildLog())} deliveries still missing after {SettleTimeout.TotalSeconds:0} s");
        }

        foreach (var p in LivePeers())
        {
            p.FinalStats = await TryStatsAsync(p).ConfigureAwait(false);
        }

        return Now - started;
    }

    private async Task StopAsync()
    {
        _observer.OnPhase(DemoPhase.Leaving);
        List<Task> stopping;
        lock (_gate)
        {
            stopping = [.. _stopping, .. _all.Where(p => !p.Crashed).Select(p => p.Node.DisposeAsync().AsTask())];
        }

        if (_server is { } server && _serverStoppedAt is null)
        {
            stopping.Add(server.DisposeAsync().AsTask());
        }

        try
        {
            await Task.WhenAll(stopping).WaitAsync(StopTimeout).ConfigureAwait(false);
            await Task.WhenAll(_all.Select(p => p.Reader)).WaitAsync(StopTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Problem($"not every node stopped within {StopTimeout.TotalSeconds:0} s");
        }
    }

    private static async Task<WhisperNodeStats?> TryStatsAsync(DemoPeer peer)
    {
        try
        {
            return await peer.Node.GetStatsAsync().WaitAsync(SendTimeout).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            return null;
        }
    }

    private void OnNodeEvent(DemoPeer peer, WhisperEvent e)
    {
        switch (e)
        {
            case Evicted ev:
                Interlocked.Increment(ref _evictions);
                Event("evicted", $"{peer.Name} was declared down by the group while alive ({ev.Reason}); rejoining");
                break;
            case Rejoined r:
                Event("rejoined", $"{peer.Name} rejoined as {Short(r.Self.Id)} after an eviction");
                break;
            case MemberChanged c when peer.Slot == 0 && c.Status is MemberStatus.Suspect or MemberStatus.Down:
                Event("detected", $"{peer.Name} sees {c.Name} {Short(c.Member.Id)} {c.Status.ToString().ToLowerInvariant()}");
                break;
        }
    }

    private DemoLog BuildLog()
    {
        List<DemoPeer> all;
        List<DemoSend> sends;
        TimeSpan? serverStoppedAt;
        lock (_gate)
        {
            all = [.. _all];
            sends = [.. _sends];
            serverStoppedAt = _serverStoppedAt;
        }

        return new DemoLog(
            [.. all.SelectMany(p => p.Incarnations())],
            sends,
            [.. all.SelectMany(p => p.Deliveries())],
            serverStoppedAt);
    }

    private DemoCheck RunCheck()
    {
        var problems = Snapshot(_problems);
        return new DemoCheck("Every step completed in time", problems.Count == 0,
            problems.Count == 0 ? "no join failed, no wait timed out" : string.Join("; ", problems));
    }

    private DemoCheck FormedCheck(TimeSpan formedIn) => formedIn > TimeSpan.Zero
        ? new("Group formed", true, string.Create(CultureInfo.InvariantCulture, $"{_settings.Nodes} members see each other up after {formedIn.TotalSeconds:0.0} s"))
        : new("Group formed", false, "the group never formed, so nothing below was exercised");

    private DemoCheck RestartCheck() => new("Crashed member restarted and rejoined", _restarted,
        _restarted ? "admitted again under its name as a new incarnation"
            : _all.Any(p => p.Crashed) ? "it did not rejoin (see the events)" : "the run never got to the crash");

    private DemoCheck EvictionCheck() => new("No live member falsely declared down", _evictions == 0,
        _evictions == 0 ? "no eviction" : $"{_evictions} eviction(s) of live members");

    private DemoStats Stats(DemoLog log, TimeSpan formedIn, TimeSpan settledIn)
    {
        var latencies = DemoVerifier.Latencies(log);
        var stats = _all.Select(p => p.FinalStats).OfType<WhisperNodeStats>().ToList();
        return new DemoStats
        {
            Broadcasts = log.Sends.Count(s => s.IsBroadcast),
            Privates = log.Sends.Count(s => !s.IsBroadcast),
            Deliveries = log.Deliveries.Count,
            DatagramsSent = stats.Sum(s => s.DatagramsSent),
            ChunksRetransmitted = stats.Sum(s => s.ChunksRetransmitted),
            NacksSent = stats.Sum(s => s.NacksSent),
            DroppedOnPurpose = _all.Sum(p => p.Faults.DroppedOutgoing),
            DuplicatedOnPurpose = _all.Sum(p => p.Faults.Duplicated),
            DelayedOnPurpose = _all.Sum(p => p.Faults.Delayed),
            LatencyP50Ms = DemoVerifier.Percentile(latencies, 0.50),
            LatencyP99Ms = DemoVerifier.Percentile(latencies, 0.99),
            LatencyMaxMs = latencies.Length == 0 ? double.NaN : latencies[^1],
            FormedIn = formedIn,
            SettledIn = settledIn,
            Runtime = Now,
        };
    }

    private async Task ReportProgressAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
                var fraction = _conversationEnd == TimeSpan.Zero ? 0 : Math.Clamp((Now - _conversationStart) / _settings.Duration, 0, 1);
                var log = BuildLog();
                _observer.OnProgress(fraction, log.Sends.Count, log.Deliveries.Count, DemoVerifier.Outstanding(log));
            }
        }
        catch (OperationCanceledException)
        {
            // done
        }
    }

    private async Task DelayUntilAsync(TimeSpan at, CancellationToken ct)
    {
        var wait = at - Now;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, ct).ConfigureAwait(false);
        }
    }

    private async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, CancellationToken ct, string failure, TimeSpan? poll = null)
    {
        var deadline = Now + timeout;
        while (!condition())
        {
            if (Now > deadline)
            {
                throw new DemoAbortedException(failure);
            }

            await Task.Delay(poll ?? Poll, ct).ConfigureAwait(false);
        }
    }

    private static bool SeesUp(DemoPeer observer, IReadOnlyCollection<DemoPeer> peers) =>
        peers.All(p => observer.Node.Members.Any(m => m.Member.Id == p.Id && m.Status == MemberStatus.Up));

    private List<DemoPeer> LivePeers()
    {
        lock (_gate)
        {
            return [.. _live.OfType<DemoPeer>()];
        }
    }

    private void Event(string kind, string text)
    {
        var e = new DemoEvent(Now, kind, text);
        lock (_gate)
        {
            _events.Add(e);
        }

        _observer.OnEvent(e);
    }

    private void Problem(string text)
    {
        lock (_gate)
        {
            _problems.Add(text);
        }

        Event("problem", text);
    }

    private List<T> Snapshot<T>(List<T> list)
    {
        lock (_gate)
        {
            return [.. list];
        }
    }

    private static string Short(MemberId id) => "#" + id.ToString()[..4];

    /// <summary>A bounded wait expired: the run stops early and reports it as a failed check.</summary>
    private sealed class DemoAbortedException(string message) : Exception(message);
}
