using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using Whisper.Protocol;
using Whisper.Protocol.Wire;

namespace Whisper.Discovery;

/// <summary>
/// The discovery server's admission registry, as a deterministic, sans-IO state machine: it decides who gets
/// one of the group's slots and tells newcomers who is already there.
/// <para><b>Call contract</b> (the same as the node engine's).</para>
/// <list type="bullet">
/// <item>Inputs: <see cref="OnDatagram"/> (bytes received, with their source endpoint) and <see cref="OnTimeout"/>
/// (the time from <see cref="NextTimeout"/> came).</item>
/// <item>Outputs, drained by the caller after every input: <see cref="TryPollTransmit"/> until false (datagrams to
/// send, written into the caller's buffer of at least <see cref="WireCodec.MaxDatagramSize"/> bytes), then
/// <see cref="TryPollEvent"/> until false (what happened, for logs), then re-arm one timer at <see cref="NextTimeout"/>.</item>
/// <item><c>now</c> is time since an arbitrary epoch and never goes backwards (an earlier value is treated as the
/// latest one seen). A spurious or late <see cref="OnTimeout"/> is harmless; leases are also checked on every datagram.
/// The engine holds no sockets, clocks, threads or randomness and is not thread-safe: one driver loop owns it.
/// The same inputs produce the same outputs.</item>
/// <item>Untrusted bytes never throw: malformed datagrams are counted in <see cref="Stats"/> and dropped.</item>
/// </list>
/// <para><b>Rules.</b> A <see cref="JoinRequestFrame"/> is answered, in this order: from an id that is already a
/// member, with a <see cref="JoinAcceptFrame"/> again (retransmitted or duplicated requests never take two slots);
/// for an invalid name, <see cref="DenyReason.InvalidName"/>; for a name held (ignoring case) by another live member,
/// <see cref="DenyReason.NameTaken"/>, unless the request comes from that member's very endpoint, which means a new
/// incarnation took over its socket and replaces it; in a full group, <see cref="DenyReason.Full"/>; otherwise the
/// newcomer is admitted with a lease of <see cref="DiscoveryOptions.LeaseTimeout"/>. A <see cref="LeaseFrame"/>
/// renews a member's lease; from an unknown id (this server restarted, or the member's lease lapsed) it re-learns
/// the sender and, when the sender was taken in, the members of its view this server does not know, subject to the
/// same cap and name rules. A <see cref="LeaveFrame"/> frees the slot at once; a lapsed lease frees it at expiry.
/// Departed ids are remembered for a while (tombstones) so delayed duplicates and stale views cannot resurrect them.
/// Header ids are trusted: authenticating them is the job of a future envelope.</para>
/// </summary>
public sealed class DiscoveryEngine
{
    private readonly DiscoveryOptions _options;
    private readonly List<Entry> _members = [];
    private readonly HashSet<MemberId> _viewRefusals = [];
    private const int MaxViewRefusalsRemembered = 64;
    private readonly Queue<Outgoing> _transmits = new();
    private readonly Queue<DiscoveryEvent> _events = new();
    private readonly Dictionary<MemberId, Tombstone> _tombstones = [];
    private readonly Queue<(MemberId Id, TimeSpan Until)> _tombstoneOrder = new();
    private readonly List<Frame> _frames = [];
    private readonly Frame[] _one = new Frame[1];
    private MemberRecord[]? _snapshot;
    private TimeSpan _now;
    private TimeSpan? _startedAt;
    private readonly Dictionary<MemberId, Probe> _probes = [];

    public DiscoveryEngine(DiscoveryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    public DiscoveryOptions Options => _options;

    public DiscoveryStats Stats { get; } = new();

    /// <summary>The live members in admission (or re-learning) order. An immutable snapshot: it never changes after it is returned.</summary>
    public IReadOnlyList<MemberRecord> Members => _snapshot ??= [.. _members.Select(static e => e.Record)];

    /// <summary>When the earliest lease expires, or null with no members.</summary>
    public TimeSpan? NextTimeout
    {
        get
        {
            TimeSpan? next = null;
            foreach (var e in _members)
            {
                if (next is null || e.Expires < next)
                {
                    next = e.Expires;
                }
            }

            return next;
        }
    }

    // ------------------------------------------------------------------ inputs

    public void OnDatagram(IPEndPoint from, ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(from);
        Advance(now);
        Stats.DatagramsReceived++;

        if (datagram.Length <= WireCodec.MaxDatagramSize
            && WireCodec.TryPeekVersion(datagram, out var version)
            && version != WireCodec.Version)
        {
            Stats.CountMalformed(DecodeStatus.UnsupportedVersion);
            Stats.VersionMismatches++;
            var message = string.Create(CultureInfo.InvariantCulture,
                $"this server speaks Whisper protocol version {WireCodec.Version}; you sent version {version}");
            Enqueue(from, MemberId.None, new JoinDenyFrame(DenyReason.VersionMismatch, message));
            Stats.CountDenied(DenyReason.VersionMismatch);
            _events.Enqueue(new JoinDenied(string.Empty, Copy(from), DenyReason.VersionMismatch, message, _members.Count));
            return;
        }

        _frames.Clear();
        var status = WireCodec.TryDecode(datagram, out var header, _frames);
        if (status != DecodeStatus.Ok)
        {
            Stats.CountMalformed(status);
            return;
        }

        foreach (var frame in _frames)
        {
            if (header.From.IsNone)
            {
                Stats.IgnoredFrames++; // requests, leases and leaves all need the sender's id
                continue;
            }

            switch (frame)
            {
                case JoinRequestFrame join: OnJoinRequest(header.From, from, join); break;
                case LeaseFrame lease: OnLease(header.From, from, lease); break;
                case LeaveFrame: OnLeave(header.From); break;
                case PongFrame pong: OnProbeAnswered(header.From, pong.Token); break;
                default: Stats.IgnoredFrames++; break;
            }
        }
    }

    public void OnTimeout(TimeSpan now) => Advance(now);

    // ----------------------------------------------------------------- outputs

    /// <summary>Writes the next datagram to send into <paramref name="buffer"/>.</summary>
    /// <exception cref="ArgumentException">The buffer is smaller than the datagram (use <see cref="WireCodec.MaxDatagramSize"/> bytes).</exception>
    public bool TryPollTransmit(Span<byte> buffer, out int length, [NotNullWhen(true)] out IPEndPoint? destination)
    {
        length = 0;
        destination = null;
        if (!_transmits.TryPeek(out var next))
        {
            return false;
        }

        var size = WireCodec.HeaderSize + WireCodec.FrameSize(next.Frame);
        Debug.Assert(size <= WireCodec.MaxDatagramSize, "the engine's replies are bounded by the member cap");
        if (buffer.Length < size)
        {
            throw new ArgumentException($"the buffer holds {buffer.Length} bytes; the next datagram needs {size}", nameof(buffer));
        }

        _transmits.Dequeue();
        _one[0] = next.Frame;
        length = WireCodec.Encode(new DatagramHeader(MemberId.None, next.To), _one, buffer);
        _one[0] = null!;
        destination = next.Destination;
        Stats.DatagramsSent++;
        Stats.BytesSent += length;
        return true;
    }

    public bool TryPollEvent([NotNullWhen(true)] out DiscoveryEvent? ev) => _events.TryDequeue(out ev);

    // ------------------------------------------------------------------- rules

    private void OnJoinRequest(MemberId id, IPEndPoint from, JoinRequestFrame join)
    {
        Stats.JoinRequests++;
        if (_now < _startedAt + _options.RelearnWindow)
        {
            Stats.DeferredJoinRequests++; // still re-learning a group that may have outlived our last run
            return;
        }

        if (IsTombstoned(id, out var left) && left)
        {
            Stats.StaleDropped++; // a delayed copy of a request from an incarnation that has since left
            return;
        }

        var index = IndexOf(id);
        if (index >= 0)
        {
            var existing = _members[index];
            if (!string.Equals(existing.Record.Name, join.Name, StringComparison.Ordinal))
            {
                Deny(id, from, join.Name, DenyReason.Other,
                    $"member id {id} already joined as '{existing.Record.Name}'; a new name needs a new incarnation");
                return;
            }

            Stats.DuplicateJoinRequests++;
            OnSignOfLife(id); // a member still asking is alive
            existing.Expires = _now + _options.LeaseTimeout;
            Accept(id, from, existing.Record.Endpoint);
            return;
        }

        if (MemberName.Validate(join.Name) is { } why)
        {
            Deny(id, from, join.Name, DenyReason.InvalidName, why);
            return;
        }

        var observed = Advertised(from);
        var holder = IndexOfName(join.Name);
        if (holder >= 0)
        {
            var old = _members[holder].Record;
            if (!old.Endpoint.Equals(observed))
            {
                switch (CheckHolder(holder))
                {
                    case HolderState.Alive:
                        Deny(id, from, join.Name, DenyReason.NameTaken, $"the name '{old.Name}' is already taken in this group");
                        return;
                    case HolderState.Probing:
                        Stats.DeferredJoinRequests++; // answered once the holder proved alive or dead; the newcomer retries
                        return;
                    default:
                        Remove(holder, left: false);
                        Stats.ProvenDead++;
                        _events.Enqueue(new MemberProvenDead(old, _members.Count));
                        break;
                }
            }
            else
            {
                Remove(holder, left: true);
                Stats.Replaced++;
                _events.Enqueue(new MemberReplaced(old, new MemberRecord(id, join.Name, observed), _members.Count));
            }
        }

        if (_members.Count >= _options.MaxMembers)
        {
            Deny(id, from, join.Name, DenyReason.Full,
                string.Create(CultureInfo.InvariantCulture, $"the group already has {_members.Count} members"));
            return;
        }

        var record = new MemberRecord(id, join.Name, observed);
        Add(record, NextSeniority());
        Stats.Admitted++;
        _events.Enqueue(new MemberAdmitted(record, _members.Count));
        Accept(id, from, observed);
    }

    private void OnLease(MemberId id, IPEndPoint from, LeaseFrame lease)
    {
        if (IsTombstoned(id, out var left) && left)
        {
            Stats.StaleDropped++;
            return;
        }

        var index = IndexOf(id);
        if (index >= 0)
        {
            var entry = _members[index];
            if (!string.Equals(entry.Record.Name, lease.Name, StringComparison.Ordinal))
            {
                Stats.StaleDropped++;
                return;
            }

            entry.Expires = _now + _options.LeaseTimeout;
            entry.Seniority = lease.Seniority;
            var observed = Advertised(from);
            if (!entry.Record.Endpoint.Equals(observed))
            {
                entry.Record = entry.Record with { Endpoint = observed }; // the latest source is where it is reachable
                _snapshot = null;
            }

            Stats.LeasesRenewed++;
            OnSignOfLife(id);
            ForgetReportedGone(id, lease.View);
            RelearnFromView(id, lease.View);
            return;
        }

        if (!TryRelearn(new MemberRecord(id, lease.Name, Advertised(from)), id, ownLease: true))
        {
            return;
        }

        _members[IndexOf(id)].Seniority = lease.Seniority;
        RelearnFromView(id, lease.View);
    }

    /// <summary>
    /// Every lease's view teaches members this server does not know (after a restart, members that had not joined yet
    /// when their introducers first leased); tombstoned ones stay out until their own lease proves them alive.
    /// </summary>
    private void RelearnFromView(MemberId via, IReadOnlyList<MemberRecord> view)
    {
        foreach (var member in view)
        {
            if (IndexOf(member.Id) < 0)
            {
                TryRelearn(member, via, ownLease: false);
            }
        }
    }

    /// <summary>
    /// A newcomer wants the name of a live member: a restarted process under the same name, or a real clash.
    /// The holder is always asked to prove it is alive (a live one answers within a round trip, so a real clash
    /// is refused at the newcomer's next retry). Proof is a pong to one of this probe's pings, or a lease or
    /// request that arrives at least <see cref="ProbeGrace"/> after the probe began: a crashed holder's last lease
    /// can still be in flight when its successor asks, and must not make the dead holder look alive. If it gives
    /// no proof for <see cref="DiscoveryOptions.ProbeTimeout"/> it is proven dead and the newcomer takes its name.
    /// </summary>
    private HolderState CheckHolder(int index)
    {
        var holder = _members[index].Record;
        if (_probes.TryGetValue(holder.Id, out var probe))
        {
            if (probe.LastProofOfLife is { } alive && _now - alive < _options.ProbeTimeout)
            {
                return HolderState.Alive;
            }

            if (_now < probe.Deadline)
            {
                if (_now >= probe.NextPingAt)
                {
                    PingHolder(holder, probe);
                }

                return HolderState.Probing;
            }

            _probes.Remove(holder.Id);
            if (probe.LastProofOfLife is null)
            {
                return HolderState.Dead;
            }

            // an earlier probe found it alive, and it has been quiet since: ask afresh below
        }

        probe = new Probe { Started = _now, Deadline = _now + _options.ProbeTimeout };
        _probes[holder.Id] = probe;
        PingHolder(holder, probe);
        return HolderState.Probing;
    }

    /// <summary>How late after a probe began a lease or request from the holder proves it alive: a ping interval.</summary>
    private TimeSpan ProbeGrace => _options.ProbeTimeout / 6;

    private void PingHolder(MemberRecord holder, Probe probe)
    {
        probe.NextPingAt = _now + ProbeGrace;
        Enqueue(holder.Endpoint, holder.Id, new PingFrame((ulong)_now.Ticks));
    }

    /// <summary>A pong proves life only if it answers a ping of the current probe (the token is our clock when it left).</summary>
    private void OnProbeAnswered(MemberId id, ulong token)
    {
        if (_probes.TryGetValue(id, out var probe) && token >= (ulong)probe.Started.Ticks && token <= (ulong)_now.Ticks)
        {
            probe.LastProofOfLife = _now;
        }
        else
        {
            Stats.IgnoredFrames++; // unasked, stale or forged
        }
    }

    /// <summary>A lease or request from a probed holder: proof only once anything sent before the probe began has had time to arrive.</summary>
    private void OnSignOfLife(MemberId id)
    {
        if (_probes.TryGetValue(id, out var probe) && _now - probe.Started >= ProbeGrace)
        {
            probe.LastProofOfLife = _now;
        }
    }

    private enum HolderState
    {
        Alive,
        Probing,
        Dead,
    }

    private sealed class Probe
    {
        public TimeSpan Started { get; init; }
        public TimeSpan Deadline { get; set; }
        public TimeSpan NextPingAt { get; set; }
        public TimeSpan? LastProofOfLife { get; set; }
    }

    /// <summary>Members report failures: whoever a live member no longer sees, and has not renewed lately, is gone.</summary>
    private void ForgetReportedGone(MemberId reporter, IReadOnlyList<MemberRecord> view)
    {
        for (var i = 0; i < _members.Count;)
        {
            var entry = _members[i];
            var lastRenewal = entry.Expires - _options.LeaseTimeout;
            if (entry.Record.Id != reporter
                && lastRenewal + _options.ReportedGoneAfter <= _now
                && !view.Any(m => m.Id == entry.Record.Id))
            {
                var record = entry.Record;
                Remove(i, left: false);
                Stats.ReportedGone++;
                _events.Enqueue(new MemberReportedGone(record, reporter, _members.Count));
                continue;
            }

            i++;
        }
    }

    private bool TryRelearn(MemberRecord record, MemberId via, bool ownLease)
    {
        if (record.Id.IsNone || IndexOf(record.Id) >= 0 || !MemberName.IsValid(record.Name))
        {
            return false;
        }

        if (IsTombstoned(record.Id, out var left) && (left || !ownLease))
        {
            return false; // only the member itself can prove it is alive after its lease lapsed
        }

        var reason = IndexOfName(record.Name) >= 0 ? DenyReason.NameTaken
            : _members.Count >= _options.MaxMembers ? DenyReason.Full
            : DenyReason.Other;
        if (reason != DenyReason.Other)
        {
            if (ownLease || NewViewRefusal(record.Id))
            {
                Stats.LeasesRefused++; // views repeat every second: once per member is enough for the log
                _events.Enqueue(new LeaseRefused(record, reason, _members.Count));
            }

            return false;
        }

        _tombstones.Remove(record.Id);
        var copy = record with { Endpoint = Copy(record.Endpoint) };
        Add(copy, seniority: 0); // until its own lease says
        Stats.Relearned++;
        _events.Enqueue(new MemberRelearned(copy, via, _members.Count));
        return true;
    }

    private bool NewViewRefusal(MemberId id)
    {
        if (_viewRefusals.Count >= MaxViewRefusalsRemembered)
        {
            _viewRefusals.Clear();
        }

        return _viewRefusals.Add(id);
    }

    private void OnLeave(MemberId id)
    {
        var index = IndexOf(id);
        if (index < 0)
        {
            Stats.StaleDropped++;
            AddTombstone(id, left: true); // a lease delayed behind this leave must not bring it back
            return;
        }

        var record = _members[index].Record;
        Remove(index, left: true);
        Stats.Left++;
        _events.Enqueue(new MemberLeft(record, _members.Count));
    }

    private void Advance(TimeSpan now)
    {
        _startedAt ??= now;
        if (now > _now)
        {
            _now = now;
        }

        for (var i = 0; i < _members.Count;)
        {
            if (_members[i].Expires <= _now)
            {
                var record = _members[i].Record;
                Remove(i, left: false);
                Stats.Expired++;
                _events.Enqueue(new LeaseExpired(record, _members.Count));
            }
            else
            {
                i++;
            }
        }

        while (_tombstoneOrder.TryPeek(out var oldest) && oldest.Until <= _now)
        {
            _tombstoneOrder.Dequeue();
            if (_tombstones.TryGetValue(oldest.Id, out var t) && t.Until <= _now)
            {
                _tombstones.Remove(oldest.Id);
            }
        }
    }

    // ----------------------------------------------------------------- helpers

    private void Accept(MemberId id, IPEndPoint to, IPEndPoint observed)
    {
        var others = new List<MemberRecord>(_members.Count);
        ulong seniority = 0;
        foreach (var e in _members)
        {
            if (e.Record.Id != id)
            {
                others.Add(e.Record);
            }
            else
            {
                seniority = e.Seniority;
            }
        }

        Enqueue(to, id, new JoinAcceptFrame(observed, others, seniority));
    }

    /// <summary>The admission order of the next newcomer: after every member this server knows (see <see cref="JoinAcceptFrame.Seniority"/>).</summary>
    private ulong NextSeniority()
    {
        ulong max = 0;
        foreach (var e in _members)
        {
            max = Math.Max(max, e.Seniority);
        }

        return max + 1;
    }

    private void Deny(MemberId id, IPEndPoint to, string name, DenyReason reason, string message)
    {
        Stats.CountDenied(reason);
        Enqueue(to, id, new JoinDenyFrame(reason, message));
        _events.Enqueue(new JoinDenied(name, Copy(to), reason, message, _members.Count));
    }

    private void Enqueue(IPEndPoint destination, MemberId to, Frame frame) =>
        _transmits.Enqueue(new Outgoing(Copy(destination), to, frame));

    private void Add(MemberRecord record, ulong seniority)
    {
        _members.Add(new Entry(record, _now + _options.LeaseTimeout) { Seniority = seniority });
        _snapshot = null;
    }

    private void Remove(int index, bool left)
    {
        var id = _members[index].Record.Id;
        _members.RemoveAt(index);
        _probes.Remove(id);
        _snapshot = null;
        AddTombstone(id, left);
    }

    private void AddTombstone(MemberId id, bool left)
    {
        if (_options.MaxTombstones == 0)
        {
            return;
        }

        var until = _now + _options.EffectiveTombstoneTimeout;
        _tombstones[id] = new Tombstone(until, left);
        _tombstoneOrder.Enqueue((id, until));
        while (_tombstoneOrder.Count > _options.MaxTombstones)
        {
            var oldest = _tombstoneOrder.Dequeue();
            if (_tombstones.TryGetValue(oldest.Id, out var t) && t.Until == oldest.Until)
            {
                _tombstones.Remove(oldest.Id);
            }
        }
    }

    private bool IsTombstoned(MemberId id, out bool left)
    {
        if (_tombstones.TryGetValue(id, out var t) && t.Until > _now)
        {
            left = t.Left;
            return true;
        }

        left = false;
        return false;
    }

    private int IndexOf(MemberId id)
    {
        for (var i = 0; i < _members.Count; i++)
        {
            if (_members[i].Record.Id == id)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Names are unique ignoring case, so "Bob" and "bob" can never both be addressed in one group.</summary>
    private int IndexOfName(string name)
    {
        for (var i = 0; i < _members.Count; i++)
        {
            if (string.Equals(_members[i].Record.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The endpoint as members should use it: a private copy, with IPv4-mapped IPv6 addresses unmapped.</summary>
    private static IPEndPoint Advertised(IPEndPoint from) =>
        from.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(from.Address.MapToIPv4(), from.Port) : Copy(from);

    private static IPEndPoint Copy(IPEndPoint ep) => new(ep.Address, ep.Port);

    private sealed class Entry(MemberRecord record, TimeSpan expires)
    {
        public MemberRecord Record { get; set; } = record;

        public TimeSpan Expires { get; set; } = expires;

        /// <summary>Admission order: assigned here, or as the member's own leases report it.</summary>
        public ulong Seniority { get; set; }
    }

    private readonly record struct Outgoing(IPEndPoint Destination, MemberId To, Frame Frame);

    private readonly record struct Tombstone(TimeSpan Until, bool Left);
}
