using System.Diagnostics;

namespace Whisper.Bench;

/// <summary>One latency sample in microseconds: until the last of the other members delivered, until the send call returned, until the first delivered.</summary>
internal readonly record struct LatencySample(double Total, double Send, double First);

/// <summary>
/// Takes latency samples on one mesh: one broadcast at a time, senders rotating, timed from the send call until the
/// other n-1 members delivered it. Owns the mesh's <see cref="IMesh.Delivered"/> handler (and counts every delivery for
/// the throughput phase) and the next sequence number of every node.
/// </summary>
internal sealed class LatencyProbe
{
    private readonly IMesh _mesh;
    private readonly int _n;
    private long _pendingKey = -1;
    private int _remaining;
    private long _firstAt; // when the first of the n-1 members delivered the pending sample
    private TaskCompletionSource? _done;
    private long _deliveries;

    public LatencyProbe(IMesh mesh)
    {
        _mesh = mesh;
        _n = mesh.Nodes;
        Seqs = new long[_n];
        mesh.Delivered = OnDelivered;
    }

    /// <summary>The next sequence number of each node (the throughput phase goes on from here).</summary>
    public long[] Seqs { get; }

    /// <summary>Deliveries at members other than the origin so far, samples or not.</summary>
    public long Deliveries => Interlocked.Read(ref _deliveries);

    /// <summary>
    /// Untimed samples for <paramref name="warmup"/> and then until this process's JIT has been quiet for a while (at most
    /// <see cref="JitQuiet.MaxExtra"/> longer), so that the samples after it measure tiered-up code and warm caches; returns
    /// how many it took (each bounded by <paramref name="timeout"/>, the loop by JitQuiet's cap).
    /// </summary>
    public async Task<int> WarmUpAsync(TimeSpan warmup, TimeSpan timeout, CancellationToken ct)
    {
        var end = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var jit = new JitQuiet();
        var i = 0;
        for (; i < 1_000_000 && !jit.Done(end); i++)
        {
            _ = await SampleAsync(i, timeout, ct).ConfigureAwait(false);
        }

        return i;
    }

    /// <summary>Broadcast number <paramref name="i"/> (by node i % n): its latency, or null when not every member delivered it within <paramref name="timeout"/>.</summary>
    public async Task<LatencySample?> SampleAsync(int i, TimeSpan timeout, CancellationToken ct)
    {
        var origin = i % _n;
        var seq = Seqs[origin]++;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _done, done);
        Volatile.Write(ref _remaining, _n - 1);
        Volatile.Write(ref _pendingKey, Key(origin, seq));
        var t0 = Stopwatch.GetTimestamp();
        while (!await _mesh.BroadcastAsync(origin, seq, ct).ConfigureAwait(false))
        {
            await Task.Yield();
        }

        var sent = Stopwatch.GetTimestamp();
        try
        {
            await done.Task.WaitAsync(timeout, ct).ConfigureAwait(false);
            return new(Stopwatch.GetElapsedTime(t0).TotalMicroseconds, Stopwatch.GetElapsedTime(t0, sent).TotalMicroseconds,
                Stopwatch.GetElapsedTime(t0, Volatile.Read(ref _firstAt)).TotalMicroseconds);
        }
        catch (TimeoutException)
        {
            return null;
        }
        finally
        {
            Volatile.Write(ref _pendingKey, -1);
        }
    }

    private static long Key(int origin, long seq) => (long)origin << 40 | seq;

    private void OnDelivered(int receiver, int origin, long seq)
    {
        Interlocked.Increment(ref _deliveries);
        if (Key(origin, seq) != Volatile.Read(ref _pendingKey))
        {
            return;
        }

        var left = Interlocked.Decrement(ref _remaining);
        if (left == _n - 2)
        {
            Volatile.Write(ref _firstAt, Stopwatch.GetTimestamp());
        }

        if (left == 0)
        {
            Volatile.Read(ref _done)?.TrySetResult();
        }
    }
}
