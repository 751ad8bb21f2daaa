namespace Whisper.Protocol.Engine;

/// <summary>
/// A set of member ids that forgets its oldest entries beyond a capacity, so that remembering every incarnation that
/// ever left or was declared down stays bounded over hours of churn. Forgetting is safe when the capacity is far
/// above the number of incarnations that can still send (a group of at most 16 members and their recent past).
/// </summary>
internal sealed class BoundedIdSet(int capacity)
{
    private readonly HashSet<MemberId> _set = [];
    private readonly Queue<MemberId> _order = new();

    public int Count => _set.Count;

    public bool Contains(MemberId id) => _set.Contains(id);

    public void Add(MemberId id)
    {
        if (!_set.Add(id))
        {
            return;
        }

        _order.Enqueue(id);
        while (_order.Count > capacity)
        {
            _set.Remove(_order.Dequeue());
        }
    }
}

/// <summary>Sizes of an engine's collections (see <c>WhisperEngine.Footprint</c>).</summary>
internal readonly record struct EngineFootprint(
    int Peers, int Origins, int Retired, int Tombstones, int Downed, int DownProbes, int Notices, int Reservations, int BufferedChunks);
