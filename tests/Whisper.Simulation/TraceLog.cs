using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Whisper.Protocol.Wire;

namespace Whisper.Simulation;

/// <summary>What one trace record is about.</summary>
public enum TraceKind
{
    /// <summary>A datagram left a process (with its fate: copies, lost, blocked by a partition).</summary>
    Send,

    /// <summary>A datagram reached a process.</summary>
    Arrive,

    /// <summary>A datagram reached a crashed process, or an address nobody has.</summary>
    Drop,

    /// <summary>A timer fired.</summary>
    Timer,

    /// <summary>A command, an application event, a fault or a phase change (free text).</summary>
    Note,

    /// <summary>A line from an engine's own <c>Tracer</c> (only with full tracing; not part of the hash).</summary>
    Engine,
}

/// <summary>
/// The run's trace: a rolling hash over every record (the determinism fingerprint: same seed, same hash) and a
/// ring of the latest records, formatted only when a report needs them. Datagrams are decoded with the wire codec
/// and shown with <c>Describe()</c>; member ids are replaced by node names.
/// </summary>
public sealed partial class TraceLog
{
    private readonly Record[] _ring;
    private readonly IReadOnlyList<string> _processNames;
    private readonly Dictionary<string, string> _idNames = new(StringComparer.Ordinal);
    private long _count;
    private ulong _hash = 0xcbf29ce484222325UL;

    /// <param name="capacity">Records kept for the tail (older ones only count in the hash).</param>
    /// <param name="processNames">Names of processes by index (nodes, then the discovery server).</param>
    public TraceLog(int capacity, IReadOnlyList<string> processNames)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _ring = new Record[capacity];
        _processNames = processNames ?? throw new ArgumentNullException(nameof(processNames));
    }

    /// <summary>Rolling FNV-style hash of every hashed record so far.</summary>
    public ulong Hash => _hash;

    /// <summary>Records ever added (including engine lines).</summary>
    public long Count => _count;

    /// <summary>Optional sink that sees every formatted line as it happens (full tracing to a file or console).</summary>
    public Action<string>? Sink { get; set; }

    /// <summary>Lets the trace print node names instead of member ids (the first 6 hex digits the frames show).</summary>
    public void NameMember(string shortId, string name) => _idNames[shortId] = name;

    public void Datagram(TraceKind kind, TimeSpan at, int from, int to, byte[] datagram, string? fate = null)
    {
        ArgumentNullException.ThrowIfNull(datagram);
        Mix(at.Ticks);
        Mix((long)kind);
        Mix(from);
        Mix(to);
        Mix(datagram.Length);
        var words = MemoryMarshal.Cast<byte, ulong>(datagram.AsSpan());
        foreach (var w in words)
        {
            _hash = (_hash ^ w) * 0x100000001b3UL;
        }

        for (var i = words.Length * sizeof(ulong); i < datagram.Length; i++)
        {
            _hash = (_hash ^ datagram[i]) * 0x100000001b3UL;
        }

        if (fate is not null)
        {
            MixText(fate);
        }

        Add(new Record(at, kind, from, to, datagram, fate));
    }

    public void Timer(TimeSpan at, int process)
    {
        Mix(at.Ticks);
        Mix((long)TraceKind.Timer);
        Mix(process);
        Add(new Record(at, TraceKind.Timer, process, -1, null, null));
    }

    public void Note(TimeSpan at, int process, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Mix(at.Ticks);
        Mix((long)TraceKind.Note);
        Mix(process);
        MixText(text);
        Add(new Record(at, TraceKind.Note, process, -1, null, text));
    }

    /// <summary>An engine's own trace line; deliberately not hashed, so tracing never changes the fingerprint.</summary>
    public void Engine(TimeSpan at, int process, string text) => Add(new Record(at, TraceKind.Engine, process, -1, null, text));

    /// <summary>The latest <paramref name="lines"/> records, formatted.</summary>
    public IReadOnlyList<string> Tail(int lines)
    {
        var kept = (int)Math.Min(_count, _ring.Length);
        var take = Math.Min(lines, kept);
        var result = new List<string>(take);
        for (var i = _count - take; i < _count; i++)
        {
            result.Add(Format(_ring[i % _ring.Length]));
        }

        return result;
    }

    /// <summary>
    /// The kept records from <paramref name="from"/> to <paramref name="to"/>, formatted (at most the last
    /// <paramref name="lines"/> of them); empty when that stretch has already left the ring. With a
    /// <paramref name="node"/>, only what that process sent, received, noted or traced, plus the notes of
    /// <paramref name="peer"/> (for example the sender whose message is at stake).
    /// </summary>
    public IReadOnlyList<string> Window(TimeSpan from, TimeSpan to, int lines, int node = -1, int peer = -1)
    {
        var kept = (int)Math.Min(_count, _ring.Length);
        var first = _count - kept;
        if (kept == 0 || _ring[first % _ring.Length].At > from)
        {
            return [];
        }

        var picked = new List<Record>();
        for (var i = first; i < _count; i++)
        {
            var r = _ring[i % _ring.Length];
            var relevant = node < 0
                || r.From == node
                || r.To == node
                || (peer >= 0 && r.From == peer && r.Kind is TraceKind.Note or TraceKind.Engine);
            if (r.At >= from && r.At <= to && relevant)
            {
                picked.Add(r);
            }
        }

        return [.. picked.Skip(Math.Max(0, picked.Count - lines)).Select(Format)];
    }

    /// <summary>Describes a datagram the way traces show it.</summary>
    public string DescribeDatagram(byte[] datagram)
    {
        ArgumentNullException.ThrowIfNull(datagram);
        var frames = new List<Frame>();
        var status = WireCodec.TryDecode(datagram, out var header, frames);
        var text = status == DecodeStatus.Ok
            ? WireCodec.Describe(header, frames)
            : $"undecodable ({status}, {datagram.Length} bytes)";
        return Rename(text);
    }

    /// <summary>Replaces known member-id prefixes in engine text by node names.</summary>
    public string Rename(string text) => _idNames.Count == 0 ? text : HexId().Replace(text, m => _idNames.TryGetValue(m.Value, out var n) ? n : m.Value);

    private string Format(Record r)
    {
        var t = r.At.TotalSeconds.ToString("0.000000", CultureInfo.InvariantCulture).PadLeft(10);
        var who = r.From >= 0 && r.From < _processNames.Count ? _processNames[r.From] : "sim";
        var to = r.To >= 0 && r.To < _processNames.Count ? _processNames[r.To] : "?";
        return r.Kind switch
        {
            TraceKind.Send => $"{t} {who,-4} send  ->{to,-4} {DescribeDatagram(r.Datagram!)}{(r.Text is null ? "" : "  [" + r.Text + "]")}",
            TraceKind.Arrive => $"{t} {to,-4} recv  <-{who,-4} {DescribeDatagram(r.Datagram!)}",
            TraceKind.Drop => $"{t} {to,-4} DROP  <-{who,-4} {DescribeDatagram(r.Datagram!)}  [{r.Text}]",
            TraceKind.Timer => $"{t} {who,-4} timer",
            TraceKind.Engine => $"{t} {who,-4} engine {Rename(r.Text!)}",
            _ => $"{t} {who,-4} {r.Text}",
        };
    }

    private void Add(Record r)
    {
        _ring[_count % _ring.Length] = r;
        _count++;
        if (Sink is { } sink)
        {
            sink(Format(r));
        }
    }

    private void Mix(long value) => _hash = SimRandom.Mix(_hash ^ (ulong)value) * 0x100000001b3UL;

    private void MixText(string text)
    {
        foreach (var c in text)
        {
            _hash = (_hash ^ c) * 0x100000001b3UL;
        }
    }

    [GeneratedRegex("\\b[0-9a-f]{6}\\b", RegexOptions.CultureInvariant)]
    private static partial Regex HexId();

    private readonly record struct Record(TimeSpan At, TraceKind Kind, int From, int To, byte[]? Datagram, string? Text);
}

/// <summary>Helpers to write a report.</summary>
internal static class ReportText
{
    public static string Lines(IEnumerable<string> lines)
    {
        var sb = new StringBuilder();
        foreach (var l in lines)
        {
            sb.Append("  ").AppendLine(l);
        }

        return sb.ToString();
    }
}
