using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Engine;

/// <summary>
/// A peer's outgoing frames, in order. A pooled broadcast chunk is queued with its <see cref="ChunkFrame.Generation"/>:
/// once the engine releases the chunk (stable: every member in view has it; or its stream retired) the pool recycles
/// it, and the entry is skipped instead of sending the recycled object under another identity. Skipping is what
/// sending would have achieved: every member the engine still sends to already holds a released chunk.
/// </summary>
internal sealed class FrameQueue
{
    private readonly Queue<(Frame Frame, int Generation)> _items = new();

    /// <summary>Entries queued, including ones that turn out to be stale when reached.</summary>
    public int Count => _items.Count;

    public void Enqueue(Frame frame) => _items.Enqueue((frame, frame is ChunkFrame c ? c.Generation : 0));

    public bool TryPeek(out Frame frame)
    {
        while (_items.TryPeek(out var item))
        {
            if (IsLive(item))
            {
                frame = item.Frame;
                return true;
            }

            _items.Dequeue();
        }

        frame = null!;
        return false;
    }

    public bool TryDequeue(out Frame frame)
    {
        if (TryPeek(out frame))
        {
            _items.Dequeue();
            return true;
        }

        return false;
    }

    public Frame Dequeue() => TryDequeue(out var frame) ? frame : throw new InvalidOperationException("the queue is empty");

    public void Clear() => _items.Clear();

    /// <summary>Drops every stale entry (keeping the order of the others) and returns how many remain.</summary>
    public int PurgeStale()
    {
        var count = _items.Count;
        for (var i = 0; i < count; i++)
        {
            var item = _items.Dequeue();
            if (IsLive(item))
            {
                _items.Enqueue(item);
            }
        }

        return _items.Count;
    }

    private static bool IsLive((Frame Frame, int Generation) item) =>
        item.Frame is not ChunkFrame c || (c.Generation == item.Generation && !c.InPool);
}
