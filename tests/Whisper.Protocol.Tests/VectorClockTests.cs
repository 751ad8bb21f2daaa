using CsCheck;
using Xunit;

namespace Whisper.Protocol.Tests;

public sealed class VectorClockTests
{
    private static readonly MemberId A = new(0x3f2a910000000001);
    private static readonly MemberId B = new(0x77c0d10000000002);
    private static readonly MemberId C = new(0xa1b2c30000000003);

    private static VectorClock Clock(params (MemberId Member, ulong Value)[] entries) => Samples.Clock(entries);

    [Fact]
    public void FromSortsEntriesByMemberId()
    {
        var clock = Clock((C, 3), (A, 1), (B, 2));

        Assert.Equal([new ClockEntry(A, 1), new ClockEntry(B, 2), new ClockEntry(C, 3)], clock.Entries);
        Assert.Equal(3, clock.Count);
    }

    [Fact]
    public void FromOmitsZeroEntries()
    {
        var clock = Clock((A, 0), (B, 2), (C, 0));

        Assert.Equal([new ClockEntry(B, 2)], clock.Entries);
    }

    [Fact]
    public void AllZeroEntriesGiveTheEmptyClock()
    {
        Assert.Same(VectorClock.Empty, Clock((A, 0), (B, 0)));
        Assert.Same(VectorClock.Empty, Clock());
        Assert.Equal(0, VectorClock.Empty.Count);
    }

    [Fact]
    public void FromRefusesTheSameMemberTwice()
    {
        var error = Assert.Throws<ArgumentException>(() => Clock((A, 1), (B, 1), (A, 2)));

        Assert.Contains(A.ToString(), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromRefusesTheSameMemberTwiceEvenWithAZeroEntryBetween()
    {
        Assert.Throws<ArgumentException>(() => Clock((A, 1), (A, 0), (A, 2)));
        Assert.Equal([new ClockEntry(A, 2)], Clock((A, 0), (A, 2)).Entries); // a zero entry is no entry
    }

    [Fact]
    public void FromDoesNotKeepTheCallersCollection()
    {
        var entries = new List<ClockEntry> { new(B, 2), new(A, 1) };
        var clock = VectorClock.From(entries);
        entries[0] = new ClockEntry(B, 99);

        Assert.Equal(2UL, clock[B]);
    }

    [Fact]
    public void IndexerReturnsTheValueOrZeroForAbsentMembers()
    {
        var clock = Clock((A, 4), (C, 9));

        Assert.Equal(4UL, clock[A]);
        Assert.Equal(9UL, clock[C]);
        Assert.Equal(0UL, clock[B]);
        Assert.Equal(0UL, clock[MemberId.None]);
        Assert.Equal(0UL, VectorClock.Empty[A]);
    }

    [Fact]
    public void WithAddsAMissingMemberInOrder()
    {
        var clock = Clock((A, 1), (C, 3)).With(B, 2);

        Assert.Equal([new ClockEntry(A, 1), new ClockEntry(B, 2), new ClockEntry(C, 3)], clock.Entries);
    }

    [Fact]
    public void WithReplacesAnExistingValueAndLeavesTheOriginalUnchanged()
    {
        var original = Clock((A, 1), (B, 2));

        var updated = original.With(B, 7);

        Assert.Equal(7UL, updated[B]);
        Assert.Equal(2UL, original[B]);
        Assert.Equal(2, updated.Count);
    }

    [Fact]
    public void WithZeroRemovesTheEntry()
    {
        var clock = Clock((A, 1), (B, 2)).With(A, 0);

        Assert.Equal([new ClockEntry(B, 2)], clock.Entries);
        Assert.Equal(0, clock.With(B, 0).Count);
    }

    [Fact]
    public void EqualClocksCompareEqualRegardlessOfConstructionOrder()
    {
        var x = Clock((A, 1), (B, 2));
        var y = VectorClock.Empty.With(B, 2).With(C, 0).With(A, 1);

        Assert.Equal(CausalOrder.Equal, x.Compare(y));
        Assert.Equal(x, y);
        Assert.Equal(x.GetHashCode(), y.GetHashCode());
        Assert.Equal(CausalOrder.Equal, VectorClock.Empty.Compare(Clock((A, 0))));
    }

    [Fact]
    public void SmallerInOneEntryAndEqualElsewhereIsBefore()
    {
        var earlier = Clock((A, 1), (B, 2));
        var later = Clock((A, 1), (B, 3));

        Assert.Equal(CausalOrder.Before, earlier.Compare(later));
        Assert.Equal(CausalOrder.After, later.Compare(earlier));
        Assert.NotEqual(earlier, later);
    }

    [Fact]
    public void MissingMembersCountAsZero()
    {
        Assert.Equal(CausalOrder.Before, VectorClock.Empty.Compare(Clock((A, 1))));
        Assert.Equal(CausalOrder.Before, Clock((A, 1)).Compare(Clock((A, 1), (B, 1))));
        Assert.Equal(CausalOrder.After, Clock((A, 2), (C, 5)).Compare(Clock((A, 2))));
    }

    [Fact]
    public void EachAheadSomewhereIsConcurrent()
    {
        Assert.Equal(CausalOrder.Concurrent, Clock((A, 2), (B, 1)).Compare(Clock((A, 1), (B, 2))));
    }

    [Fact]
    public void DisjointMembersAreConcurrent()
    {
        var x = Clock((A, 1), (C, 1));
        var y = Clock((B, 1));

        Assert.Equal(CausalOrder.Concurrent, x.Compare(y));
        Assert.Equal(CausalOrder.Concurrent, y.Compare(x));
    }

    [Fact]
    public void IsCoveredByHoldsWhenEveryEntryIsAtMostWhatIsCovered()
    {
        var deps = Clock((A, 2), (B, 5));
        var delivered = new Dictionary<MemberId, ulong> { [A] = 2, [B] = 6 };

        Assert.True(deps.IsCoveredBy(m => delivered.GetValueOrDefault(m)));
        Assert.True(VectorClock.Empty.IsCoveredBy(_ => 0));
    }

    [Fact]
    public void IsCoveredByFailsWhenOneEntryIsAhead()
    {
        var deps = Clock((A, 2), (C, 1));

        Assert.False(deps.IsCoveredBy(m => m == A ? 2UL : 0UL));
    }

    [Fact]
    public void IsCoveredByAsksOnlyAboutMembersInTheClock()
    {
        var asked = new List<MemberId>();

        Clock((C, 1), (A, 2)).IsCoveredBy(m =>
        {
            asked.Add(m);
            return ulong.MaxValue;
        });

        Assert.Equal([A, C], asked);
    }

    [Fact]
    public void ToStringShowsShortIdsAndValuesInIdOrder()
    {
        Assert.Equal("[3f2a91:2,77c0d1:5]", Clock((B, 5), (A, 2)).ToString());
        Assert.Equal("[]", VectorClock.Empty.ToString());
    }

    // ------------------------------------------------------------------ properties

    /// <summary>Clocks over a few members with small values, so equal, ordered and concurrent pairs all occur often.</summary>
    private static readonly Gen<VectorClock> SmallClock = Gen.Int[0, 3].Array[5].Select(static values =>
        VectorClock.From(values.Select(static (v, i) => new ClockEntry(new MemberId((ulong)i + 1), (ulong)v))));

    private static CausalOrder Mirror(CausalOrder order) => order switch
    {
        CausalOrder.Before => CausalOrder.After,
        CausalOrder.After => CausalOrder.Before,
        _ => order,
    };

    [Fact]
    public void CompareIsAntisymmetric()
    {
        Gen.Select(SmallClock, SmallClock).Sample(
            (x, y) => Assert.Equal(Mirror(x.Compare(y)), y.Compare(x)),
            iter: 5_000,
            print: t => $"{t.Item1} vs {t.Item2}");
    }

    [Fact]
    public void CompareAgreesWithComponentWiseOrder()
    {
        Gen.Select(SmallClock, SmallClock).Sample(
            (x, y) =>
            {
                var members = x.Entries.Concat(y.Entries).Select(static e => e.Member).Distinct().ToList();
                var atMost = members.All(m => x[m] <= y[m]);
                var atLeast = members.All(m => x[m] >= y[m]);
                var expected = (atMost, atLeast) switch
                {
                    (true, true) => CausalOrder.Equal,
                    (true, false) => CausalOrder.Before,
                    (false, true) => CausalOrder.After,
                    _ => CausalOrder.Concurrent,
                };

                Assert.Equal(expected, x.Compare(y));
                Assert.Equal(expected == CausalOrder.Equal, x.Equals(y));
                Assert.Equal(atMost, x.IsCoveredBy(m => y[m]));
            },
            iter: 5_000,
            print: t => $"{t.Item1} vs {t.Item2}");
    }

    [Fact]
    public void EveryClockIsEqualToItselfAndBeforeItsIncrements()
    {
        Gen.Select(SmallClock, Gen.Int[1, 5]).Sample(
            (x, member) =>
            {
                var id = new MemberId((ulong)member);
                Assert.Equal(CausalOrder.Equal, x.Compare(x));
                Assert.Equal(CausalOrder.Before, x.Compare(x.With(id, x[id] + 1)));
            },
            iter: 2_000);
    }
}
