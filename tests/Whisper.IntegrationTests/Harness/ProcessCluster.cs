using System.Globalization;
using System.Runtime.CompilerServices;
using Xunit.Abstractions;

namespace Whisper.IntegrationTests.Harness;

/// <summary>
/// A discovery server process and whisper node processes on loopback. Every wait is bounded; on failure
/// (<see cref="RunAsync"/>) the transcripts' tails go to the test output, and every run saves the full
/// transcripts under the temp directory (its path is printed).
/// </summary>
public sealed class ProcessCluster : IAsyncDisposable
{
    public static readonly TimeSpan Expectation = TimeSpan.FromSeconds(30);

    private readonly ITestOutputHelper? _output;
    private readonly string _name;
    private readonly List<WhisperProcess> _nodes = [];
    private readonly List<WhisperProcess> _pastServers = [];
    private bool _failed;

    public ProcessCluster(ITestOutputHelper? output, [CallerMemberName] string name = "")
    {
        _output = output;
        _name = name;
        Port = FreePort.Udp();
    }

    public int Port { get; }

    public string ServerAddress => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    public WhisperProcess? Server { get; private set; }

    public IReadOnlyList<WhisperProcess> Nodes => _nodes;

    public WhisperProcess this[string label] => _nodes.Single(n => n.Label == label);

    /// <summary>Runs a discovery server on <see cref="Port"/> and waits for it to listen.</summary>
    public async Task StartServerAsync(params string[] extra)
    {
        Server = WhisperProcess.Start("server", ["server", "--port", Port.ToString(CultureInfo.InvariantCulture), "--json", .. extra]);
        await Server.WaitForAsync(l => l.Is("listening"), Expectation, "the server listens");
    }

    /// <summary>
    /// Kills the running server with SIGKILL (it says goodbye to nobody) and waits until it is gone. Its transcript
    /// is kept and saved with the others.
    /// </summary>
    public async Task KillServerAsync()
    {
        var server = Server ?? throw new InvalidOperationException("no server is running");
        await server.KillAsync(Expectation);
        _pastServers.Add(server);
        Server = null;
    }

    /// <summary>
    /// Starts a new server on the same <see cref="Port"/> after <see cref="KillServerAsync"/> and waits for it to
    /// listen; it is labelled "server-2", "server-3", ... (the first one is "server").
    /// </summary>
    public async Task<WhisperProcess> RestartServerAsync(params string[] extra)
    {
        if (Server is not null)
        {
            throw new InvalidOperationException("kill the running server first");
        }

        var label = string.Create(CultureInfo.InvariantCulture, $"server-{_pastServers.Count + 1}");
        Server = WhisperProcess.Start(label, ["server", "--port", Port.ToString(CultureInfo.InvariantCulture), "--json", .. extra]);
        await Server.WaitForAsync(l => l.Is("listening"), Expectation, $"{label} listens");
        return Server;
    }

    /// <summary>Starts a node process without waiting for anything.</summary>
    public WhisperProcess LaunchNode(string name, params string[] extra) => LaunchNodeAs(name, name, extra);

    /// <summary>Starts a node process named <paramref name="name"/> under another <paramref name="label"/> (for a second process claiming a name).</summary>
    public WhisperProcess LaunchNodeAs(string label, string name, params string[] extra) =>
        Launch(label, ["node", "--name", name, "--server", ServerAddress, "--json", "--log-level", "Information", .. extra]);

    /// <summary>Starts a node process that joins through the member listening on <paramref name="peerPort"/> instead of the server.</summary>
    public WhisperProcess LaunchNodeThroughPeer(string label, string name, int peerPort, params string[] extra) =>
        Launch(label, ["node", "--name", name, "--peer", string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{peerPort}"), "--server", ServerAddress, "--json", "--log-level", "Information", .. extra]);

    /// <summary>Starts a node and waits for its <c>joined</c> line.</summary>
    public async Task<WhisperProcess> StartNodeAsync(string name, params string[] extra)
    {
        var node = LaunchNode(name, extra);
        await node.WaitForAsync(l => l.Is("joined"), Expectation, $"{name} joins");
        return node;
    }

    /// <summary>Waits until every node sees every other one as up (from its joined list and member lines).</summary>
    public async Task WaitForFullMembershipAsync(TimeSpan? timeout = null)
    {
        var names = _nodes.Select(n => n.Label).ToHashSet(StringComparer.Ordinal);
        foreach (var node in _nodes)
        {
            await node.WaitUntilAsync(lines => Transcripts.UpMembers(lines).SetEquals(names), timeout ?? Expectation,
                $"{node.Label} sees all of {string.Join(',', names.Order(StringComparer.Ordinal))} up");
        }
    }

    /// <summary>
    /// Waits until each of <paramref name="nodes"/> sees exactly <paramref name="names"/> up (for clusters where
    /// some processes were denied, killed or left, which <see cref="WaitForFullMembershipAsync"/> would count).
    /// </summary>
    public static async Task WaitForMembersAsync(IEnumerable<WhisperProcess> nodes, IReadOnlyCollection<string> names, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var expected = names.ToHashSet(StringComparer.Ordinal);
        foreach (var node in nodes)
        {
            await node.WaitUntilAsync(lines => Transcripts.UpMembers(lines).SetEquals(expected), timeout ?? Expectation,
                $"{node.Label} sees exactly {string.Join(',', expected.Order(StringComparer.Ordinal))} up");
        }
    }

    /// <summary>Runs a test body; on failure prints every transcript tail before rethrowing.</summary>
    public async Task RunAsync(Func<Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            await body();
        }
        catch
        {
            _failed = true;
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<WhisperProcess> all = [.. _pastServers, .. Server is null ? [] : new[] { Server }, .. _nodes];
        await Task.WhenAll(all.Select(p => p.DisposeAsync().AsTask()));
        var directory = Path.Combine(Path.GetTempPath(), "whisper-it", string.Create(CultureInfo.InvariantCulture, $"{_name}-{DateTime.UtcNow:HHmmss}-{Port}"));
        try
        {
            foreach (var p in all)
            {
                p.Save(directory);
            }

            _output?.WriteLine($"transcripts saved in {directory}");
        }
        catch (IOException ex)
        {
            _output?.WriteLine($"could not save transcripts: {ex.Message}");
        }

        if (_failed && _output is not null)
        {
            foreach (var p in all)
            {
                _output.WriteLine(p.Describe(lastLines: 25));
            }
        }
    }

    private WhisperProcess Launch(string label, string[] args)
    {
        if (_nodes.Exists(n => n.Label == label))
        {
            throw new ArgumentException($"a process labelled '{label}' already runs in this cluster", nameof(label));
        }

        var node = WhisperProcess.Start(label, args);
        _nodes.Add(node);
        return node;
    }
}
