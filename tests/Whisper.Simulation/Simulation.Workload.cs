using Whisper.Protocol.Engine;

namespace Whisper.Simulation;

/// <summary>The workload generator: Poisson broadcasts and bursts, private bursts, replies, and retries on WindowFull.</summary>
public sealed partial class Simulation
{
    // ================================================================== workload

    private void BeginWorkload()
    {
        _workloadActive = true;
        _workloadStart = _now;
        for (var i = 0; i < _workloadLinks.Length; i++)
        {
            Network[i / _processes.Length, i % _processes.Length] = _workloadLinks[i];
        }

        Network.FaultsEnabled = true;
        Note(-1, $"PHASE workload for {Scenario.WorkloadDuration.TotalSeconds:0.###}s; faults on");

        foreach (var node in _nodes)
        {
            if (Scenario.BroadcastsPerSecond > 0)
            {
                Schedule(_now + _workloadRandom.NextExponential(TimeSpan.FromSeconds(1 / Scenario.BroadcastsPerSecond)), () => SpontaneousBroadcast(node));
            }

            if (Scenario.PrivateBurstsPerSecond > 0 && _nodes.Length > 1)
            {
                Schedule(_now + _workloadRandom.NextExponential(TimeSpan.FromSeconds(1 / Scenario.PrivateBurstsPerSecond)), () => PrivateBurst(node));
            }
        }

        PlanFaults();
    }

    private void EndWorkload()
    {
        _workloadActive = false;
        Network.Heal();
        Network.FaultsEnabled = false;
        Note(-1, "PHASE workload over: partitions healed, loss and duplication off; settling");
    }

    private void SpontaneousBroadcast(SimNode node)
    {
        if (!_workloadActive || !History.IsLive(node.Index) || !node.Joined)
        {
            return;
        }

        var count = Scenario.MaxBroadcastBurst <= 1 ? 1 : _workloadRandom.NextInt(1, Scenario.MaxBroadcastBurst + 1);
        for (var i = 0; i < count; i++)
        {
            Enqueue(node, MessageKind.Broadcast, -1, DrawLength(), 0);
        }

        Schedule(_now + _workloadRandom.NextExponential(TimeSpan.FromSeconds(1 / Scenario.BroadcastsPerSecond)), () => SpontaneousBroadcast(node));
    }

    private void PrivateBurst(SimNode node)
    {
        if (!_workloadActive || !History.IsLive(node.Index) || !node.Joined)
        {
            return;
        }

        // Recipients: every other node (they all joined) in the standard script; after admission, the admitted nodes
        // still running (names are addressed by name, and a crashed member's name may belong to a newcomer by now).
        var recipients = 0;
        foreach (var other in _nodes)
        {
            recipients += other != node && IsRecipient(other.Index) ? 1 : 0;
        }

        if (recipients == 0)
        {
            return;
        }

        var pick = _workloadRandom.NextInt(recipients);
        var to = 0;
        for (; to < _nodes.Length; to++)
        {
            if (_nodes[to] != node && IsRecipient(to) && pick-- == 0)
            {
                break;
            }
        }

        var count = _workloadRandom.NextInt(1, Math.Max(2, Scenario.MaxBurst + 1));
        for (var i = 0; i < count; i++)
        {
            Enqueue(node, MessageKind.Private, to, DrawLength(), 0);
        }

        Schedule(_now + _workloadRandom.NextExponential(TimeSpan.FromSeconds(1 / Scenario.PrivateBurstsPerSecond)), () => PrivateBurst(node));
    }

    private bool IsRecipient(int node) => (Scenario.Admission is null && Scenario.RejoinSpares == 0) || (History.HasJoined(node) && History.IsLive(node));

    private void MaybeReply(SimNode node, MessageKey delivered)
    {
        if (!_workloadActive || delivered.Sender == node.Index || !History.IsLive(node.Index) || !node.Joined || !_workloadRandom.Chance(Scenario.ReplyProbability))
        {
            return;
        }

        var depth = _nodes[delivered.Sender].Depth.GetValueOrDefault(delivered);
        if (depth >= Scenario.MaxReplyDepth)
        {
            return;
        }

        var key = Enqueue(node, MessageKind.Broadcast, -1, DrawLength(), depth + 1);
        Note(node.Index, $"workload: {key} replies to {delivered}");
    }

    private int DrawLength()
    {
        var u = _workloadRandom.NextDouble();
        return u < Scenario.LargeMessageShare ? _workloadRandom.NextInt(4000, 10_001)
            : u < Scenario.LargeMessageShare + Scenario.MediumMessageShare ? _workloadRandom.NextInt(1000, 3001)
            : _workloadRandom.NextInt(TestPayload.MinLength, 301);
    }

    private MessageKey Enqueue(SimNode node, MessageKind kind, int recipient, int length, int depth)
    {
        var key = new MessageKey(node.Index, node.Counter++);
        var pending = new PendingSend(key, kind, recipient, TestPayload.Create(key, kind, recipient, length), depth);
        if (depth > 0)
        {
            node.Depth[key] = depth;
        }

        if (kind == MessageKind.Broadcast)
        {
            node.BroadcastQueue.Enqueue(pending);
        }
        else
        {
            if (!node.PrivateQueues.TryGetValue(recipient, out var q))
            {
                node.PrivateQueues[recipient] = q = new Queue<PendingSend>();
            }

            q.Enqueue(pending);
        }

        ScheduleFlush(node);
        return key;
    }

    private void ScheduleFlush(SimNode node)
    {
        if (!node.FlushScheduled && !node.Crashed)
        {
            node.FlushScheduled = true;
            Schedule(_now, () => Flush(node));
        }
    }

    /// <summary>Offers queued sends to the engine in order; a stream refused with WindowFull waits and is retried.</summary>
    private void Flush(SimNode node)
    {
        node.FlushScheduled = false;
        if (node.Crashed || node.Paused || _aborted)
        {
            return;
        }

        var blocked = FlushQueue(node, node.BroadcastQueue);
        foreach (var q in node.PrivateQueues.Values)
        {
            if (node.Crashed || _aborted)
            {
                return;
            }

            blocked |= FlushQueue(node, q);
        }

        if (blocked && !node.RetryScheduled && !node.Crashed)
        {
            node.RetryScheduled = true;
            Schedule(_now + Scenario.RetryInterval, () =>
            {
                node.RetryScheduled = false;
                Flush(node);
            });
        }
    }

    private bool FlushQueue(SimNode node, Queue<PendingSend> queue)
    {
        while (queue.TryPeek(out var p) && !node.Crashed && !_aborted)
        {
            if (p.Kind == MessageKind.Private && _nodes[p.Recipient].Crashed)
            {
                // Its name may belong to a new incarnation by now: a private message for the old one is not for it.
                queue.Dequeue();
                _abandoned++;
                continue;
            }

            SendResult result = default;
            var ok = Guard(node, () => result = p.Kind == MessageKind.Broadcast
                ? node.Engine.Broadcast(p.Payload, _now)
                : node.Engine.SendPrivate(_nodes[p.Recipient].MemberName, p.Payload, _now));
            if (!ok)
            {
                return false;
            }

            switch (result.Status)
            {
                case SendStatus.Accepted:
                    queue.Dequeue();
                    var sent = History.RecordSend(node.Index, _now, p.Key, p.Kind, p.Recipient, p.Payload.Length);
                    Note(node.Index, $"send {History.Describe(sent.Key, sent.Kind, sent.Recipient)} len={p.Payload.Length} id={result.Id}");
                    if (p.Kind == MessageKind.Broadcast && node.CrashOnBroadcastAfter is { } k)
                    {
                        node.CrashOnBroadcastAfter = null;
                        node.CrashAfterTransmits = k;
                    }

                    AfterInput(node);
                    break;
                case SendStatus.WindowFull:
                    _windowFull++;
                    AfterInput(node);
                    return true;
                case SendStatus.UnknownRecipient:
                    queue.Dequeue();
                    _abandoned++;
                    Note(node.Index, $"send of {p.Key} abandoned: {_nodes[p.Recipient].Name} is not a member any more");
                    AfterInput(node);
                    break;
                case SendStatus.NotJoined when node.Engine.State == EngineState.Joining:
                    AfterInput(node);
                    return true;
                default:
                    queue.Dequeue();
                    _violations.Add(new Violation(Invariants.SendRefused,
                        $"{node.Name} refused {History.Describe(p.Key, p.Kind, p.Recipient)} of {p.Payload.Length} bytes with {result.Status} in state {node.Engine.State} at {Checkers.Time(_now)}", _now));
                    AfterInput(node);
                    break;
            }
        }

        return false;
    }
}
