namespace Whisper.Simulation;

/// <summary>
/// The simulator's single event queue: a priority queue ordered by (virtual time, insertion counter), so
/// events due at the same instant run in the order they were scheduled and every run is reproducible.
/// </summary>
public sealed class EventQueue<T>
{
    private readonly PriorityQueue<T, (long Ticks, long Order)> _queue = new(KeyComparer.Instance);
    private long _order;

    public int Count => _queue.Count;

    /// <summary>How many events were ever scheduled.</summary>
    public long Scheduled => _order;

    public void Push(TimeSpan at, T item) => _queue.Enqueue(item, (at.Ticks, _order++));

    public bool TryPeekTime(out TimeSpan at)
    {
        if (_queue.TryPeek(out _, out var key))
        {
            at = TimeSpan.FromTicks(key.Ticks);
            return true;
        }

        at = default;
        return false;
    }

    public bool TryPop(out TimeSpan at, out T item)
    {
        if (_queue.TryDequeue(out var value, out var key))
        {
            at = TimeSpan.FromTicks(key.Ticks);
            item = value;
            return true;
        }

        at = default;
        item = default!;
        return false;
    }

    private sealed class KeyComparer : IComparer<(long Ticks, long Order)>
    {
        public static readonly KeyComparer Instance = new();

        public int Compare((long Ticks, long Order) x, (long Ticks, long Order) y)
        {
            var c = x.Ticks.CompareTo(y.Ticks);
            return c != 0 ? c : x.Order.CompareTo(y.Order);
        }
    }
}
