using System.Diagnostics;

namespace Whisper.Bench;

/// <summary>
/// One latency sample in microseconds from the send call: until the last of the other members delivered (timestamped by
/// the thread that delivered it), until the send call returned, until the first delivered, and until the harness's wait
/// for it resumed (<see cref="Observed"/>: <see cref="Total"/> plus the thread pool's wake-up of the awaiting harness).
/// </summary>
internal readonly record struct LatencySample(double Total, double Send, double First, double Observed);

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
    private long _lastAt; // when the last of them did
    private readonly ManualResetEventSlim _done = new(false, spinCount: 0); // set by the last delivery of the pending sample
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
    /// how many it took (each bounded by <paramref name="timeout"/>, the loop by JitQuiet's cap). Blocks the calling thread, as <see cref="Sample"/> does.
    /// </summary>
    public int WarmUp(TimeSpan warmup, TimeSpan timeout, CancellationToken ct)
    {
        var end = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var jit = new JitQuiet();
        var i = 0;
        for (; i < 1_000_000 && !jit.Done(end); i++)
        {
            _ = Sample(i, timeout, ct);
        }

        return i;
    }

    /// <summary>
    /// Broadcast number <paramref name="i"/> (by node i % n): its latency, or null when not every member delivered it within
    /// <paramref name="timeout"/>. Blocks the calling thread until the last delivery sets the probe's event (no spinning, so
    /// that the harness leaves both cores to the mesh): the same thread goes on with the next sample. Until 2026-12-04 the
    /// harness awaited a task the last delivery completed, and every sample went through the thread pool: the worker that
    /// ran the continuation woke a second one, which spun on one of the two cores during the next sample
    /// (docs/benchmarks.md, "The harness's own cost").
    /// </summary>
    public LatencySample? Sample(int i, TimeSpan timeout, CancellationToken ct)
    {
        var origin = i % _n;
        var seq = Seqs[origin]++;
        _done.Reset();
        Volatile.Write(ref _remaining, _n - 1);
        Volatile.Write(ref _pendingKey, Key(origin, seq));
        var t0 = Stopwatch.GetTimestamp();
        while (!Broadcast(origin, seq, ct))
        {
            if (Stopwatch.GetElapsedTime(t0) > timeout)
            {
                Volatile.Write(ref _pendingKey, -1);
                return null; // refused throughout: counted as incomplete
            }

            Thread.Yield();
        }

        var sent = Stopwatch.GetTimestamp();
        try
        {
            if (!_done.Wait(timeout, ct))
            {
                return null;
            }

            var observed = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            return new(Stopwatch.GetElapsedTime(t0, Volatile.Read(ref _lastAt)).TotalMicroseconds, Stopwatch.GetElapsedTime(t0, sent).TotalMicroseconds,
                Stopwatch.GetElapsedTime(t0, Volatile.Read(ref _firstAt)).TotalMicroseconds, observed);
        }
        finally
        {
            Volatile.Write(ref _pendingKey, -1);
        }
    }

    /// <summary>The mesh's send, waited for here when it did not complete at once (the process-per-node mesh writes to a pipe).</summary>
    private bool Broadcast(int origin, long seq, CancellationToken ct)
    {
        var send = _mesh.BroadcastAsync(origin, seq, ct);
        return send.IsCompletedSuccessfully ? send.Result : send.AsTask().GetAwaiter().GetResult();
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
            Volatile.Write(ref _lastAt, Stopwatch.GetTimestamp());
            _done.Set();
        }
    }
}
