using Whisper.Protocol.Engine;

namespace Whisper.Simulation;

/// <summary>The fault plan drawn from the seed: partitions, crashes, the discovery server crash, per-link rates.</summary>
public sealed partial class Simulation
{
    // ================================================================== faults

    private void PlanFaults()
    {
        var r = _faultRandom;
        var start = _now;
        var w = Scenario.WorkloadDuration;

        if (Scenario.Partitions > 0)
        {
            var slot = w / Scenario.Partitions;
            for (var i = 0; i < Scenario.Partitions; i++)
            {
                var duration = r.NextTime(Scenario.MinPartition, Scenario.MaxPartition);
                if (duration > slot * 0.9)
                {
                    duration = slot * 0.9;
                }

                var begin = start + (slot * i) + r.NextTime(TimeSpan.Zero, slot - duration);
                var isolate = r.Chance(0.5);
                var victim = r.NextInt(_processes.Length);
                var side = Enumerable.Range(0, _processes.Length).Where(_ => r.Chance(0.5)).ToArray();
                if (side.Length == 0 || side.Length == _processes.Length)
                {
                    side = [r.NextInt(_processes.Length)];
                }

                Schedule(begin, () =>
                {
                    if (isolate)
                    {
                        Isolate(victim);
                    }
                    else
                    {
                        Partition(side);
                    }
                });
                Schedule(begin + duration, Heal);
            }
        }

        var victims = Enumerable.Range(0, _primaries).ToList(); // spares only stand in for evicted members
        r.Shuffle(victims);
        for (var i = 0; i < Math.Min(Scenario.Crashes, _primaries - 1); i++)
        {
            var node = _nodes[victims[i]];
            var at = start + r.NextTime(w * 0.1, w * 0.9);
            var style = Scenario.CrashStyle == CrashStyle.Mixed ? (CrashStyle)r.NextInt(1, 4) : Scenario.CrashStyle;
            // Mid-broadcast: k datagrams leave of the (at least) one per other member, so it reaches only some of them.
            var k = style == CrashStyle.MidBroadcast ? r.NextInt(0, Math.Max(1, _nodes.Length - 1)) : r.NextInt(0, 6);
            Schedule(at, () =>
            {
                switch (style)
                {
                    case CrashStyle.MidDrain:
                        ArmCrashMidDrain(node.Index, k);
                        break;
                    case CrashStyle.MidBroadcast:
                        ArmCrashOnBroadcast(node.Index, k);
                        Enqueue(node, MessageKind.Broadcast, -1, DrawLength(), 0);
                        break;
                    default:
                        Crash(node.Index);
                        break;
                }
            });
        }

        for (var i = 0; i < Scenario.Pauses; i++)
        {
            var node = r.NextInt(_primaries);
            var duration = r.NextTime(Scenario.MinPause, Scenario.MaxPause);
            var begin = start + r.NextTime(w * 0.05, Max(w * 0.05, w - duration - TimeSpan.FromMilliseconds(100)));
            Schedule(begin, () => Pause(node));
            Schedule(begin + duration, () => Resume(node));
        }

        if (Scenario.CrashDiscovery)
        {
            Schedule(start + r.NextTime(w * 0.1, w * 0.9), () => Crash(_server.Index));
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private LinkFaults[] DrawLinks(SimRandom r)
    {
        var count = _processes.Length;
        var links = new LinkFaults[count * count];
        var s = Scenario.LinkSpread;
        for (var from = 0; from < count; from++)
        {
            for (var to = 0; to < count; to++)
            {
                links[(from * count) + to] = new LinkFaults(
                    Math.Clamp(Scenario.Loss * r.NextDouble(1 - s, 1 + s), 0, 0.95),
                    Math.Clamp(Scenario.Duplication * r.NextDouble(1 - s, 1 + s), 0, 0.95),
                    Scenario.DelayBase * r.NextDouble(1 - s, 1 + s),
                    Scenario.DelayJitter * r.NextDouble(1 - s, 1 + s),
                    Math.Clamp(Scenario.Straggle * r.NextDouble(1 - s, 1 + s), 0, 0.5),
                    Scenario.StraggleDelay);
            }
        }

        return links;
    }
}
