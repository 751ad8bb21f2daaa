using Whisper.Protocol.Engine;
using Xunit;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>The sequence-indexed map a stream keeps its chunks in: a dictionary's behaviour over a sliding window.</summary>
public sealed class SeqMapTests
{
    [Fact]
    public void It_finds_what_was_added_and_forgets_what_was_removed()
    {
        var map = new SeqMap<string>();
        map.Add(5, "five");
        map.Add(6, "six");

        Assert.True(map.TryGetValue(5, out var five));
        Assert.Equal("five", five);
        Assert.Equal("six", map[6]);
        Assert.False(map.ContainsKey(7));
        Assert.False(map.ContainsKey(5 + 64)); // same slot, other number
        Assert.True(map.Remove(5, out var removed));
        Assert.Equal("five", removed);
        Assert.False(map.ContainsKey(5));
        Assert.False(map.Remove(5));
        Assert.Equal(1, map.Count);
        Assert.Throws<KeyNotFoundException>(() => map[5]);
    }

    [Fact]
    public void Adding_a_number_twice_throws_as_a_dictionary_does()
    {
        var map = new SeqMap<string> { };
        map.Add(1, "a");
        Assert.Throws<ArgumentException>(() => map.Add(1, "b"));
    }

    [Fact]
    public void A_window_wider_than_the_array_grows_it_and_keeps_every_entry()
    {
        var map = new SeqMap<string>();
        for (ulong seq = 1000; seq < 1000 + 5000; seq++) // a stalled stable point: thousands held at once
        {
            map.Add(seq, seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        map.Add(1_000_000, "far"); // beyond, like a chunk ahead of a gap
        Assert.Equal(5001, map.Count);
        for (ulong seq = 1000; seq < 6000; seq++)
        {
            Assert.Equal(seq.ToString(System.Globalization.CultureInfo.InvariantCulture), map[seq]);
        }

        Assert.Equal("far", map[1_000_000]);
        Assert.Equal(5001, map.Values.Count);
    }

    [Fact]
    public void A_sliding_window_reuses_its_slots()
    {
        var map = new SeqMap<string>();
        for (ulong seq = 1; seq <= 100_000; seq++)
        {
            map.Add(seq, "x");
            if (seq > 32)
            {
                Assert.True(map.Remove(seq - 32));
            }
        }

        Assert.Equal(32, map.Count);
        map.Clear();
        Assert.Equal(0, map.Count);
        Assert.False(map.ContainsKey(100_000));
    }
}
