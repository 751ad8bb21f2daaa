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

/// <summary>Costs measured in other processes (the nodes of <see cref="ProcessWhisperMesh"/>), summed.</summary>
public interface IExternalCost
{
    /// <summary>Bytes the node processes allocated and CPU time they used so far (as last reported).</summary>
    (long AllocatedBytes, TimeSpan Cpu) Cost();
}

/// <summary>
/// The Whisper mesh with one process per node (<c>whisper bench --process-per-node</c>): a discovery server in this
/// process, and N child processes (<see cref="BenchNodeHost"/>) each running one <see cref="WhisperNode"/> on its own
/// UDP socket. The parent talks to each child over its stdin/stdout with one text line per command or delivery, so
/// latency here includes two pipe hops (parent to sender, receiver to parent) that the in-process mesh does not have.
/// Wire counters, order violations, allocations and CPU come from the children (reported every 20 ms).
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

    public long OrderViolations => _reports.Sum(static r => Volatile.Read(ref r.Violations));

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
        (_reports.Sum(static r => Volatile.Read(ref r.Datagrams)), _reports.Sum(static r => Volatile.Read(ref r.Bytes)));

    public (long AllocatedBytes, TimeSpan Cpu) Cost() =>
        (_reports.Sum(static r => Volatile.Read(ref r.Allocated)), TimeSpan.FromTicks(_reports.Sum(static r => Volatile.Read(ref r.CpuTicks))));

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
                    case "w" when parts.Length == 6:
                        Volatile.Write(ref report.Datagrams, long.Parse(parts[1], CultureInfo.InvariantCulture));
                        Volatile.Write(ref report.Bytes, long.Parse(parts[2], CultureInfo.InvariantCulture));
                        Volatile.Write(ref report.Violations, long.Parse(parts[3], CultureInfo.InvariantCulture));
                        Volatile.Write(ref report.Allocated, long.Parse(parts[4], CultureInfo.InvariantCulture));
                        Volatile.Write(ref report.CpuTicks, long.Parse(parts[5], CultureInfo.InvariantCulture));
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

    private sealed class Report
    {
        public readonly TaskCompletionSource Ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long Datagrams;
        public long Bytes;
        public long Violations;
        public long Allocated;
        public long CpuTicks;
    }
}

/// <summary>
/// One node of <see cref="ProcessWhisperMesh"/>, run by <c>whisper bench-node</c>. Reads commands on stdin
/// (<c>b SEQ</c> broadcast, <c>l P</c> receive loss, <c>q</c> leave and exit); writes <c>ready</c> once it sees all
/// members up, <c>d ORIGIN SEQ</c> per delivery of another node's broadcast (checking per-origin order itself), and
/// every 20 ms <c>w DATAGRAMS BYTES VIOLATIONS ALLOCATED CPU_TICKS</c>.
/// </summary>
public static class BenchNodeHost
{
    public static async Task<int> RunAsync(int index, int nodes, int size, int seed, IPEndPoint server, TextReader input, TextWriter output, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        var transport = new CountingLossTransport(UdpDatagramTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0)), seed);
        await using var node = await WhisperNode.JoinAsync(
            new WhisperNodeOptions { Name = $"n{index}", Server = server, Seed = (ulong)seed },
            transport, null, null, ct).ConfigureAwait(false);

        var lines = Channel.CreateUnbounded<(char Kind, long A, long B)>(new UnboundedChannelOptions { SingleReader = true });
        var last = new long[nodes];
        Array.Fill(last, -1);
        long violations = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var writer = Task.Run(() => WriteLinesAsync(lines.Reader, output, () => (transport, Interlocked.Read(ref violations)), stop.Token), CancellationToken.None);
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
                            Interlocked.Increment(ref violations);
                        }

                        last[origin] = seq;
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
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
            try
            {
                while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
                {
                    lines.Writer.TryWrite(('w', 0, 0));
                }
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
            }
            else if (command.StartsWith("l ", StringComparison.Ordinal))
            {
                transport.Loss = double.Parse(command.AsSpan(2), CultureInfo.InvariantCulture);
            }
        }

        await stop.CancelAsync().ConfigureAwait(false);
        lines.Writer.TryComplete();
        await Task.WhenAll(reader, writer, reporter).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
        return 0;
    }

    private static async Task WriteLinesAsync(ChannelReader<(char Kind, long A, long B)> lines, TextWriter output, Func<(CountingLossTransport Transport, long Violations)> counters, CancellationToken ct)
    {
        var buffer = new char[32];
        using var process = Process.GetCurrentProcess();
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
                            break;
                        case 'r':
                            output.Write("ready\n");
                            break;
                        case 'w':
                            var (transport, violations) = counters();
                            process.Refresh();
                            output.Write("w ");
                            Write(output, buffer, transport.Datagrams);
                            output.Write(' ');
                            Write(output, buffer, transport.Bytes);
                            output.Write(' ');
                            Write(output, buffer, violations);
                            output.Write(' ');
                            Write(output, buffer, GC.GetTotalAllocatedBytes(false));
                            output.Write(' ');
                            Write(output, buffer, process.TotalProcessorTime.Ticks);
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

    private static void Write(TextWriter output, char[] buffer, long value)
    {
        value.TryFormat(buffer, out var n, default, CultureInfo.InvariantCulture);
        output.Write(buffer, 0, n);
    }
}
