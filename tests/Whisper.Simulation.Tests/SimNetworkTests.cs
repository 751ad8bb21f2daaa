using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

public sealed class SimNetworkTests
{
    private static readonly LinkFaults Clean = new(0, 0, TimeSpan.FromMilliseconds(1), TimeSpan.Zero);

    [Fact]
    public void CleanLinkDeliversOneCopyAfterItsDelay()
    {
        var net = Network(3, Clean);
        Span<TimeSpan> arrivals = stackalloc TimeSpan[2];
        Assert.Equal(1, net.Route(0, 1, arrivals));
        Assert.Equal(TimeSpan.FromMilliseconds(1), arrivals[0]);
    }

    [Fact]
    public void TotalLossDropsEveryDatagramUntilFaultsAreTurnedOff()
    {
        var net = Network(2, Clean with { Loss = 1 });
        Span<TimeSpan> arrivals = stackalloc TimeSpan[2];
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(0, net.Route(0, 1, arrivals));
        }

        Assert.Equal(100, net.DatagramsLost);
        net.FaultsEnabled = false;
        Assert.Equal(1, net.Route(0, 1, arrivals));
    }

    [Fact]
    public void LossRateMatchesTheLinkSetting()
    {
        var net = Network(2, Clean with { Loss = 0.3 });
        Span<TimeSpan> arrivals = stackalloc TimeSpan[2];
        var delivered = 0;
        for (var i = 0; i < 10_000; i++)
        {
            delivered += net.Route(0, 1, arrivals);
        }

        Assert.InRange(delivered, 6700, 7300);
    }

    [Fact]
    public void DuplicationDeliversTwoCopiesWithIndependentDelays()
    {
        var net = Network(2, Clean with { Duplication = 1, DelayJitter = TimeSpan.FromMilliseconds(10) });
        Span<TimeSpan> arrivals = stackalloc TimeSpan[2];
        var differ = 0;
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(2, net.Route(0, 1, arrivals));
            differ += arrivals[0] != arrivals[1] ? 1 : 0;
        }

        Assert.True(differ > 90);
    }

    [Fact]
    public void JitterReordersDatagramsSentInOrder()
    {
        var net = Network(2, Clean with { DelayJitter = TimeSpan.FromMilliseconds(5) });
        Span<TimeSpan> arrivals = stackalloc TimeSpan[2];
        var overtaken = 0;
        var previousArrival = TimeSpan.Zero;
        for (var i = 0; i < 1000; i++)
        {
            var sentAt = TimeSpan.FromMilliseconds(i * 0.1);
            net.Route(0, 1, arrivals);
            var arrival = sentAt + arrivals[0];
            overtaken += arrival < previousArrival ? 1 : 0;
            previousArrival = arrival;
            Assert.InRange(arrivals[0], TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(6));
        }

        Assert.True(overtaken > 100, $"only {overtaken} reorderings");
    }

    [Fact]
    public void PartitionBlocksAcrossGroupsAndHealRestores()
    {
        var net = Network(4, Clean);
        Span<TimeSpan> arrivals = stackalloc TimeSpan[2];
        net.Partition([0, 1]);
        Assert.Equal(1, net.Route(0, 1, arrivals));
        Assert.Equal(1, net.Route(2, 3, arrivals));
        Assert.Equal(0, net.Route(0, 2, arrivals));
        Assert.Equal(0, net.Route(3, 1, arrivals));
        Assert.True(net.IsPartitioned);
        net.Heal();
        Assert.Equal(1, net.Route(0, 2, arrivals));
        Assert.False(net.IsPartitioned);
    }

    [Fact]
    public void IsolatedProcessTalksToNobodyAndCutIsSymmetric()
    {
        var net = Network(3, Clean);
        net.Isolate(1);
        Assert.False(net.CanTalk(0, 1));
        Assert.False(net.CanTalk(1, 2));
        Assert.True(net.CanTalk(0, 2));
        net.Heal();
        net.Cut(0, 2);
        Assert.False(net.CanTalk(0, 2));
        Assert.False(net.CanTalk(2, 0));
        Assert.True(net.CanTalk(0, 1));
    }

    private static SimNetwork Network(int processes, LinkFaults link)
    {
        var net = new SimNetwork(processes, new SimRandom(11));
        for (var a = 0; a < processes; a++)
        {
            for (var b = 0; b < processes; b++)
            {
                net[a, b] = link;
            }
        }

        return net;
    }
}
