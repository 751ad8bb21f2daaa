namespace Whisper.Simulation;

/// <summary>
/// The simulator's only source of randomness: xoshiro256** seeded through SplitMix64. One seed draws the whole
/// faulty world; independent concerns (network, workload, fault plan, engine seeds) use <see cref="Derive"/>d
/// streams so that, for example, a change in how the workload draws does not shift every network fault.
/// Never use <see cref="Random"/> or <c>Random.Shared</c> in the simulator.
/// </summary>
public sealed class SimRandom
{
    private ulong _s0;
    private ulong _s1;
    private ulong _s2;
    private ulong _s3;

    public SimRandom(ulong seed)
    {
        var sm = seed;
        _s0 = SplitMix(ref sm);
        _s1 = SplitMix(ref sm);
        _s2 = SplitMix(ref sm);
        _s3 = SplitMix(ref sm);
    }

    /// <summary>An independent stream for one concern of one run, identified by a label.</summary>
    public static SimRandom Derive(ulong seed, string stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new SimRandom(Mix(seed ^ Mix(StableHash(stream))));
    }

    public ulong NextUInt64()
    {
        var result = RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, bound) without modulo bias (Lemire's multiply-high).</summary>
    public int NextInt(int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bound);
        return (int)Math.BigMul(NextUInt64(), (ulong)bound, out _);
    }

    /// <summary>Uniform in [min, maxExclusive).</summary>
    public int NextInt(int min, int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxExclusive, min);
        return min + NextInt(maxExclusive - min);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [min, max).</summary>
    public double NextDouble(double min, double max) => min + (NextDouble() * (max - min));

    /// <summary>True with probability <paramref name="p"/>; draws nothing when p is 0 or 1.</summary>
    public bool Chance(double p) => p >= 1 || (p > 0 && NextDouble() < p);

    /// <summary>Uniform in [min, max] at tick resolution.</summary>
    public TimeSpan NextTime(TimeSpan min, TimeSpan max)
    {
        if (max <= min)
        {
            return min;
        }

        var span = (ulong)(max.Ticks - min.Ticks) + 1;
        return TimeSpan.FromTicks(min.Ticks + (long)Math.BigMul(NextUInt64(), span, out _));
    }

    /// <summary>Exponentially distributed (a Poisson process's gaps) with the given mean, capped at 20 means.</summary>
    public TimeSpan NextExponential(TimeSpan mean)
    {
        var u = NextDouble();
        var factor = Math.Min(-Math.Log(1 - u), 20);
        return TimeSpan.FromTicks((long)(mean.Ticks * factor));
    }

    public T Pick<T>(IReadOnlyList<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        return items[NextInt(items.Count)];
    }

    public void Shuffle<T>(IList<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>SplitMix64 finalizer: a good 64-bit mixing function.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>FNV-1a over the UTF-16 code units: stable across processes (unlike string.GetHashCode).</summary>
    public static ulong StableHash(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var h = 0xcbf29ce484222325UL;
        foreach (var c in text)
        {
            h = (h ^ c) * 0x100000001b3UL;
        }

        return h;
    }

    private static ulong SplitMix(ref ulong state) => Mix(state += 0x9E3779B97F4A7C15UL);

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}
