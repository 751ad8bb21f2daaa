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

    // Not readonly only for scratch clocks (CreateScratch): the engine's reusable ack clocks, never handed out beyond one call.
    private ClockEntry[] _entries;

    public static VectorClock Empty { get; } = new([]);

    private VectorClock(ClockEntry[] sortedNonZero) => _entries = sortedNonZero;

    /// <summary>
    /// A clock whose entries the owner replaces with <see cref="ResetScratch"/>: for the decoder's and the engine's
    /// reusable ack frames only. It must never escape the call that filled it (it would change under its holder).
    /// </summary>
    internal static VectorClock CreateScratch() => new([]);

    /// <summary>Scratch clocks only: takes <paramref name="sortedNonZero"/> (strictly ascending, no zero values) as the entries.</summary>
    internal void ResetScratch(ClockEntry[] sortedNonZero) => _entries = sortedNonZero;

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

    /// <summary>The entries as a span (sorted by member, no zeros), for loops on the hot path that must not allocate an enumerator.</summary>
    public ReadOnlySpan<ClockEntry> EntrySpan => _entries;

    public static VectorClock From(IEnumerable<ClockEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ClockEntry[] array;
        if (entries is ICollection<ClockEntry> collection)
        {
            array = new ClockEntry[collection.Count];
            collection.CopyTo(array, 0);
        }
        else
        {
            array = [.. entries];
        }

        return FromOwnedArray(array, nameof(entries));
    }

    /// <summary>
    /// Builds from entries in any order, taking ownership of <paramref name="entries"/> (it is sorted in place and
    /// kept when it holds no zero values): one allocation for the clock object in the common case.
    /// </summary>
    internal static VectorClock FromOwnedArray(ClockEntry[] entries, string paramName = "entries")
    {
        // Insertion sort: clocks hold at most a few dozen entries and usually arrive sorted already.
        var zeros = 0;
        for (var i = 0; i < entries.Length; i++)
        {
            var e = entries[i];
            zeros += e.Value == 0 ? 1 : 0;
            var j = i - 1;
            while (j >= 0 && entries[j].Member.Value > e.Member.Value)
            {
                entries[j + 1] = entries[j];
                j--;
            }

            entries[j + 1] = e;
        }

        var previous = -1;
        for (var i = 0; i < entries.Length; i++)
        {
            if (entries[i].Value == 0)
            {
                continue;
            }

            if (previous >= 0 && entries[i].Member == entries[previous].Member)
            {
                throw new ArgumentException($"duplicate clock entry for {entries[i].Member}", paramName);
            }

            previous = i;
        }

        return FromSortedUnchecked(entries, zeros);
    }

    /// <summary>Builds from entries already validated as strictly ascending (the decoder's path); keeps the array when it holds no zeros.</summary>
    internal static VectorClock FromSortedUnchecked(ClockEntry[] entries)
    {
        var zeros = 0;
        foreach (var e in entries)
        {
            zeros += e.Value == 0 ? 1 : 0;
        }

        return FromSortedUnchecked(entries, zeros);
    }

    private static VectorClock FromSortedUnchecked(ClockEntry[] entries, int zeros)
    {
        if (entries.Length - zeros == 0)
        {
            return Empty;
        }

        if (zeros == 0)
        {
            return new VectorClock(entries);
        }

        var nonZero = new ClockEntry[entries.Length - zeros];
        var k = 0;
        foreach (var e in entries)
        {
            if (e.Value != 0)
            {
                nonZero[k++] = e;
            }
        }

        return new VectorClock(nonZero);
    }

    public VectorClock With(MemberId member, ulong value)
    {
        var i = IndexOf(member);
        if (i >= 0)
        {
            if (value == 0)
            {
                if (_entries.Length == 1)
                {
                    return Empty;
                }

                var removed = new ClockEntry[_entries.Length - 1];
                _entries.AsSpan(0, i).CopyTo(removed);
                _entries.AsSpan(i + 1).CopyTo(removed.AsSpan(i));
                return new VectorClock(removed);
            }

            var replaced = (ClockEntry[])_entries.Clone();
            replaced[i] = new ClockEntry(member, value);
            return new VectorClock(replaced);
        }

        if (value == 0)
        {
            return this;
        }

        var insertAt = ~i;
        var added = new ClockEntry[_entries.Length + 1];
        _entries.AsSpan(0, insertAt).CopyTo(added);
        added[insertAt] = new ClockEntry(member, value);
        _entries.AsSpan(insertAt).CopyTo(added.AsSpan(insertAt + 1));
        return new VectorClock(added);
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

        return ~lo;
    }
}
