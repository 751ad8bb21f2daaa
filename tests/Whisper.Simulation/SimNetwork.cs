namespace Whisper.Simulation;

/// <summary>
/// The fault model of one directed link. A straggler is a datagram held up far longer than the jitter (a stale
/// retransmission or duplicate that shows up long after the fact): with probability <see cref="Straggle"/> it gets
/// up to <see cref="StraggleDelay"/> extra.
/// </summary>
public sealed record LinkFaults(double Loss, double Duplication, TimeSpan DelayBase, TimeSpan DelayJitter, double Straggle = 0, TimeSpan StraggleDelay = default)
{
    public static LinkFaults Perfect { get; } = new(0, 0, TimeSpan.Zero, TimeSpan.Zero);
}

/// <summary>
/// The simulated network between processes 0..n-1 (Whisper nodes and the discovery server). Per directed link:
/// loss, duplication and a delay of base + uniform jitter, so datagrams overtake each other. Partitions put
/// processes in groups that cannot talk (<see cref="Partition"/>, <see cref="Isolate"/>, <see cref="Cut"/>) until
/// <see cref="Heal"/>. Reachability is decided when a datagram is sent; a datagram in flight still arrives.
/// Pure: <see cref="Route"/> only draws from the network's own random stream.
/// </summary>
public sealed class SimNetwork
{
    private readonly LinkFaults[] _links;
    private readonly int[] _group;
    private readonly HashSet<(int, int)> _cuts = [];
    private readonly SimRandom _random;

    public SimNetwork(int processes, SimRandom random)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(processes);
        ArgumentNullException.ThrowIfNull(random);
        Processes = processes;
        _random = random;
        _links = new LinkFaults[processes * processes];
        Array.Fill(_links, LinkFaults.Perfect);
        _group = new int[processes];
    }

    public int Processes { get; }

    /// <summary>When false, loss and duplication are off on every link (delay and reordering stay).</summary>
    public bool FaultsEnabled { get; set; } = true;

    public bool IsPartitioned => _cuts.Count > 0 || _group.Any(g => g != 0);

    public long DatagramsSent { get; private set; }
    public long DatagramsLost { get; private set; }
    public long DatagramsDuplicated { get; private set; }
    public long DatagramsBlocked { get; private set; }
    public long DatagramsStraggling { get; private set; }

    public LinkFaults this[int from, int to]
    {
        get => _links[(from * Processes) + to];
        set => _links[(from * Processes) + to] = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>Cuts both directions between two processes.</summary>
    public void Cut(int a, int b)
    {
        _cuts.Add((a, b));
        _cuts.Add((b, a));
    }

    /// <summary>The process can talk to nobody.</summary>
    public void Isolate(int process) => _group[process] = -1 - process;

    /// <summary>Processes in different groups cannot talk; processes not listed form one more group together.</summary>
    public void Partition(params IReadOnlyList<int>[] groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        Array.Fill(_group, 0);
        for (var g = 0; g < groups.Length; g++)
        {
            foreach (var p in groups[g])
            {
                _group[p] = g + 1;
            }
        }
    }

    /// <summary>Removes every partition and cut.</summary>
    public void Heal()
    {
        Array.Fill(_group, 0);
        _cuts.Clear();
    }

    public bool CanTalk(int from, int to) => from == to || (_group[from] == _group[to] && !_cuts.Contains((from, to)));

    /// <summary>
    /// Decides the fate of one datagram sent now: writes the delay of each copy that will arrive into
    /// <paramref name="arrivals"/> (capacity 2) and returns how many (0 = lost or blocked, 2 = duplicated).
    /// </summary>
    public int Route(int from, int to, Span<TimeSpan> arrivals)
    {
        DatagramsSent++;
        if (!CanTalk(from, to))
        {
            DatagramsBlocked++;
            return 0;
        }

        var link = this[from, to];
        if (FaultsEnabled && _random.Chance(link.Loss))
        {
            DatagramsLost++;
            return 0;
        }

        var copies = 1;
        if (FaultsEnabled && _random.Chance(link.Duplication))
        {
            DatagramsDuplicated++;
            copies = 2;
        }

        for (var i = 0; i < copies; i++)
        {
            arrivals[i] = link.DelayBase + _random.NextTime(TimeSpan.Zero, link.DelayJitter);
            if (FaultsEnabled && _random.Chance(link.Straggle))
            {
                DatagramsStraggling++;
                arrivals[i] += _random.NextTime(TimeSpan.Zero, link.StraggleDelay);
            }
        }

        return copies;
    }
}
