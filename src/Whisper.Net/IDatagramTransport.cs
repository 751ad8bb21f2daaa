using System.Net;

namespace Whisper.Net;

/// <summary>
/// The one transport seam of a <see cref="WhisperNode"/>: unreliable, unordered datagrams to and from endpoints.
/// Implementations never throw on hostile input (malformed, oversized or unexpected datagrams, ICMP errors);
/// they may lose, duplicate or reorder datagrams, which the protocol tolerates.
/// <para>A node calls <see cref="Send"/> from its driver loop and <see cref="ReceiveAsync"/> from one receive
/// loop, so one sender and one receiver may run concurrently; neither is called concurrently with itself. With
/// <see cref="IBlockingDatagramReceiver"/>, the driver thread both sends and receives, and only
/// <see cref="IBlockingDatagramReceiver.Wake"/> comes from other threads.</para>
/// </summary>
public interface IDatagramTransport : IAsyncDisposable
{
    /// <summary>The endpoint this transport receives on (after binding, so a port 0 bind shows its real port).</summary>
    IPEndPoint LocalEndpoint { get; }

    /// <summary>
    /// Sends one datagram, best effort. Returns false when the datagram could not be handed to the network
    /// (the caller counts it as lost; the protocol retransmits). Never blocks for long and never throws for
    /// network conditions; throws <see cref="ObjectDisposedException"/> after disposal.
    /// </summary>
    bool Send(ReadOnlySpan<byte> datagram, IPEndPoint destination);

    /// <summary>
    /// Waits for the next datagram and copies it into <paramref name="buffer"/>, which should hold 64 KiB so no
    /// datagram is truncated. Ends with <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/>
    /// fires and with <see cref="ObjectDisposedException"/> after disposal.
    /// </summary>
    ValueTask<ReceivedDatagram> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken);
}

/// <summary>
/// Optional for a transport: a blocking receive, so that a node can run its whole driver loop on one dedicated thread
/// that waits in the socket itself: the kernel wakes it when a datagram arrives, it feeds the engine straight from its
/// receive buffer, and while it works the next datagrams queue in the socket and are read without sleeping. Other
/// threads (application sends, a stop) make it look at its inbox with <see cref="Wake"/>.
/// <see cref="UdpDatagramTransport"/> implements it; a wrapping transport implements it when its inner one does
/// (<see cref="SupportsBlockingReceive"/>) and passes zero-length datagrams (wake-ups) through untouched.
/// </summary>
public interface IBlockingDatagramReceiver
{
    /// <summary>False when this transport cannot block (a wrapper around a transport that cannot): use <see cref="IDatagramTransport.ReceiveAsync"/>.</summary>
    bool SupportsBlockingReceive { get; }

    /// <summary>
    /// Waits at most <paramref name="timeout"/> for the next datagram and copies it into <paramref name="buffer"/>
    /// (64 KiB). <see cref="ReceivedDatagram.Length"/> is the datagram's real length even when fewer bytes were kept (a
    /// datagram longer than the buffer, or than a transport's own batch buffers: 2 KiB for <see cref="UdpDatagramTransport"/>
    /// on Linux, far above the protocol's largest), so a receiver drops such datagrams by their length. False when none
    /// came in time. <see cref="TimeSpan.Zero"/> does not wait: it
    /// takes a datagram that is already there, or returns false. A zero-length datagram is a wake-up (see
    /// <see cref="Wake"/>) or noise, never protocol data. Throws <see cref="ObjectDisposedException"/> after disposal;
    /// never throws for network conditions.
    /// </summary>
    bool TryReceive(Span<byte> buffer, TimeSpan timeout, out ReceivedDatagram received);

    /// <summary>
    /// Like <see cref="TryReceive(Span{byte}, TimeSpan, out ReceivedDatagram)"/>, but a wait that finds nothing may end
    /// up to <paramref name="slack"/> after <paramref name="timeout"/> instead of at it (the caller's deadline is
    /// lenient, <see cref="Whisper.Protocol.Engine.WhisperEngine.NextTimeoutLatest"/>), so a transport whose waits end on
    /// scheduler ticks can block in its socket rather than poll for a wait shorter than a tick. A transport that waits
    /// exactly ignores it (the default).
    /// </summary>
    bool TryReceive(Span<byte> buffer, TimeSpan timeout, TimeSpan slack, out ReceivedDatagram received) =>
        TryReceive(buffer, timeout, out received);

    /// <summary>
    /// Thread-safe: makes a <see cref="TryReceive"/> that waits now, or the next one, return soon (with a zero-length
    /// datagram or false). Best effort and never throws: a wake-up that is lost only delays the caller's input until
    /// the driver's bounded wait ends.
    /// </summary>
    void Wake();
}

/// <summary>
/// Optional for an <see cref="IDatagramTransport"/>: sends several datagrams with one system call. A node that produces
/// several datagrams at once (a broadcast to each member, acks for a batch) queues them with <see cref="QueueSend"/> and
/// sends them with <see cref="FlushSends"/>, on the side of the transport that sends (one caller at a time). Everything
/// queued leaves, in order, by the next flush. <see cref="UdpDatagramTransport"/> implements it with <c>sendmmsg</c> on
/// Linux; a wrapping transport implements it when its inner one does (<see cref="SupportsBatchSend"/>).
/// </summary>
public interface IDatagramBatchSender
{
    /// <summary>False when sends cannot be batched here: use <see cref="IDatagramTransport.Send"/>.</summary>
    bool SupportsBatchSend { get; }

    /// <summary>
    /// Like <see cref="IDatagramTransport.Send"/>, but the datagram (copied) may wait for <see cref="FlushSends"/>;
    /// false when it was refused at once. A full batch, or a datagram too long for one, is sent without waiting.
    /// </summary>
    bool QueueSend(ReadOnlySpan<byte> datagram, IPEndPoint destination);

    /// <summary>Sends every queued datagram; returns how many the OS refused (counted, never thrown).</summary>
    int FlushSends();
}

/// <summary>One received datagram: <see cref="Length"/> bytes at the start of the caller's buffer, from <see cref="From"/>.</summary>
public readonly record struct ReceivedDatagram(int Length, IPEndPoint From);
