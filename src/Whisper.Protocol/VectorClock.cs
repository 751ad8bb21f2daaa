using System.Globalization;
using System.Text;

namespace Whisper.Protocol;

/// <summary>How two vector clocks relate.</summary>
public enum CausalOrder
{
    Equal,
    Before,
    After,
    Concurrent,
}

/// <summary>One entry of a vector clock.</summary>
public readonly record struct ClockEntry(MemberId Member, ulong Value);

/// <summary>
/// Immutable vector clock: for each member incarnation, how many of its broadcast chunks are covered.
/// Entries are kept sorted by member id and zero entries are omitted, so equal clocks have equal entries.
/// Values count chunks (see docs/protocol.md), which is equivalent to counting messages for causality
/// because a message's chunks are contiguous in its sender's stream.
/// </summary>
public sealed class VectorClock : IEquatable<VectorClock>
{
    /// <summary>The most entries a clock may carry on the wire (members plus recently departed incarnations).</summary>
    public const int MaxEntries = 64;

    private readonly ClockEntry[] _entries;

    public static VectorClock Empty { get; } = new([]);

    private VectorClock(ClockEntry[] sortedNonZero) => _entries = sortedNonZero;

    public IReadOnlyList<ClockEntry> Entries => _entries;

    public int Count => _entries.Length;

    public ulong this[MemberId member]
    {
        get
        {
            var i = IndexOf(member);
            return i >= 0 ? _entries[i].Value : 0;
        }
    }

    public static VectorClock From(IEnumerable<ClockEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var list = new List<ClockEntry>();
        foreach (var e in entries)
        {
            if (e.Value != 0)
            {
                list.Add(e);
            }
        }

        list.Sort(static (a, b) => a.Member.CompareTo(b.Member));
        for (var i = 1; i < list.Count; i++)
        {
            if (list[i].Member == list[i - 1].Member)
            {
                throw new ArgumentException($"duplicate clock entry for {list[i].Member}", nameof(entries));
            }
        }

        return list.Count == 0 ? Empty : new VectorClock([.. list]);
    }

    /// <summary>Builds from entries already validated as strictly ascending (the decoder's path).</summary>
    internal static VectorClock FromSortedUnchecked(ClockEntry[] entries)
    {
        var nonZero = Array.FindAll(entries, static e => e.Value != 0);
        return nonZero.Length == 0 ? Empty : new VectorClock(nonZero);
    }

    public VectorClock With(MemberId member, ulong value)
    {
        var list = new List<ClockEntry>(_entries);
        var i = IndexOf(member);
        if (i >= 0)
        {
            list.RemoveAt(i);
        }

        list.Add(new ClockEntry(member, value));
        return From(list);
    }

    /// <summary>True when every entry of this clock is at most what <paramref name="covered"/> reports.</summary>
    public bool IsCoveredBy(Func<MemberId, ulong> covered)
    {
        ArgumentNullException.ThrowIfNull(covered);
        foreach (var e in _entries)
        {
            if (covered(e.Member) < e.Value)
            {
                return false;
            }
        }

        return true;
    }

    public CausalOrder Compare(VectorClock other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var less = false;
        var greater = false;
        int i = 0, j = 0;
        while (i < _entries.Length || j < other._entries.Length)
        {
            ulong a, b;
            if (j >= other._entries.Length || (i < _entries.Length && _entries[i].Member.CompareTo(other._entries[j].Member) < 0))
            {
                a = _entries[i++].Value;
                b = 0;
            }
            else if (i >= _entries.Length || other._entries[j].Member.CompareTo(_entries[i].Member) < 0)
            {
                a = 0;
                b = other._entries[j++].Value;
            }
            else
            {
                a = _entries[i++].Value;
                b = other._entries[j++].Value;
            }

            less |= a < b;
            greater |= a > b;
        }

        return (less, greater) switch
        {
            (false, false) => CausalOrder.Equal,
            (true, false) => CausalOrder.Before,
            (false, true) => CausalOrder.After,
            _ => CausalOrder.Concurrent,
        };
    }

    public bool Equals(VectorClock? other) => other is not null && Compare(other) == CausalOrder.Equal;

    public override bool Equals(object? obj) => Equals(obj as VectorClock);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var e in _entries)
        {
            h.Add(e);
        }

        return h.ToHashCode();
    }

    /// <summary>Readable form for logs and test failures, e.g. <c>[3f2a91:2,77c0d1:5]</c>.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder("[");
        for (var i = 0; i < _entries.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            sb.Append(_entries[i].Member.ToString()[..6]).Append(':').Append(_entries[i].Value.ToString(CultureInfo.InvariantCulture));
        }

        return sb.Append(']').ToString();
    }

    private int IndexOf(MemberId member)
    {
        int lo = 0, hi = _entries.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var c = _entries[mid].Member.CompareTo(member);
            if (c == 0)
            {
                return mid;
            }

            if (c < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return -1;
    }
}
