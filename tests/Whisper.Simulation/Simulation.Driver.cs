using System.Net;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;

namespace Whisper.Simulation;

/// <summary>The driver: the event loop and the call contract of every engine, and the settle condition.</summary>
public sealed partial class Simulation
{
    // ================================================================== the driver

    private void StartNode(SimNode node) => StartNode(node, JoinContact.Server);

    private void StartNode(SimNode node, JoinContact contact)
    {
        if (node.Crashed || node.Started)
        {
            return;
        }

        node.Started = true;
        var endpoint = contact.IsServer ? DiscoveryEndpoint : _nodes[contact.Member].Endpoint;
        var server = contact.IsServer || !contact.LeaseToServer ? null : DiscoveryEndpoint;
        var how = contact.IsServer ? "" : $" (member {_nodes[contact.Member].Name}{(server is null ? "" : ", leases to the server")})";
        var name = node.MemberName == node.Name ? "" : $" as '{node.MemberName}'";
        History.RecordStarted(node.Index, _now, node.MemberName, contact.IsServer ? "server" : _nodes[contact.Member].Name);
        Note(node.Index, $"start (id {node.Id}) contacting {endpoint}{how}{name}");
        Input(node, () =>
        {
            if (contact.Fallbacks is { } fallbacks)
            {
                node.Engine.Start(endpoint, _now, server, fallbacks);
            }
            else if (server is null)
            {
                node.Engine.Start(endpoint, _now);
            }
            else
            {
                node.Engine.Start(endpoint, _now, server);
            }
        });
    }

    private void ProcessUntil(TimeSpan until)
    {
        while (!_aborted && _queue.TryPeekTime(out var at) && at <= until)
        {
            _queue.TryPop(out at, out var ev);
            _now = at;
            if (++_events > Scenario.MaxEvents)
            {
                Abort(Invariants.Liveness, $"more than {Scenario.MaxEvents} events by {Checkers.Time(_now)} (livelock?)");
                return;
            }

            switch (ev.Kind)
            {
                case SimEventKind.Datagram:
                    Arrive(ev.Target, ev.Source, ev.Datagram!);
                    break;
                case SimEventKind.Timer:
                    FireTimer(ev.Target, ev.Generation, force: false);
                    break;
                default:
                    ev.Action!();
                    break;
            }
        }

        if (!_aborted && until > _now)
        {
            _now = until;
        }
    }

    private void Arrive(int to, int from, byte[] datagram)
    {
        var p = _processes[to];
        if (p.Crashed)
        {
            Trace.Datagram(TraceKind.Drop, _now, from, to, datagram, "crashed");
            return;
        }

        if (p.Paused)
        {
            if (p.PausedInbox.Count < MaxPausedInbox)
            {
                p.PausedInbox.Enqueue((from, datagram));
            }

            return;
        }

        Trace.Datagram(TraceKind.Arrive, _now, from, to, datagram);
        if (_recordViews && from < _nodes.Length && CanAnswerJoins(p) && CarriesFrame(datagram, FrameType.JoinRequest, FrameType.JoinRequest))
        {
            _nodes[from].AnswerableRequests++;
        }

        var source = _processes[from].Endpoint;
        if (p is SimNode node)
        {
            Input(node, () => node.Engine.OnDatagram(source, datagram, _now));
        }
        else
        {
            Input(p, () => _server.Engine.OnDatagram(source, datagram, _now));
        }
    }

    private void FireTimer(int index, long generation, bool force)
    {
        var p = _processes[index];
        if (p.Crashed || generation != p.TimerGeneration || (p.TimerAt is null && !force))
        {
            return; // stale
        }

        if (p.Paused)
        {
            return; // Resume fires it
        }

        if (p.LastTimerAt == _now)
        {
            if (++p.TimersAtSameInstant > MaxTimersAtOneInstant)
            {
                Abort(Invariants.Liveness, $"{p.Name}'s timer fired {MaxTimersAtOneInstant} times at {Checkers.Time(_now)}: NextTimeout does not advance", p.Index);
                return;
            }
        }
        else
        {
            p.LastTimerAt = _now;
            p.TimersAtSameInstant = 0;
        }

        p.TimerAt = null;
        Trace.Timer(_now, index);
        if (p is SimNode node)
        {
            Input(node, () => node.Engine.OnTimeout(_now));
        }
        else
        {
            Input(p, () => _server.Engine.OnTimeout(_now));
        }
    }

    /// <summary>One input, then the rest of the call contract.</summary>
    private void Input(SimProcess p, Action input)
    {
        if (p.Crashed || _aborted || !Guard(p, input))
        {
            return;
        }

        AfterInput(p);
    }

    private void AfterInput(SimProcess p)
    {
        DrainTransmits(p);
        if (p.Crashed || _aborted)
        {
            return;
        }

        DrainEvents(p);
        if (p.Crashed || _aborted)
        {
            return;
        }

        RearmTimer(p);
        if (_recordViews && p is SimNode node && !node.Crashed && !_aborted)
        {
            RecordViewIfChanged(node);
        }
    }

    private void DrainTransmits(SimProcess p)
    {
        var armed = p.CrashAfterTransmits is not null;
        while (!_aborted)
        {
            if (p.CrashAfterTransmits == 0)
            {
                CrashNow(p, "in the middle of draining its transmits");
                return;
            }

            var got = false;
            var length = 0;
            IPEndPoint? destination = null;
            if (!Guard(p, () => got = p is SimNode n
                    ? n.Engine.TryPollTransmit(_buffer, out length, out destination)
                    : _server.Engine.TryPollTransmit(_buffer, out length, out destination)))
            {
                return;
            }

            if (!got || destination is null)
            {
                break;
            }

            if (p.CrashAfterTransmits is { } k)
            {
                p.CrashAfterTransmits = k - 1;
            }

            Transmit(p.Index, destination, _buffer.AsSpan(0, length).ToArray());
        }

        if (armed && p.CrashAfterTransmits is not null && !_aborted)
        {
            CrashNow(p, "at the end of draining its transmits");
        }
    }

    private void Transmit(int from, IPEndPoint destination, byte[] datagram)
    {
        if (!_byEndpoint.TryGetValue(destination, out var to))
        {
            _unroutable++;
            Trace.Datagram(TraceKind.Drop, _now, from, -1, datagram, $"nobody at {destination}");
            return;
        }

        var blocked = !Network.CanTalk(from, to);
        var copies = Network.Route(from, to, _arrivals);
        if (_joinTraffic is not null && copies > 0 && Network.FaultsEnabled && CarriesFrame(datagram, FrameType.JoinRequest, FrameType.JoinForward))
        {
            copies = DisturbJoinTraffic(from, to, copies);
        }

        Trace.Datagram(TraceKind.Send, _now, from, to, datagram, copies switch
        {
            0 => blocked ? "blocked by partition" : "lost",
            2 => "duplicated",
            3 => "duplicated twice",
            _ => null,
        });
        for (var i = 0; i < copies; i++)
        {
            _queue.Push(_now + _arrivals[i], new SimEvent(SimEventKind.Datagram, to, from, 0, datagram, null));
        }
    }

    private void DrainEvents(SimProcess p)
    {
        if (p is SimServer)
        {
            while (_server.Engine.TryPollEvent(out var ev))
            {
                Note(p.Index, ev.Describe(_server.Engine.Options.MaxMembers));
            }

            return;
        }

        var node = (SimNode)p;
        while (!_aborted)
        {
            EngineEvent? ev = null;
            if (!Guard(node, () => node.Engine.TryPollEvent(out ev)) || ev is null)
            {
                return;
            }

            switch (ev)
            {
                case JoinedEvent joined:
                    node.Joined = true;
                    History.RecordJoined(node.Index, _now);
                    Note(node.Index, $"event joined with {string.Join(',', joined.Members.Select(m => m.Name))}");
                    break;
                case DeniedEvent denied:
                    Note(node.Index, $"event denied {denied.Reason}: {denied.Message}");
                    if (Scenario.Admission is not null)
                    {
                        History.RecordDenied(node.Index, _now, denied.Reason); // an outcome the admission checkers judge
                    }
                    else
                    {
                        _violations.Add(new Violation(Invariants.GroupForms, $"{node.Name} was denied at {Checkers.Time(_now)}: {denied.Reason} {denied.Message}", _now));
                    }

                    break;
                case MessageEvent message:
                    var addressee = message.Message.To is { } to ? NodeOf(to) : -1;
                    History.RecordDelivery(node.Index, _now, message.Message, NodeOf(message.Message.From), addressee);
                    var e = History.Events[^1];
                    Note(node.Index, $"deliver {History.Describe(e.Key, e.MessageKind, addressee)}{(e.Problem is null ? "" : " PROBLEM " + e.Problem)} id={message.Message.Id}");
                    if (e.Problem is null && e.MessageKind == MessageKind.Broadcast)
                    {
                        MaybeReply(node, e.Key);
                    }

                    break;
                case MemberStatusEvent status:
                    var subject = NodeOf(status.Member);
                    History.RecordStatus(node.Index, _now, subject, status.Status);
                    Note(node.Index, $"event {status.Member.Name} is {status.Status}");
                    break;
                case LeftEvent:
                    Note(node.Index, "event left");
                    break;
                case EvictedEvent evicted:
                    Note(node.Index, $"event evicted ({evicted.Reason}); contact {evicted.Contact}");
                    _evicted.Add(node.Index);
                    if (!Scenario.EvictionsExpected)
                    {
                        _violations.Add(new Violation(Invariants.FalseDown, $"{node.Name} was evicted at {Checkers.Time(_now)}: {evicted.Reason}", _now, node.Index));
                    }

                    CrashNow(node, "evicted: the group declared this incarnation down"); // its engine is finished; as a crash to the checkers
                    RejoinAsSpare(node, evicted.Contact, evicted.Fallbacks);
                    break;
                default:
                    Note(node.Index, $"event {ev}");
                    break;
            }
        }
    }

    /// <summary>The evicted member's new incarnation: the next spare starts under its name through the member that told it.</summary>
    private void RejoinAsSpare(SimNode evicted, IPEndPoint contact, IReadOnlyList<IPEndPoint> fallbacks)
    {
        if (_primaries + _nextSpare >= _nodes.Length || !_byEndpoint.TryGetValue(contact, out var through) || through >= _nodes.Length)
        {
            return;
        }

        var spare = _primaries + _nextSpare++;
        Note(spare, $"stands in for {evicted.Name}'s new incarnation, joining through {_nodes[through].Name}");
        StartNode(spare, _now + TimeSpan.FromMilliseconds(1), JoinContact.Through(through, leaseToServer: true) with { Fallbacks = fallbacks }, evicted.MemberName);
    }

    /// <summary>
    /// Arms the process's timer for its engine's next deadline. A node's engine may allow its lenient timers to run late
    /// (<see cref="ISimEngine.NextTimeoutLatest"/>, as a driver whose waits end on scheduler ticks runs them): half of the
    /// arms then fire at a seeded moment up to that bound instead of on time, so every run checks both drivers.
    /// </summary>
    private void RearmTimer(SimProcess p)
    {
        TimeSpan? next = null;
        TimeSpan? latest = null;
        if (!Guard(p, () => (next, latest) = p is SimNode n ? (n.Engine.NextTimeout, n.Engine.NextTimeoutLatest) : (_server.Engine.NextTimeout, null)))
        {
            return;
        }

        if (next == p.TimerAt)
        {
            return;
        }

        p.TimerGeneration++;
        p.TimerAt = next;
        if (next is { } t)
        {
            if (latest is { } l && l > t && _timerRandom.Chance(0.5))
            {
                t += (l - t) * _timerRandom.NextDouble(); // never past the latest: loss repair stays on time
            }

            _queue.Push(t > _now ? t : _now, new SimEvent(SimEventKind.Timer, p.Index, p.Index, p.TimerGeneration, null, null));
        }
    }

    private void CrashNow(SimProcess p, string how)
    {
        if (p.Crashed)
        {
            return;
        }

        p.Crashed = true;
        p.CrashAfterTransmits = null;
        p.TimerGeneration++;
        p.PausedInbox.Clear();
        if (p is SimNode node)
        {
            History.RecordCrash(node.Index, _now);
        }

        Note(p.Index, $"CRASH {how}");
        if (p is SimServer { RestartAfterCrash: { } delay } server)
        {
            server.RestartAfterCrash = null;
            Schedule(_now + delay, RestartServer);
        }
    }

    /// <summary>Runs an engine call; an exception is a violation that stops the run.</summary>
    private bool Guard(SimProcess p, Action call)
    {
        try
        {
            call();
            return true;
        }
        catch (Exception ex)
        {
            Abort(Invariants.EngineError, $"{p.Name} threw at {Checkers.Time(_now)}: {ex}", p.Index);
            return false;
        }
    }

    private void Abort(string invariant, string detail, int process = -1)
    {
        if (_aborted)
        {
            return;
        }

        _aborted = true;
        _violations.Add(new Violation(invariant, detail, _now, process));
        Note(-1, $"ABORT [{invariant}] {detail}");
    }

    private void Schedule(TimeSpan at, Action action) =>
        _queue.Push(at < _now ? _now : at, new SimEvent(SimEventKind.Action, -1, -1, 0, null, action));

    private void Note(int process, string text) => Trace.Note(_now, process, text);

    private string ProcessName(int index) => index >= 0 && index < _processes.Length ? _processes[index].Name : "?";

    // ================================================================== settling

    private bool Settled()
    {
        foreach (var node in _nodes)
        {
            if (History.IsLive(node.Index) && node.Pending > 0)
            {
                return false;
            }
        }

        foreach (var node in _nodes)
        {
            if (History.IsLive(node.Index) && Checkers.ViewProblems(History, node.Index, ViewOf(node)).Any())
            {
                return false;
            }
        }

        return Checkers.Outstanding(History).Count == 0;
    }

    private List<(int Subject, MemberStatus Status)> ViewOf(SimNode node) =>
        [.. node.Engine.Members.Where(m => !m.IsSelf).Select(m => (NodeOf(m.Member), m.Status))];

    private string DescribeViews()
    {
        var parts = new List<string>();
        foreach (var node in _nodes)
        {
            var up = node.Engine.Members.Where(m => !m.IsSelf && m.Status == MemberStatus.Up).Select(m => m.Member.Name).Order(StringComparer.Ordinal);
            parts.Add($"{node.Name}({node.Engine.State}{(node.Crashed ? ",crashed" : "")}) sees [{string.Join(',', up)}]");
        }

        return string.Join("; ", parts);
    }

    private string DescribeUnsettled()
    {
        var parts = new List<string>();
        var pending = _nodes.Where(n => History.IsLive(n.Index) && n.Pending > 0).Select(n => $"{n.Name}:{n.Pending}").ToArray();
        if (pending.Length > 0)
        {
            parts.Add($"sends still refused (WindowFull) at {string.Join(',', pending)}");
        }

        var owed = Checkers.Outstanding(History);
        if (owed.Count > 0)
        {
            parts.Add($"{owed.Count} deliveries owed, e.g. " + string.Join("; ", owed.Take(8).Select(o =>
                $"{History.Names[o.Node]} lacks {History.Describe(o.Message.Key, o.Message.Kind, o.Message.Recipient)} sent {Checkers.Time(o.Message.At)} ({o.Invariant})")));
        }

        var views = _nodes.Where(n => History.IsLive(n.Index)).SelectMany(n => Checkers.ViewProblems(History, n.Index, ViewOf(n))).Take(8).ToArray();
        if (views.Length > 0)
        {
            parts.Add("views: " + string.Join("; ", views));
        }

        return parts.Count == 0 ? "unknown" : string.Join(" | ", parts);
    }

    private enum SimEventKind
    {
        Datagram,
        Timer,
        Action,
    }

    private readonly record struct SimEvent(SimEventKind Kind, int Target, int Source, long Generation, byte[]? Datagram, Action? Action);
}
