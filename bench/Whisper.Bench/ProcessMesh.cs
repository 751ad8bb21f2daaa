using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Threading.Channels;
using Whisper.Discovery;
using Whisper.Net;
using Whisper.Protocol.Engine;

namespace Whisper.Bench;

/// <summary>How to start one benchmark node as its own process: the program and the arguments before the subcommand.</summary>
public sealed record ChildLauncher(string FileName, IReadOnlyList<string> PrefixArgs);

/// <summary>Counters of the node processes of <see cref="ProcessWhisperMesh"/>, summed (working set: the largest).</summary>
public readonly record struct NodeCounters(long Sent, long Deliveries, long Datagrams, long Bytes, long Violations, long Allocated, TimeSpan Cpu, long MaxWorkingSet);

/// <summary>
/// Memory of one node process at one report: resident set (<see cref="Environment.WorkingSet"/>); from
/// <see cref="GC.GetGCMemoryInfo()"/> the managed heap after its last collection of any generation
/// (<see cref="GCMemoryInfo.HeapSizeBytes"/>: includes young objects and garbage already promoted to gen2), the old
/// generations (gen2, large and pinned object heaps) after its last generation-2 collection, background or blocking
/// (what survives a full collection, without the young generations: the leak indicator; 0 before the first), and the
/// memory the GC has committed; the number of gen2 collections so far; <see cref="Backlog"/>, the deliveries the node
/// has queued for the parent's pipe and not yet written; and <see cref="LiveAfterFullGc"/>, the managed heap right after
/// the last full compacting collection the parent asked for (<see cref="IExternalCost.CollectFullAsync"/>): the live
/// objects alone, garbage excluded (0 before the first), with <see cref="PooledChunks"/>, the released chunks its engine
/// kept for reuse at that moment.
/// </summary>
public readonly record struct NodeMemory(long WorkingSet, long HeapAfterGc, long OldGenAfterGen2Gc, long Gen2Collections, long Committed, long Backlog, long LiveAfterFullGc = 0, long PooledChunks = 0);

/// <summary>A mesh whose nodes run in other processes and report their own counters.</summary>
public interface IExternalCost
{
    /// <summary>
    /// The nodes' counters at Stopwatch timestamp <paramref name="at"/> (monotonic and shared by the processes of one
    /// machine), interpolated between their reports (every 100 ms); waits at most 10 s for reports past it.
    /// </summary>
    Task<NodeCounters> CountersAtAsync(long at, CancellationToken ct);

    /// <summary>Each node's memory as of its last report at or before <paramref name="at"/>; waits like <see cref="CountersAtAsync"/>.</summary>
    Task<IReadOnlyList<NodeMemory>> MemoryAtAsync(long at, CancellationToken ct);

    /// <summary>
    /// Asks every node for a full blocking, compacting collection; each then reports the heap that survived it in
    /// <see cref="NodeMemory.LiveAfterFullGc"/> of its next reports.
    /// </summary>
    Task CollectFullAsync(CancellationToken ct);
}

/// <summary>
/// The Whisper mesh with one process per node (<c>whisper bench --process-per-node</c>): a discovery server in this
/// process, and N child processes (<see cref="BenchNodeHost"/>) each running one <see cref="WhisperNode"/> on its own
/// UDP socket. The parent talks to each child over its stdin/stdout with one text line per command or delivery, so
/// latency here includes two pipe hops (parent to sender, receiver to parent) that the in-process mesh does not have.
/// Sends, deliveries, wire counters, order violations, allocations, CPU and memory come from the children: each
/// reports them with a timestamp every 100 ms, and a window's figures are interpolated at its start and end, so a
/// backlog in the pipes does not move them.
/// </summary>
public sealed class ProcessWhisperMesh : IMesh, IExternalCost
{
    private readonly DiscoveryServer _server;
    private readonly Process[] _children;
    private readonly Task[] _readers;
    private readonly Report[] _reports;
    private readonly SemaphoreSlim[] _stdinLocks;

    private ProcessWhisperMesh(DiscoveryServer server, Process[] children)
    {
        _server = server;
        _children = children;
        Nodes = children.Length;
        _reports = new Report[Nodes];
        _stdinLocks = [.. Enumerable.Range(0, Nodes).Select(static _ => new SemaphoreSlim(1, 1))];
        _readers = new Task[Nodes];
        for (var i = 0; i < Nodes; i++)
        {
            _reports[i] = new Report();
            var node = i;
            _readers[i] = Task.Run(() => ReadAsync(node));
        }
    }

    public string Name => "whisper";

    public int Nodes { get; }

    public Action<int, int, long>? Delivered { get; set; }

    public long OrderViolations => _reports.Sum(static r => r.Latest().Violations);

    /// <summary>Starts the server and the children, and waits (at most 60 s) until every child sees all N members up.</summary>
    public static async Task<ProcessWhisperMesh> StartAsync(ChildLauncher launcher, int nodes, int size, int seed, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(launcher);
        var server = await DiscoveryServer.StartAsync(
            new DiscoveryServerOptions { Bind = new IPEndPoint(IPAddress.Loopback, 0), Engine = new DiscoveryOptions { MaxMembers = nodes } },
            null, TimeProvider.System, ct).ConfigureAwait(false);
        var children = new Process[nodes];
        for (var i = 0; i < nodes; i++)
        {
            var info = new ProcessStartInfo(launcher.FileName)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = false,
                UseShellExecute = false,
            };
            foreach (var a in launcher.PrefixArgs)
            {
                info.ArgumentList.Add(a);
            }

            foreach (var a in new[] { "bench-node", "--index", Str(i), "--nodes", Str(nodes), "--size", Str(size), "--seed", Str(seed + i), "--server", server.LocalEndpoint.ToString() })
            {
                info.ArgumentList.Add(a);
            }

            children[i] = Process.Start(info) ?? throw new InvalidOperationException($"could not start {launcher.FileName}");
        }

        var mesh = new ProcessWhisperMesh(server, children);
        try
        {
            await Task.WhenAll(mesh._reports.Select(static r => r.Ready.Task)).WaitAsync(TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await mesh.DisposeAsync().ConfigureAwait(false);
            throw new TimeoutException("the Whisper group of child processes did not form within 60 s");
        }

        return mesh;
    }

    public void SetLoss(double probability)
    {
        for (var i = 0; i < Nodes; i++)
        {
            WriteLine(i, string.Create(CultureInfo.InvariantCulture, $"l {probability}"));
        }
    }

    public (long Datagrams, long Bytes) WireCounters() =>
        (_reports.Sum(static r => r.Latest().Datagrams), _reports.Sum(static r => r.Latest().Bytes));

    public async Task<NodeCounters> CountersAtAsync(long at, CancellationToken ct)
    {
        await WaitForReportsPastAsync(at, ct).ConfigureAwait(false);
        var sum = default(NodeCounters);
        foreach (var r in _reports)
        {
            var c = r.At(at);
            sum = new NodeCounters(sum.Sent + c.Sent, sum.Deliveries + c.Deliveries, sum.Datagrams + c.Datagrams, sum.Bytes + c.Bytes,
                sum.Violations + c.Violations, sum.Allocated + c.Allocated, sum.Cpu + c.Cpu, Math.Max(sum.MaxWorkingSet, c.MaxWorkingSet));
        }

        return sum;
    }

    public async Task<IReadOnlyList<NodeMemory>> MemoryAtAsync(long at, CancellationToken ct)
    {
        await WaitForReportsPastAsync(at, ct).ConfigureAwait(false);
        return [.. _reports.Select(r => r.MemoryAt(at))];
    }

    private async Task WaitForReportsPastAsync(long at, CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (_reports.Any(r => r.Latest().At < at))
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException("a bench node did not report its counters within 10 s");
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Hands the broadcast to the child; the child's own back-pressure (it reads the next line only after the send was accepted) fills the pipe.</summary>
    public async ValueTask<bool> BroadcastAsync(int origin, long seq, CancellationToken ct)
    {
        var gate = _stdinLocks[origin];
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var stdin = _children[origin].StandardInput;
            await stdin.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"b {seq}").AsMemory(), ct).ConfigureAwait(false);
            await stdin.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }

        return true;
    }

    public Task CollectFullAsync(CancellationToken ct)
    {
        for (var i = 0; i < _children.Length; i++)
        {
            WriteLine(i, "g");
        }

        return Task.CompletedTask;
    }

    private void WriteLine(int node, string line)
    {
        var gate = _stdinLocks[node];
        gate.Wait();
        try
        {
            _children[node].StandardInput.WriteLine(line);
            _children[node].StandardInput.Flush();
        }
        catch (IOException)
        {
            // the child is gone; its reader reports it
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task ReadAsync(int node)
    {
        var report = _reports[node];
        var stdout = _children[node].StandardOutput;
        try
        {
            while (await stdout.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                var parts = line.Split(' ');
                switch (parts[0])
                {
                    case "d" when parts.Length == 3:
                        Delivered?.Invoke(node, int.Parse(parts[1], CultureInfo.InvariantCulture), long.Parse(parts[2], CultureInfo.InvariantCulture));
                        break;
                    case "w" when parts.Length >= 10:
                        var v = new long[16]; // the memory fields after the working set are absent in older children
                        for (var k = 0; k < Math.Min(parts.Length - 1, v.Length); k++)
                        {
                            v[k] = long.Parse(parts[k + 1], CultureInfo.InvariantCulture);
                        }

                        report.Add(new Sample(v[0], new NodeCounters(v[1], v[2], v[3], v[4], v[5], v[6], TimeSpan.FromTicks(v[7]), v[8]),
                            new NodeMemory(v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15])));
                        break;
                    case "ready":
                        report.Ready.TrySetResult();
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or FormatException)
        {
        }

        report.Ready.TrySetException(new InvalidOperationException($"bench node {node} exited before it was ready"));
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = 0; i < Nodes; i++)
        {
            WriteLine(i, "q");
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        foreach (var child in _children)
        {
            try
            {
                await child.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                child.Kill(entireProcessTree: true); // bounded: a child that does not leave in 10 s is ended
            }
        }

        try
        {
            await Task.WhenAll(_readers).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        foreach (var child in _children)
        {
            child.Dispose();
        }

        foreach (var gate in _stdinLocks)
        {
            gate.Dispose();
        }

        await _server.DisposeAsync().ConfigureAwait(false);
    }

    private static string Str(int value) => value.ToString(CultureInfo.InvariantCulture);

    private readonly record struct Sample(long At, NodeCounters Counters, NodeMemory Memory);

    /// <summary>One child's timestamped reports (the most recent 4,096: over 6 minutes).</summary>
    private sealed class Report
    {
        private readonly List<Sample> _samples = [];

        public TaskCompletionSource Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Add(Sample sample)
        {
            lock (_samples)
            {
                if (_samples.Count == 4096)
                {
                    _samples.RemoveAt(0);
                }

                _samples.Add(sample);
            }
        }

        public (long At, long Violations, long Datagrams, long Bytes) Latest()
        {
            lock (_samples)
            {
                return _samples.Count == 0 ? (long.MinValue, 0, 0, 0) : (_samples[^1].At, _samples[^1].Counters.Violations, _samples[^1].Counters.Datagrams, _samples[^1].Counters.Bytes);
            }
        }

        /// <summary>Memory of the last report at or before <paramref name="at"/> (the first report if none is).</summary>
        public NodeMemory MemoryAt(long at)
        {
            lock (_samples)
            {
                var last = _samples.FindLastIndex(s => s.At <= at);
                return _samples[Math.Max(last, 0)].Memory;
            }
        }

        /// <summary>Counters at <paramref name="at"/>, linear between the reports around it.</summary>
        public NodeCounters At(long at)
        {
            lock (_samples)
            {
                var after = _samples.FindIndex(s => s.At >= at);
                if (after <= 0)
                {
                    return _samples[Math.Max(after, 0)].Counters;
                }

                var (a, b) = (_samples[after - 1], _samples[after]);
                var f = b.At == a.At ? 1 : (at - a.At) / (double)(b.At - a.At);
                long L(long x, long y) => x + (long)Math.Round((y - x) * f);
                var (ca, cb) = (a.Counters, b.Counters);
                return new NodeCounters(L(ca.Sent, cb.Sent), L(ca.Deliveries, cb.Deliveries), L(ca.Datagrams, cb.Datagrams), L(ca.Bytes, cb.Bytes),
                    L(ca.Violations, cb.Violations), L(ca.Allocated, cb.Allocated), TimeSpan.FromTicks(L(ca.Cpu.Ticks, cb.Cpu.Ticks)),
                    Math.Max(ca.MaxWorkingSet, cb.MaxWorkingSet));
            }
        }
    }
}

/// <summary>
/// One node of <see cref="ProcessWhisperMesh"/>, run by <c>whisper bench-node</c>. Reads commands on stdin
/// (<c>b SEQ</c> broadcast, <c>l P</c> receive loss, <c>q</c> leave and exit); writes <c>ready</c> once it sees all
/// members up, <c>d ORIGIN SEQ</c> per delivery of another node's broadcast (checking per-origin order itself), and
/// every 100 ms <c>w TIMESTAMP SENT DELIVERED DATAGRAMS BYTES VIOLATIONS ALLOCATED CPU_TICKS WORKING_SET HEAP_AFTER_GC
/// OLD_GENERATIONS_AFTER_GEN2_GC GEN2_COLLECTIONS GC_COMMITTED BACKLOG</c> (see <see cref="NodeMemory"/>).
/// </summary>
public static class BenchNodeHost
{
    private static readonly TimeSpan ReportEvery = TimeSpan.FromMilliseconds(100);

    public static async Task<int> RunAsync(int index, int nodes, int size, int seed, IPEndPoint server, TextReader input, TextWriter output, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        var transport = new CountingLossTransport(UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0)), seed);
        await using var node = await WhisperNode.JoinAsync(
            new WhisperNodeOptions { Name = $"n{index}", Server = server, Seed = (ulong)seed },
            transport, null, null, ct).ConfigureAwait(false);

        var lines = Channel.CreateUnbounded<(char Kind, long A, long B)>(new UnboundedChannelOptions { SingleReader = true });
        var counts = new Counts(transport);
        var last = new long[nodes];
        Array.Fill(last, -1);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var writer = Task.Run(() => WriteLinesAsync(lines.Reader, output, counts, stop.Token), CancellationToken.None);
        var reader = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in node.Events.WithCancellation(stop.Token).ConfigureAwait(false))
                {
                    if (e is ChatMessage { To: null } m && Payload.TryReadText(m.Text, out var origin, out var seq) && origin != index && origin < nodes)
                    {
                        if (seq <= last[origin])
                        {
                            Interlocked.Increment(ref counts.Violations);
                        }

                        last[origin] = seq;
                        Interlocked.Increment(ref counts.Delivered);
                        Interlocked.Increment(ref counts.Pending);
                        lines.Writer.TryWrite(('d', origin, seq));
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);

        var deadline = Stopwatch.GetTimestamp() + (30 * Stopwatch.Frequency);
        while (node.Members.Count(static m => m.Status == MemberStatus.Up) < nodes)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                await Console.Error.WriteLineAsync($"bench node {index}: the group did not form within 30 s").ConfigureAwait(false);
                return 1;
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }

        lines.Writer.TryWrite(('r', 0, 0));
        var reporter = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(ReportEvery);
            try
            {
                do
                {
                    lines.Writer.TryWrite(('w', 0, 0));
                }
                while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false));
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);

        while (await input.ReadLineAsync(ct).ConfigureAwait(false) is { } command && command != "q")
        {
            if (command.StartsWith("b ", StringComparison.Ordinal))
            {
                var seq = long.Parse(command.AsSpan(2), CultureInfo.InvariantCulture);
                await node.BroadcastAsync(Payload.Text(index, seq, size), ct).ConfigureAwait(false);
                Interlocked.Increment(ref counts.Sent);
            }
            else if (command.StartsWith("l ", StringComparison.Ordinal))
            {
                transport.Loss = double.Parse(command.AsSpan(2), CultureInfo.InvariantCulture);
            }
            else if (command == "g")
            {
                // What is live, without the garbage a concurrent collector has not reclaimed yet: a full blocking,
                // compacting collection (twice, so objects kept by finalizers the first one ran are gone too).
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                GC.WaitForPendingFinalizers();
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                var live = GC.GetTotalMemory(forceFullCollection: false);
                Interlocked.Exchange(ref counts.Pooled, (await node.GetStatsAsync(ct).ConfigureAwait(false)).PooledChunks);
                Interlocked.Exchange(ref counts.Live, live);
            }
        }

        await stop.CancelAsync().ConfigureAwait(false);
        lines.Writer.TryComplete();
        await Task.WhenAll(reader, writer, reporter).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
        return 0;
    }

    private sealed class Counts(CountingLossTransport transport)
    {
        public long Sent;
        public long Delivered;
        public long Violations;
        public long Pending; // 'd' lines queued for the writer
        public long Live; // the heap after the last full collection the parent asked for ('g'), 0 before
        public long Pooled; // the engine's pooled chunks at that collection

        public CountingLossTransport Transport => transport;
    }

    private static async Task WriteLinesAsync(ChannelReader<(char Kind, long A, long B)> lines, TextWriter output, Counts counts, CancellationToken ct)
    {
        var buffer = new char[32];
        try
        {
            while (await lines.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                while (lines.TryRead(out var line))
                {
                    switch (line.Kind)
                    {
                        case 'd':
                            output.Write("d ");
                            Write(output, buffer, line.A);
                            output.Write(' ');
                            Write(output, buffer, line.B);
                            output.Write('\n');
                            Interlocked.Decrement(ref counts.Pending);
                            break;
                        case 'r':
                            output.Write("ready\n");
                            break;
                        case 'w':
                            output.Write('w');
                            var gc = GC.GetGCMemoryInfo();
                            var (background, blocking) = (GC.GetGCMemoryInfo(GCKind.Background), GC.GetGCMemoryInfo(GCKind.FullBlocking));
                            var full = background.Index > blocking.Index ? background : blocking; // the later of the two
                            var old = full.Index == 0 ? 0 : OldGenerations(full.GenerationInfo);
                            foreach (var value in (ReadOnlySpan<long>)[
                                Stopwatch.GetTimestamp(), Interlocked.Read(ref counts.Sent), Interlocked.Read(ref counts.Delivered),
                                counts.Transport.Datagrams, counts.Transport.Bytes, Interlocked.Read(ref counts.Violations),
                                GC.GetTotalAllocatedBytes(false), Environment.CpuUsage.TotalTime.Ticks, Environment.WorkingSet,
                                gc.HeapSizeBytes, old, GC.CollectionCount(2), gc.TotalCommittedBytes, Interlocked.Read(ref counts.Pending),
                                Interlocked.Read(ref counts.Live), Interlocked.Read(ref counts.Pooled)])
                            {
                                output.Write(' ');
                                Write(output, buffer, value);
                            }

                            output.Write('\n');
                            break;
                    }
                }

                await output.FlushAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }

        await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Generation 2, the large and the pinned object heap after the collection.</summary>
    private static long OldGenerations(ReadOnlySpan<GCGenerationInfo> generations)
    {
        long sum = 0;
        for (var g = 2; g < generations.Length; g++)
        {
            sum += generations[g].SizeAfterBytes;
        }

        return sum;
    }

    private static void Write(TextWriter output, char[] buffer, long value)
    {
        value.TryFormat(buffer, out var n, default, CultureInfo.InvariantCulture);
        output.Write(buffer, 0, n);
    }
}

/// <summary>
/// The node processes' memory over a throughput window (<c>--process-per-node</c>): a point every <see cref="Interval"/>,
/// each holding every node's <see cref="NodeMemory"/>. Reported as the largest node's resident memory and managed heap at
/// the start, the end and their maximum, and the steepest per-node least-squares slope over the second half of the window
/// (the warm-up of GC tuning and tiered JIT is in the first half; a plateau has a slope near 0).
/// </summary>
public sealed class MemorySeries
{
    private const double Mb = 1024 * 1024;
    private readonly List<(double Seconds, NodeMemory[] Nodes)> _points = [];

    /// <summary>Every 10 s, or a tenth of windows shorter than 100 s.</summary>
    public static TimeSpan Interval(TimeSpan window) =>
        window >= TimeSpan.FromSeconds(100) ? TimeSpan.FromSeconds(10) : window / 10;

    /// <summary>
    /// How often the nodes are asked for a full collection to measure their live heap: every 60 s in windows of at least
    /// 5 minutes (a blocking collection of a node's heap takes milliseconds), never in shorter ones.
    /// </summary>
    public static TimeSpan? CollectInterval(TimeSpan window) =>
        window >= TimeSpan.FromMinutes(5) ? TimeSpan.FromSeconds(60) : null;

    public int Count => _points.Count;

    public void Add(double seconds, IReadOnlyList<NodeMemory> nodes) => _points.Add((seconds, [.. nodes]));

    /// <summary>Least-squares slope of y over x (0 with fewer than 2 distinct x).</summary>
    public static double Slope(IReadOnlyList<(double X, double Y)> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count < 2)
        {
            return 0;
        }

        var mx = points.Average(static p => p.X);
        var my = points.Average(static p => p.Y);
        double sxy = 0, sxx = 0;
        foreach (var (x, y) in points)
        {
            sxy += (x - mx) * (y - my);
            sxx += (x - mx) * (x - mx);
        }

        return sxx == 0 ? 0 : sxy / sxx;
    }

    /// <summary>
    /// The steepest slope, in MB per minute, of any node's <paramref name="value"/> (bytes) over the points in the second
    /// half of the series (time at least half of the last point's).
    /// </summary>
    public double SecondHalfSlopeMbPerMin(Func<NodeMemory, long> value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (_points.Count < 2)
        {
            return 0;
        }

        var half = _points[^1].Seconds / 2;
        var late = _points.Where(p => p.Seconds >= half).ToList();
        var nodes = late.Min(static p => p.Nodes.Length);
        var steepest = double.NegativeInfinity;
        for (var i = 0; i < nodes; i++)
        {
            var slope = Slope([.. late.Select(p => (p.Seconds / 60, value(p.Nodes[i]) / Mb))]);
            steepest = Math.Max(steepest, slope);
        }

        return nodes == 0 ? 0 : steepest;
    }

    private double Largest(int point, Func<NodeMemory, long> value) => _points[point].Nodes.Length == 0 ? 0 : _points[point].Nodes.Max(value) / Mb;

    /// <summary>
    /// The records: node_rss_mb_*, node_heap_mb_*, node_gen2_mb_* and node_gc_committed_mb_* (start, end, max,
    /// slope_second_half_mb_per_min), node_gc_gen2_min, node_report_backlog_max.
    /// </summary>
    public IEnumerable<BenchRecord> Records(string scenario)
    {
        if (_points.Count == 0)
        {
            yield break;
        }

        foreach (var (name, value) in new (string, Func<NodeMemory, long>)[]
        {
            ("rss", static m => m.WorkingSet), ("heap", static m => m.HeapAfterGc), ("gen2", static m => m.OldGenAfterGen2Gc),
            ("gc_committed", static m => m.Committed),
        })
        {
            yield return new(scenario, $"node_{name}_mb_start", Largest(0, value), "MB");
            yield return new(scenario, $"node_{name}_mb_end", Largest(_points.Count - 1, value), "MB");
            yield return new(scenario, $"node_{name}_mb_max", Enumerable.Range(0, _points.Count).Max(i => Largest(i, value)), "MB");
            yield return new(scenario, $"node_{name}_mb_slope_second_half_mb_per_min", SecondHalfSlopeMbPerMin(value), "MB/min");
        }

        foreach (var record in LiveRecords(scenario))
        {
            yield return record;
        }

        var gen2 = Enumerable.Range(0, Math.Min(_points[0].Nodes.Length, _points[^1].Nodes.Length))
            .Select(i => _points[^1].Nodes[i].Gen2Collections - _points[0].Nodes[i].Gen2Collections).DefaultIfEmpty(0);
        yield return new(scenario, "node_gc_gen2_min", gen2.Min(), "count"); // gen2 collections in the window, the node with fewest
        yield return new(scenario, "node_report_backlog_max", _points.Max(static p => p.Nodes.Length == 0 ? 0 : p.Nodes.Max(static m => m.Backlog)), "lines");
    }

    /// <summary>
    /// Per node, the live heap after each full collection the parent asked for: a point where a node's
    /// <see cref="NodeMemory.LiveAfterFullGc"/> first shows a new value (seconds into the window, MB).
    /// </summary>
    public IReadOnlyList<IReadOnlyList<(double Seconds, double Mb)>> LivePoints()
    {
        var nodes = _points.Count == 0 ? 0 : _points.Min(static p => p.Nodes.Length);
        var result = new List<IReadOnlyList<(double, double)>>(nodes);
        for (var i = 0; i < nodes; i++)
        {
            var points = new List<(double, double)>();
            var last = _points[0].Nodes[i].LiveAfterFullGc; // a collection before the window (at rest) is not one of its points
            foreach (var (seconds, memory) in _points)
            {
                var live = memory[i].LiveAfterFullGc;
                if (live > 0 && live != last)
                {
                    points.Add((seconds, live / Mb));
                    last = live;
                }
            }

            result.Add(points);
        }

        return result;
    }

    /// <summary>
    /// node_live_heap_mb_first/last/max (the largest node's), node_live_heap_slope_mb_per_min (the steepest node's
    /// least-squares slope over all its points) and node_live_heap_points (the fewest any node has); nothing when no
    /// full collection was asked for.
    /// </summary>
    private IEnumerable<BenchRecord> LiveRecords(string scenario)
    {
        var nodes = LivePoints();
        if (nodes.Count == 0 || nodes.Any(static n => n.Count == 0))
        {
            yield break;
        }

        yield return new(scenario, "node_live_heap_mb_first", nodes.Max(static n => n[0].Mb), "MB");
        yield return new(scenario, "node_live_heap_mb_last", nodes.Max(static n => n[^1].Mb), "MB");
        yield return new(scenario, "node_live_heap_mb_max", nodes.Max(static n => n.Max(static p => p.Mb)), "MB");
        yield return new(scenario, "node_live_heap_slope_mb_per_min", nodes.Max(static n => Slope([.. n.Select(static p => (p.Seconds / 60, p.Mb))])), "MB/min");
        yield return new(scenario, "node_live_heap_points", nodes.Min(static n => n.Count), "count");
    }

    /// <summary>
    /// One line for people: per point, seconds into the window and the largest node's resident memory / managed heap after
    /// its last GC / old generations after its last gen2 GC / GC committed (MB), e.g. <c>0s 82.1/11.4/3.5/25.0 ...</c>.
    /// </summary>
    public string Line()
    {
        var sb = new System.Text.StringBuilder("memory (largest node, MB; t rss/heap/gen2/committed):");
        for (var i = 0; i < _points.Count; i++)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $" {_points[i].Seconds:0.#}s {Largest(i, static m => m.WorkingSet):0.0}/{Largest(i, static m => m.HeapAfterGc):0.0}/{Largest(i, static m => m.OldGenAfterGen2Gc):0.0}/{Largest(i, static m => m.Committed):0.0}");
        }

        return sb.ToString();
    }
}
