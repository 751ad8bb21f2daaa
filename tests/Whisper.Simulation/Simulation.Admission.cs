using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Whisper.Discovery;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;

namespace Whisper.Simulation;

/// <summary>Whom a node asks to join: the discovery server, or a member (optionally still leasing to the server).</summary>
public sealed record JoinContact
{
    private JoinContact(int member, bool leaseToServer)
    {
        Member = member;
        LeaseToServer = leaseToServer;
    }

    /// <summary>Join through the discovery server (<see cref="Simulation.DiscoveryEndpoint"/>).</summary>
    public static JoinContact Server { get; } = new(-1, false);

    /// <summary>The member's node index; -1 for the server.</summary>
    public int Member { get; }

    /// <summary>Joining through a member, the node still names the server for its leases (<c>--peer</c> with <c>--server</c>).</summary>
    public bool LeaseToServer { get; }

    public bool IsServer => Member < 0;

    /// <summary>A rejoin after eviction: other members to ask once the contact has not answered a few requests (null otherwise).</summary>
    public IReadOnlyList<System.Net.IPEndPoint>? Fallbacks { get; init; }

    /// <summary>Join through node <paramref name="member"/> (the group's coordinator admits).</summary>
    public static JoinContact Through(int member, bool leaseToServer = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(member);
        return new JoinContact(member, leaseToServer);
    }
}

/// <summary>
/// Admission: the verbs that start nodes at chosen times under chosen names through chosen contacts and restart the
/// discovery server, the admission script of the <see cref="AdmissionKind"/> families, the join-traffic faults and the
/// recording of every view for <see cref="AdmissionCheckers"/>.
/// </summary>
public sealed partial class Simulation
{
    private static readonly TimeSpan InitialSpread = TimeSpan.FromMilliseconds(300);
    private static readonly string[] ClashNames = ["alice", "bob", "carol", "dave", "eve", "mallory"];

    /// <summary>The cap the admission checkers hold the run to, and what they need from the driver.</summary>
    public AdmissionRules AdmissionRules => new(Math.Min(Scenario.Engine.MaxMembers, _discoveryOptions.MaxMembers))
    {
        AnswerableRequests = [.. _nodes.Select(n => n.AnswerableRequests)],
    };

    // ================================================================== verbs

    /// <summary>Starts the discovery server now; false when it had already started (see <see cref="RestartServer"/>).</summary>
    public bool StartServer()
    {
        if (_serverStarted)
        {
            return false;
        }

        _serverStarted = true;
        _server.StartedAt = _now;
        Note(_server.Index, "start");
        Input(_server, () => _server.Engine.OnTimeout(_now));
        return true;
    }

    /// <summary>
    /// Puts a fresh discovery server (a new <see cref="DiscoveryEngine"/>, same options) at the same address, now. A
    /// running server crashes first. The new one knows nothing: it re-learns the group from the members' leases and
    /// answers no join during its re-learn window. Datagrams still in flight reach the new server.
    /// </summary>
    public void RestartServer()
    {
        if (!_serverStarted)
        {
            StartServer();
            return;
        }

        if (!_server.Crashed)
        {
            _server.RestartAfterCrash = null;
            CrashNow(_server, "to restart");
        }

        _server.Engine = new DiscoveryEngine(_discoveryOptions);
        _server.Crashed = false;
        _server.Paused = false;
        _server.CrashAfterTransmits = null;
        _server.TimerAt = null;
        _server.TimerGeneration++;
        _server.StartedAt = _now;
        Note(_server.Index, "RESTART: a fresh discovery server at the same address");
        Input(_server, () => _server.Engine.OnTimeout(_now));
    }

    /// <summary>
    /// Starts node <paramref name="node"/> at <paramref name="at"/> (not before now): it joins through
    /// <paramref name="contact"/> under <paramref name="name"/> (default: its node name; names may clash, even exactly,
    /// since the simulator tells nodes apart by member id). Call once per node, before it starts.
    /// </summary>
    public void StartNode(int node, TimeSpan at, JoinContact contact, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(contact);
        var n = _nodes[node];
        if (n.Started || n.StartScheduled)
        {
            throw new InvalidOperationException($"{n.Name} has already started or is scheduled to");
        }

        if (!contact.IsServer && (contact.Member >= _nodes.Length || contact.Member == node))
        {
            throw new ArgumentOutOfRangeException(nameof(contact), contact.Member, "the contact must be another node");
        }

        if (name is not null && name != n.MemberName)
        {
            n.Engine = CreateEngine(node, _specs[node] with { Name = name });
        }

        n.StartScheduled = true;
        _pendingStarts++;
        Schedule(at, () =>
        {
            n.StartScheduled = false;
            _pendingStarts--;
            StartNode(n, contact);
        });
    }

    /// <summary>
    /// True when every scheduled start has happened, every started node that runs has joined or was denied, and
    /// every joined node sees every other running joined node Up.
    /// </summary>
    public bool AdmissionFormed()
    {
        if (_pendingStarts > 0)
        {
            return false;
        }

        foreach (var node in _nodes)
        {
            if (!node.Started || node.Crashed || History.DeniedAt(node.Index) is not null)
            {
                continue;
            }

            if (!node.Joined)
            {
                return false;
            }

            var up = 0;
            foreach (var m in node.Engine.Members)
            {
                var s = NodeOf(m.Member);
                if (!m.IsSelf && m.Status == MemberStatus.Up && s >= 0 && _nodes[s].Joined && !_nodes[s].Crashed)
                {
                    up++;
                }
            }

            if (up < _nodes.Count(o => o.Joined && !o.Crashed) - 1)
            {
                return false;
            }
        }

        return true;
    }

    // ================================================================== the admission script

    /// <summary>
    /// The admission script (<see cref="Scenario.Admission"/>): start the server, play the family's joins (and its server
    /// crash and restart), wait (bounded by <see cref="Scenario.JoinLimit"/>) until every node joined or was denied and
    /// the admitted nodes see each other, then the standard workload among the admitted nodes, heal and settle.
    /// </summary>
    public void RunAdmissionScript()
    {
        var a = Scenario.Admission ?? throw new InvalidOperationException("the scenario has no admission part");
        var r = _admissionRandom;
        var n = _nodes.Length;
        StartServer();
        var relearn = _server.Engine.Options.RelearnWindow;
        switch (a.Kind)
        {
            case AdmissionKind.Crowd:
            {
                var first = _now + (a.StartDuringRelearn ? r.NextTime(TimeSpan.Zero, relearn) : relearn);
                for (var i = 0; i < n; i++)
                {
                    StartNode(i, first + r.NextTime(TimeSpan.Zero, a.StartSpread), JoinContact.Server);
                }

                break;
            }

            case AdmissionKind.NameClash:
            {
                var k = a.InitialMembers;
                for (var i = 0; i < k; i++)
                {
                    StartNode(i, _now + relearn + r.NextTime(TimeSpan.Zero, InitialSpread), JoinContact.Server);
                }

                var name = r.Pick(ClashNames);
                var at = _now + relearn + r.NextTime(TimeSpan.Zero, InitialSpread * 2);
                StartNode(k, at, JoinContact.Server, name);
                StartNode(k + 1, at, JoinContact.Server, a.ClashSameCase ? name : CaseVariant(name, r));
                if (a.ReclaimCrashedName && k + 2 < n)
                {
                    var holder = r.NextInt(k);
                    var crashAt = _now + relearn + r.NextTime(InitialSpread, TimeSpan.FromMilliseconds(1500));
                    var reclaimAt = crashAt + r.NextTime(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(3));
                    var reclaimName = r.Chance(0.5) ? _nodes[holder].MemberName : CaseVariant(_nodes[holder].MemberName, r);
                    Schedule(crashAt, () => Crash(holder));
                    StartNode(k + 2, reclaimAt, JoinContact.Server, reclaimName);
                }

                break;
            }

            case AdmissionKind.ServerRestart:
            {
                var first = _now + relearn;
                var order = Enumerable.Range(0, n).ToList();
                r.Shuffle(order);
                var clashAt = first + r.NextTime(TimeSpan.Zero, a.StartSpread);
                var clashName = r.Pick(ClashNames);
                for (var i = 0; i < n; i++)
                {
                    var node = order[i];
                    if (a.ClashPair && i < 2)
                    {
                        StartNode(node, clashAt, JoinContact.Server, i == 0 || a.ClashSameCase ? clashName : CaseVariant(clashName, r));
                    }
                    else
                    {
                        StartNode(node, first + r.NextTime(TimeSpan.Zero, a.StartSpread), JoinContact.Server);
                    }
                }

                if (a.ServerCrash)
                {
                    _server.RestartAfterCrash = a.ServerRestartDelay;
                    var crashAt = first + r.NextTime(TimeSpan.Zero, a.StartSpread + TimeSpan.FromMilliseconds(400));
                    var afterTransmits = r.NextInt(0, 3);
                    Schedule(crashAt, () =>
                    {
                        if (a.ServerCrashMidDrain)
                        {
                            ArmCrashMidDrain(_server.Index, afterTransmits);
                        }
                        else
                        {
                            Crash(_server.Index);
                        }
                    });
                }

                break;
            }

            case AdmissionKind.Serverless:
            {
                var k = a.InitialMembers;
                for (var i = 0; i < k; i++)
                {
                    StartNode(i, _now + relearn + r.NextTime(TimeSpan.Zero, InitialSpread), JoinContact.Server);
                }

                if (!RunUntil(AdmissionFormed, _now + Scenario.JoinLimit, JoinCheckInterval))
                {
                    if (!_aborted)
                    {
                        Abort(Invariants.GroupForms, $"the initial group of {k} did not form within {Scenario.JoinLimit.TotalSeconds:0.#}s: {DescribeViews()}");
                    }

                    return;
                }

                Crash(_server.Index);
                var at = _now + r.NextTime(TimeSpan.Zero, TimeSpan.FromMilliseconds(500));
                var contacts = Enumerable.Range(0, k).ToList();
                r.Shuffle(contacts);
                var pairName = r.Pick(ClashNames);
                for (var i = k; i < n; i++)
                {
                    var newcomer = i - k;
                    string? name = null;
                    if (newcomer < a.ClashWithMembers)
                    {
                        name = CaseVariant(_nodes[r.NextInt(k)].MemberName, r);
                    }
                    else if (a.ClashPair && i >= n - 2)
                    {
                        name = i == n - 1 && !a.ClashSameCase ? CaseVariant(pairName, r) : pairName;
                    }

                    StartNode(i, at + r.NextTime(TimeSpan.Zero, a.StartSpread), JoinContact.Through(contacts[newcomer % k], a.LeaseToServer), name);
                }

                break;
            }

            default:
                throw new InvalidOperationException($"unknown admission kind {a.Kind}");
        }

        if (!RunUntil(AdmissionFormed, _now + Scenario.JoinLimit, JoinCheckInterval))
        {
            if (!_aborted)
            {
                Abort(Invariants.AdmissionOutcome, $"admission did not finish within {Scenario.JoinLimit.TotalSeconds:0.#}s (every node joined or denied, the admitted seeing each other): {DescribeViews()}");
            }

            return;
        }

        _admissionFinished = true;
        Note(-1, $"PHASE admission over: {_nodes.Count(x => x.Joined)} joined, {_nodes.Count(x => History.DeniedAt(x.Index) is not null)} denied");
        RunWorkloadAndSettle();
    }

    /// <summary>The same name in another case: at least one letter flipped.</summary>
    private static string CaseVariant(string name, SimRandom r)
    {
        var chars = name.ToCharArray();
        var letters = Enumerable.Range(0, chars.Length).Where(i => char.IsAsciiLetter(chars[i])).ToList();
        if (letters.Count == 0)
        {
            return name;
        }

        var forced = r.Pick(letters);
        foreach (var i in letters)
        {
            if (i == forced || r.Chance(0.5))
            {
                chars[i] = char.IsAsciiLetterLower(chars[i]) ? char.ToUpperInvariant(chars[i]) : char.ToLowerInvariant(chars[i]);
            }
        }

        return new string(chars);
    }

    // ================================================================== driver support

    private ISimEngine CreateEngine(int index, EngineSpec spec)
    {
        var engine = _factory(spec);
        if (_options.EngineTracing)
        {
            engine.Tracer = (t, line) => Trace.Engine(t, index, line);
        }

        return engine;
    }

    /// <summary>The node of a member incarnation (by id; by node name for engines that make up their own ids), or -1.</summary>
    private int NodeOf(MemberRef member) => _byId.TryGetValue(member.Id, out var i) ? i : History.IndexOf(member.Name);

    /// <summary>Whether a join request arriving now at <paramref name="p"/> can be answered: a server past its re-learn window, or a joined member.</summary>
    private bool CanAnswerJoins(SimProcess p) => p switch
    {
        SimServer s => s.StartedAt is { } started && _now >= started + s.Engine.Options.RelearnWindow,
        SimNode node => node.Engine.State == EngineState.Joined,
        _ => false,
    };

    /// <summary>Whether the datagram carries a frame of a type in [<paramref name="low"/>, <paramref name="high"/>] (a bounded walk over the frame headers).</summary>
    private static bool CarriesFrame(byte[] datagram, FrameType low, FrameType high)
    {
        var i = WireCodec.HeaderSize;
        while (i + WireCodec.FrameHeaderSize <= datagram.Length)
        {
            var type = (FrameType)datagram[i];
            if (type >= low && type <= high)
            {
                return true;
            }

            i += WireCodec.FrameHeaderSize + BinaryPrimitives.ReadUInt16BigEndian(datagram.AsSpan(i + 1, 2));
        }

        return false;
    }

    /// <summary>Join traffic (requests, answers, forwards, leases) gets extra delay per copy and maybe one more copy.</summary>
    private int DisturbJoinTraffic(int from, int to, int copies)
    {
        var a = _joinTraffic!;
        var r = _joinTrafficRandom;
        for (var i = 0; i < copies; i++)
        {
            _arrivals[i] += r.NextTime(TimeSpan.Zero, a.JoinReorder);
        }

        if (copies < _arrivals.Length && r.Chance(a.JoinDuplication))
        {
            var link = Network[from, to];
            _arrivals[copies] = link.DelayBase + r.NextTime(TimeSpan.Zero, link.DelayJitter + a.JoinReorder);
            copies++;
        }

        return copies;
    }

    /// <summary>Records the node's view (Up or Suspect, itself included) in the history when it changed since the last record.</summary>
    private void RecordViewIfChanged(SimNode node)
    {
        IReadOnlyList<MemberSnapshot>? members = null;
        if (!Guard(node, () => members = node.Engine.Members) || members is null)
        {
            return;
        }

        _viewScratch.Clear();
        foreach (var m in members)
        {
            if (m.Status is MemberStatus.Up or MemberStatus.Suspect)
            {
                _viewScratch.Add(m.IsSelf ? node.Index : NodeOf(m.Member));
            }
        }

        _viewScratch.Sort();
        if (node.LastView.AsSpan().SequenceEqual(CollectionsMarshal.AsSpan(_viewScratch)))
        {
            return;
        }

        node.LastView = [.. _viewScratch];
        History.RecordView(node.Index, _now, node.LastView);
    }
}
