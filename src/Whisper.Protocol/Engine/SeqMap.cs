using System.Diagnostics.CodeAnalysis;

namespace Whisper.Protocol.Engine;

/// <summary>
/// The chunks a stream holds, by sequence number: what a <see cref="Dictionary{TKey, TValue}"/> of them offered, without
/// hashing. A stream holds a window of nearby sequence numbers (after its stable point, up to its receive window), so
/// each lives at <c>seq % capacity</c> of one array; when two live numbers would share a slot (the window outgrew the
/// array), the array doubles. Adding, finding and removing are an index and a compare, and the numbers a stream walks
/// in order (delivery, stability) sit next to each other in memory. Not thread-safe, like the engine.
/// </summary>
internal sealed class SeqMap<T>
    where T : class
{
    private const int InitialCapacity = 64;
    private const int MaxCapacity = 1 << 24;
    private ulong[] _keys = new ulong[InitialCapacity];
    private T?[] _values = new T?[InitialCapacity];

    public int Count { get; private set; }

    /// <summary>The stored values, in no particular order (copied: the map may change while they are used).</summary>
    public IReadOnlyList<T> Values
    {
        get
        {
            var list = new List<T>(Count);
            foreach (var v in _values)
            {
                if (v is not null)
                {
                    list.Add(v);
                }
            }

            return list;
        }
    }

    public T this[ulong seq] => TryGetValue(seq, out var value) ? value : throw new KeyNotFoundException($"no entry for {seq}");

    public bool ContainsKey(ulong seq) => TryGetValue(seq, out _);

    public bool TryGetValue(ulong seq, [MaybeNullWhen(false)] out T value)
    {
        var i = (int)(seq & (ulong)(_keys.Length - 1));
        if (_keys[i] == seq && _values[i] is { } v)
        {
            value = v;
            return true;
        }

        value = null;
        return false;
    }

    /// <summary>Adds <paramref name="value"/> at <paramref name="seq"/>; throws when that number is taken (as a dictionary does).</summary>
    public void Add(ulong seq, T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        while (true)
        {
            var i = (int)(seq & (ulong)(_keys.Length - 1));
            if (_values[i] is null)
            {
                _keys[i] = seq;
                _values[i] = value;
                Count++;
                return;
            }

            if (_keys[i] == seq)
            {
                throw new ArgumentException($"an entry for {seq} exists already", nameof(seq));
            }

            Grow(); // another live number holds the slot: the window is wider than the array
        }
    }

    public bool Remove(ulong seq) => Remove(seq, out _);

    public bool Remove(ulong seq, [MaybeNullWhen(false)] out T value)
    {
        var i = (int)(seq & (ulong)(_keys.Length - 1));
        if (_keys[i] == seq && _values[i] is { } v)
        {
            _values[i] = null;
            Count--;
            value = v;
            return true;
        }

        value = null;
        return false;
    }

    public void Clear()
    {
        Array.Clear(_values);
        Count = 0;
    }

    private void Grow()
    {
        var keys = _keys;
        var values = _values;
        var capacity = keys.Length * 2;
        while (true)
        {
            var newKeys = new ulong[capacity];
            var newValues = new T?[capacity];
            var fits = true;
            for (var j = 0; j < keys.Length && fits; j++)
            {
                if (values[j] is { } v)
                {
                    var i = (int)(keys[j] & (ulong)(capacity - 1));
                    fits = newValues[i] is null;
                    newKeys[i] = keys[j];
                    newValues[i] = v;
                }
            }

            if (fits)
            {
                _keys = newKeys;
                _values = newValues;
                return;
            }

            capacity *= 2; // live numbers further apart than this capacity: double again (bounded by the numbers' spread)
            if (capacity > MaxCapacity)
            {
                // A stream stores what lies between its stable point and its receive window, all but densely: never this.
                throw new InvalidOperationException($"sequence numbers of one stream spread over more than {MaxCapacity}");
            }
        }
    }
}
