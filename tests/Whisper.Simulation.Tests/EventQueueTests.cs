using Whisper.Simulation;

namespace Whisper.Simulation.Tests;

public sealed class EventQueueTests
{
    [Fact]
    public void PopsInTimeOrder()
    {
        var q = new EventQueue<string>();
        q.Push(TimeSpan.FromMilliseconds(30), "c");
        q.Push(TimeSpan.FromMilliseconds(10), "a");
        q.Push(TimeSpan.FromMilliseconds(20), "b");
        Assert.Equal(["a", "b", "c"], Drain(q));
    }

    [Fact]
    public void EventsAtTheSameInstantRunInSchedulingOrder()
    {
        var q = new EventQueue<int>();
        for (var i = 0; i < 100; i++)
        {
            q.Push(TimeSpan.FromMilliseconds(5), i);
        }

        q.Push(TimeSpan.FromMilliseconds(1), -1);
        Assert.Equal([-1, .. Enumerable.Range(0, 100)], Drain(q));
    }

    [Fact]
    public void ReportsTheTimeOfTheNextEvent()
    {
        var q = new EventQueue<int>();
        Assert.False(q.TryPeekTime(out _));
        q.Push(TimeSpan.FromSeconds(2), 1);
        q.Push(TimeSpan.FromSeconds(1), 2);
        Assert.True(q.TryPeekTime(out var at));
        Assert.Equal(TimeSpan.FromSeconds(1), at);
        Assert.Equal(2, q.Count);
    }

    private static List<T> Drain<T>(EventQueue<T> q)
    {
        var list = new List<T>();
        while (q.TryPop(out _, out var item))
        {
            list.Add(item);
        }

        return list;
    }
}
