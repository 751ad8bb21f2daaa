using System.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Net;

/// <summary>Immutable settings of one <see cref="WhisperNode"/>.</summary>
public sealed record WhisperNodeOptions
{
    /// <summary>The port a discovery server listens on unless told otherwise.</summary>
    public const int DefaultServerPort = 7700;

    /// <summary>This member's name in the group (see <see cref="MemberName.Rule"/>).</summary>
    public required string Name { get; init; }

    /// <summary>The discovery server that introduces this node to the group (unless <see cref="Peer"/> is set).</summary>
    public IPEndPoint Server { get; init; } = new(IPAddress.Loopback, DefaultServerPort);

    /// <summary>
    /// A member of the group to join through instead of <see cref="Server"/>, for when the server is gone: the
    /// member forwards the request to the group's coordinator, which admits or denies under the same rules
    /// (name rule, unique names ignoring case, at most <see cref="EngineOptions.MaxMembers"/> members). A node
    /// that joined this way sends no leases to any server. Null (the default) joins through <see cref="Server"/>.
    /// </summary>
    public IPEndPoint? Peer { get; init; }

    /// <summary>Where the join request goes: <see cref="Peer"/> when set, otherwise <see cref="Server"/>.</summary>
    public IPEndPoint Contact => Peer ?? Server;

    /// <summary>Local UDP endpoint; port 0 picks a free port.</summary>
    public IPEndPoint Bind { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>Protocol settings of the engine.</summary>
    public EngineOptions Engine { get; init; } = new();

    /// <summary>Optional seeded loss, duplication and delay/reordering (a testing aid, see <see cref="FaultInjectingTransport"/>).</summary>
    public FaultOptions? Faults { get; init; }

    /// <summary>Seed of the engine's randomness; null draws one from <see cref="System.Security.Cryptography.RandomNumberGenerator"/>.</summary>
    public ulong? Seed { get; init; }

    /// <summary>This incarnation's id; null (the normal case) draws a random non-zero id.</summary>
    public MemberId? Id { get; init; }

    /// <summary>
    /// Safety bound on <see cref="WhisperNode.JoinAsync(WhisperNodeOptions, Microsoft.Extensions.Logging.ILoggerFactory?, TimeProvider?, CancellationToken)"/>
    /// beyond the engine's own retry limit (join attempts and introduction timeout).
    /// </summary>
    public TimeSpan JoinTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a graceful leave may take before the node stops anyway; null means the engine's
    /// <see cref="EngineOptions.LeaveLinger"/> plus three seconds.
    /// </summary>
    public TimeSpan? LeaveTimeout { get; init; }

    /// <summary>
    /// When the group declared this node down while it was alive (paused, cut off, on the smaller side of a healed
    /// partition) and told it so: true (the default) joins again at once as a new incarnation under the same name
    /// (<see cref="Evicted"/>, then <see cref="Rejoined"/> or <see cref="RejoinFailed"/>); false stops the node.
    /// </summary>
    public bool AutoRejoin { get; init; } = true;

    /// <summary>
    /// How many recent broadcasts this node keeps in memory to hand to members that join late or rejoin (and asks for
    /// when it joins); 0 turns history catch-up off. Private messages are never handed over.
    /// </summary>
    public int HistoryDepth { get; init; } = 200;

    /// <summary>
    /// Optional allocation-free delivery: when set, every delivered message (broadcast or private, live, history or
    /// late) is handed to this handler as a <see cref="WhisperDelivery"/> (UTF-8 bytes, valid during the call) instead
    /// of being written to <see cref="WhisperNode.Events"/> as a <see cref="ChatMessage"/>; member changes and the other
    /// events still go to <see cref="WhisperNode.Events"/>. Same guarantees and order as the <see cref="ChatMessage"/>s
    /// would have had. It runs on the node's driver thread, inside the protocol loop: it must return quickly and must
    /// not block or wait for the node (no <c>await</c> on the node's tasks); hand work to another thread if needed.
    /// An exception it throws is logged and the message counts as delivered.
    /// </summary>
    public WhisperDeliveryHandler? DeliveryHandler { get; init; }

    /// <summary>
    /// How many <see cref="WhisperNode.TryBroadcast(ReadOnlySpan{byte})"/> sends may wait for the engine (flow control)
    /// before further calls return false (back-pressure). 1-4096.
    /// </summary>
    public int MaxQueuedBroadcasts { get; init; } = 64;

    internal TimeSpan EffectiveLeaveTimeout => LeaveTimeout ?? Engine.LeaveLinger + TimeSpan.FromSeconds(3);

    /// <summary>Throws when the options cannot work (invalid name, bad engine settings, bad fault rates).</summary>
    public void Validate()
    {
        if (MemberName.Validate(Name) is { } problem)
        {
            throw new ArgumentException(problem, nameof(Name));
        }

        ArgumentNullException.ThrowIfNull(Server);
        ArgumentNullException.ThrowIfNull(Bind);
        if (HistoryDepth is < 0 or > 10_000)
        {
            throw new ArgumentOutOfRangeException(nameof(HistoryDepth), HistoryDepth, "must be 0-10000 broadcasts");
        }

        if (MaxQueuedBroadcasts is < 1 or > 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxQueuedBroadcasts), MaxQueuedBroadcasts, "must be 1-4096 sends");
        }

        if (Peer is { Port: 0 })
        {
            throw new ArgumentException("the peer to join through needs a port", nameof(Peer));
        }

        ArgumentNullException.ThrowIfNull(Engine);
        Engine.Validate();
        Faults?.Validate();
        if (Id is { IsNone: true })
        {
            throw new ArgumentException("a member id must be non-zero", nameof(Id));
        }

        if (JoinTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(JoinTimeout), JoinTimeout, "must be positive");
        }

        if (LeaveTimeout is { } leave && leave <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(LeaveTimeout), leave, "must be positive");
        }
    }
}
