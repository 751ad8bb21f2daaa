using System.Net;
using System.Text;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;

namespace Whisper.Protocol.Tests.Engine;

/// <summary>
/// A tiny deterministic network for engine unit tests: engines exchange datagrams through an explicit
/// queue the test controls (drop filters, holding datagrams back), a stand-in discovery server admits
/// everyone, and time advances only when the test says so. The full seeded simulator lives in
/// tests/Whisper.Simulation; this harness is for precise, readable single-behaviour tests.
/// </summary>
internal sealed class EngineHarness
{
    public static readonly IPEndPoint ServerEndpoint = new(IPAddress.Parse("127.0.0.250"), 7700);

    private readonly List<MemberRecord> _admitted = [];
    private readonly List<Datagram> _inFlight = [];
    private readonly byte[] _buffer = new byte[WireCodec.MaxDatagramSize];

    public EngineHarness(EngineOptions? options = null) => Options = options ?? new EngineOptions();

    public EngineOptions Options { get; }

    public TimeSpan Now { get; private set; }

    public List<Node> Nodes { get; } = [];

    /// <summary>Return true to drop a datagram as it is sent.</summary>
    public Func<Datagram, bool> Drop { get; set; } = static _ => false;

    public int DatagramsSent { get; private set; }

    public bool ServerUp { get; set; } = true;

    /// <summary>
    /// Run every engine's timers as late as it allows (<see cref="WhisperEngine.NextTimeoutLatest"/>), as a driver whose
    /// waits end on scheduler ticks may, instead of at <see cref="WhisperEngine.NextTimeout"/>.
    /// </summary>
    public bool LateTimers { get; set; }

    private TimeSpan? DueAt(Node n) => LateTimers ? n.Engine.NextTimeoutLatest : n.Engine.NextTimeout;

    /// <summary>The live node of that name (a restarted node replaces its crashed predecessor).</summary>
    public Node this[string name] => Nodes.Single(n => n.Name == name && !n.Crashed);

    public Node Add(string name) => Add(name, ServerEndpoint);

    /// <summary>Starts a node that joins through <paramref name="contact"/> (the server, or a member); ids grow with each node unless given.</summary>
    public Node Add(string name, IPEndPoint contact, MemberId? id = null, IReadOnlyList<IPEndPoint>? fallbacks = null)
    {
        var index = Nodes.Count + 1;
        var engine = new WhisperEngine(Options, name, id ?? new MemberId(0x1000UL * (ulong)index + 7), (ulong)index);
        var node = new Node(name, new IPEndPoint(IPAddress.Parse($"127.0.0.{index}"), 5000), engine);
        Nodes.Add(node);
        engine.Start(contact, Now, fallbacks: fallbacks);
        Pump(node);
        return node;
    }

    /// <summary>Adds nodes and runs until all of them have joined.</summary>
    public void Form(params string[] names)
    {
        foreach (var name in names)
        {
            Add(name);
            RunFor(TimeSpan.FromMilliseconds(50));
        }

        RunUntil(() => Nodes.All(n => n.Engine.State == EngineState.Joined), TimeSpan.FromSeconds(10));
    }

    public SendResult Broadcast(string from, string text)
    {
        var node = this[from];
        var result = node.Engine.Broadcast(Encoding.UTF8.GetBytes(text), Now);
        Pump(node);
        return result;
    }

    public SendResult Private(string from, string to, string text)
    {
        var node = this[from];
        var result = node.Engine.SendPrivate(to, Encoding.UTF8.GetBytes(text), Now);
        Pump(node);
        return result;
    }

    /// <summary>Delivers every datagram in flight (and what they cause) without advancing time.</summary>
    public void Flush(int maxSteps = 100_000)
    {
        for (var i = 0; i < maxSteps && _inFlight.Count > 0; i++)
        {
            var d = _inFlight[0];
            _inFlight.RemoveAt(0);
            Deliver(d);
        }
    }

    /// <summary>Advances virtual time by <paramref name="duration"/>, firing timers and delivering datagrams at once.</summary>
    public void RunFor(TimeSpan duration) => RunUntil(static () => false, duration, throwOnTimeout: false);

    public void RunUntil(Func<bool> condition, TimeSpan limit, bool throwOnTimeout = true)
    {
        var end = Now + limit;
        for (var step = 0; step < 1_000_000; step++)
        {
            Flush();
            if (condition())
            {
                return;
            }

            var next = Nodes.Where(n => !n.Crashed).Select(DueAt).Where(t => t is not null).Min();
            if (next is null || next.Value > end)
            {
                Now = end;
                if (throwOnTimeout && !condition())
                {
                    throw new TimeoutException($"condition not met within {limit} (virtual)");
                }

                return;
            }

            if (next.Value > Now)
            {
                Now = next.Value;
            }

            foreach (var n in Nodes.Where(n => !n.Crashed && DueAt(n) <= Now).ToList())
            {
                n.Engine.OnTimeout(Now);
                Pump(n);
            }
        }

        throw new InvalidOperationException("harness did not settle (livelock?)");
    }

    public void Pump(Node node)
    {
        while (node.Engine.TryPollTransmit(_buffer, out var length, out var destination))
        {
            DatagramsSent++;
            var d = new Datagram(node.Endpoint, destination, _buffer[..length]);
            if (!node.Crashed && !Drop(d))
            {
                _inFlight.Add(d);
            }
        }

        while (node.Engine.TryPollEvent(out var ev))
        {
            node.Events.Add(ev);
        }
    }

    public Node? NodeAt(IPEndPoint endpoint) => Nodes.FirstOrDefault(n => n.Endpoint.Equals(endpoint));

    private void Deliver(Datagram d)
    {
        if (d.To.Equals(ServerEndpoint))
        {
            ServeDiscovery(d);
            return;
        }

        var node = NodeAt(d.To);
        if (node is null || node.Crashed)
        {
            return;
        }

        node.Engine.OnDatagram(d.From, d.Bytes, Now);
        Pump(node);
    }

    private void ServeDiscovery(Datagram d)
    {
        var frames = new List<Frame>();
        if (!ServerUp || WireCodec.TryDecode(d.Bytes, out var header, frames) != DecodeStatus.Ok)
        {
            return;
        }

        foreach (var frame in frames)
        {
            if (frame is LeaveFrame)
            {
                _admitted.RemoveAll(m => m.Id == header.From);
            }

            if (frame is JoinRequestFrame join)
            {
                var others = _admitted.Where(m => m.Id != header.From).ToList();
                if (!_admitted.Any(m => m.Id == header.From))
                {
                    _admitted.Add(new MemberRecord(header.From, join.Name, d.From));
                }

                var seniority = (ulong)_admitted.FindIndex(m => m.Id == header.From) + 1; // admission order, as the real server numbers it
                _inFlight.Add(new Datagram(ServerEndpoint, d.From,
                    WireCodec.Encode(new DatagramHeader(MemberId.None, header.From), new JoinAcceptFrame(d.From, others, seniority))));
            }
        }
    }

    internal sealed record Datagram(IPEndPoint From, IPEndPoint To, byte[] Bytes)
    {
        public IReadOnlyList<Frame> Frames
        {
            get
            {
                var frames = new List<Frame>();
                WireCodec.TryDecode(Bytes, out _, frames);
                return frames;
            }
        }
    }

    internal sealed class Node(string name, IPEndPoint endpoint, WhisperEngine engine)
    {
        public string Name { get; } = name;
        public IPEndPoint Endpoint { get; } = endpoint;
        public WhisperEngine Engine { get; } = engine;
        public List<EngineEvent> Events { get; } = [];
        public bool Crashed { get; set; }

        public IReadOnlyList<DeliveredMessage> Delivered =>
            Events.OfType<MessageEvent>().Select(static e => e.Message).ToList();

        /// <summary>Delivered texts as "kind:from:text", in delivery order.</summary>
        public IReadOnlyList<string> Texts =>
            Delivered.Select(static m => $"{(m.Kind == MessageKind.Broadcast ? "b" : "p")}:{m.From.Name}:{Encoding.UTF8.GetString(m.Payload)}").ToList();
    }
}
