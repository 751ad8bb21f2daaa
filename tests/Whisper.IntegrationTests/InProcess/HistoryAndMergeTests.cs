using System.Net;
using Whisper.Net;
using Whisper.Protocol.Engine;
using Xunit;

namespace Whisper.IntegrationTests.InProcess;

/// <summary>
/// History catch-up and merge, with WhisperNodes on loopback UDP in this process: a late joiner gets the recent
/// broadcasts as history, and after a split heals each side gets what the other said, marked, exactly once.
/// </summary>
public sealed class HistoryAndMergeTests
{
    private static readonly TimeSpan Wait = InProcessGroup.Expectation;

    [Fact]
    public async Task ALateJoinerGetsTheRecentBroadcastsAsHistoryInOrderButNoPrivateMessage()
    {
        await using var group = await InProcessGroup.StartAsync();
        var (alice, bob) = (await group.JoinAsync("alice"), await group.JoinAsync("bob"));
        await InProcessGroup.WaitUntilSeesAsync(alice, ["bob"]);
        await alice.Node.BroadcastAsync("h1");
        await alice.Node.BroadcastAsync("h2");
        await bob.Node.SendPrivateAsync("alice", "secret");
        await bob.WaitForMessageAsync("h2", Wait);
        await bob.Node.BroadcastAsync("h3");
        await alice.WaitForMessageAsync("h3", Wait);
        await alice.WaitForMessageAsync("secret", Wait);

        var carol = await group.JoinAsync("carol");
        await carol.WaitForMessageAsync("h3", Wait);
        await alice.Node.BroadcastAsync("live");
        await carol.WaitForMessageAsync("live", Wait);

        var seen = carol.Messages;
        Assert.Equal(["h1", "h2", "h3"], seen.Where(m => m.Arrival == Arrival.History).Select(m => m.Text));
        Assert.Equal(Arrival.Live, Assert.Single(seen, m => m.Text == "live").Arrival);
        Assert.DoesNotContain(seen, m => m.Text == "secret");
        Assert.Equal(seen.Count, seen.Select(m => m.Id).Distinct().Count());
        Assert.DoesNotContain(alice.Messages, m => m.Arrival != Arrival.Live); // members already there get nothing again
    }

    [Fact]
    public async Task AfterASplitHealsTheSmallerSideRejoinsAndEachSideGetsWhatTheOtherSaidExactlyOnce()
    {
        await using var group = await InProcessGroup.StartAsync();
        var split = new Split();
        var nodes = new List<EventRecorder>();
        foreach (var name in new[] { "a", "b", "c", "d", "e" })
        {
            nodes.Add(await group.JoinAsync(name, o => o, split.Wrap));
        }

        foreach (var n in nodes)
        {
            await InProcessGroup.WaitUntilSeesAsync(n, ["a", "b", "c", "d", "e"]);
        }

        var (a, d, e) = (nodes[0], nodes[3], nodes[4]);
        split.Cut(d.Node.LocalEndpoint.Port, e.Node.LocalEndpoint.Port);
        await a.WaitForAsync<MemberChanged>(m => m.Name == "d" && m.Status == MemberStatus.Down, Wait, "a sees d down");
        await d.WaitForAsync<MemberChanged>(m => m.Name == "a" && m.Status == MemberStatus.Down, Wait, "d sees a down");
        await a.Node.BroadcastAsync("said-by-the-larger-side");
        await d.Node.BroadcastAsync("said-by-the-smaller-side");
        await e.WaitForMessageAsync("said-by-the-smaller-side", Wait);
        await nodes[1].WaitForMessageAsync("said-by-the-larger-side", Wait);

        split.Heal();
        foreach (var small in new[] { d, e })
        {
            await small.WaitForAsync<Rejoined>(_ => true, Wait, "rejoins the larger side");
            await small.WaitForMessageAsync("said-by-the-larger-side", Wait);
        }

        foreach (var large in nodes.Take(3))
        {
            await large.WaitForMessageAsync("said-by-the-smaller-side", Wait);
        }

        await d.Node.BroadcastAsync("after-the-merge");
        foreach (var n in nodes)
        {
            await n.WaitForMessageAsync("after-the-merge", Wait);
        }

        Assert.All(nodes.Take(3), n => Assert.Equal(Arrival.Late, Assert.Single(n.Messages, m => m.Text == "said-by-the-smaller-side").Arrival));
        Assert.All(new[] { d, e }, n => Assert.Equal(Arrival.History, Assert.Single(n.Messages, m => m.Text == "said-by-the-larger-side").Arrival));
        Assert.All(new[] { d, e }, n => Assert.Single(n.Messages, m => m.Text == "said-by-the-smaller-side"));
        Assert.All(nodes, n => Assert.Single(n.Messages, m => m.Text == "after-the-merge"));
        Assert.All(nodes.Take(3), n => Assert.Empty(n.Events.OfType<Evicted>()));
    }

    /// <summary>A network split between two sets of loopback ports: datagrams crossing it are dropped both ways.</summary>
    private sealed class Split
    {
        private volatile int[] _side = [];

        public void Cut(params int[] side) => _side = side;

        public void Heal() => _side = [];

        public bool Blocks(int fromPort, int toPort)
        {
            var side = _side;
            return side.Length > 0 && side.Contains(fromPort) != side.Contains(toPort);
        }

        public IDatagramTransport Wrap(IPEndPoint bind) => new SplitTransport(UdpDatagramTransport.Bind(bind), this);
    }

    private sealed class SplitTransport(IDatagramTransport inner, Split split) : IDatagramTransport
    {
        public IPEndPoint LocalEndpoint => inner.LocalEndpoint;

        public bool Send(ReadOnlySpan<byte> datagram, IPEndPoint destination) =>
            split.Blocks(LocalEndpoint.Port, destination.Port) || inner.Send(datagram, destination);

        public async ValueTask<ReceivedDatagram> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            for (var dropped = 0; ; dropped++)
            {
                var received = await inner.ReceiveAsync(buffer, cancellationToken);
                if (!split.Blocks(received.From.Port, LocalEndpoint.Port) || dropped > 100_000)
                {
                    return received;
                }
            }
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
