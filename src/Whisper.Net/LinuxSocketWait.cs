using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Whisper.Net;

/// <summary>
/// The blocking receive of <see cref="UdpDatagramTransport"/> on Linux, straight on the socket's file descriptor:
/// <c>recvmmsg</c> takes everything the socket holds (up to <see cref="BatchSize"/> datagrams) in one call into buffers of
/// its own, handed out one by one. When nothing is there it waits in the socket itself: a blocking <c>recvmmsg</c>
/// (<c>MSG_WAITFORONE</c>) bounded by <c>SO_RCVTIMEO</c>, so a datagram that finds the receiver waiting costs one system
/// call, as a plain blocking receive does. <c>SO_RCVTIMEO</c> counts in scheduler ticks (4 ms at the usual 250 Hz, measured
/// at creation), so it is set to the whole ticks that fit in the wait (the wait ends early, never late), or in the wait
/// and the slack its caller allows past it (a lenient timer), and only when that changes; a wait that fits no tick polls
/// the socket with <c>poll</c> (millisecond timeouts). While waits block in the
/// socket (<see cref="BlocksInSocket"/>), the transport wakes them with a zero-length datagram to the socket's own
/// address, which ends either kind of wait (the driver takes an empty datagram for a wake-up); otherwise
/// <see cref="Wake"/> writes an <c>eventfd</c> that every wait then polls with the socket.
/// .NET's own synchronous receive keeps the descriptor non-blocking and waits on an event that its epoll thread sets, so
/// every datagram that finds the receiver waiting would cost two thread wake-ups instead of one. On the sending side,
/// <see cref="Queue"/> and <see cref="Flush"/> send a batch of datagrams with one <c>sendmmsg</c>.
/// <para>Receives by one thread at a time, sends by one thread at a time; <see cref="Wake"/> from any thread. All hold a reference on the handles
/// they use, so a concurrent dispose never lets them touch a descriptor number that was closed (and maybe reused). The
/// batch buffers are pinned managed arrays, so they live as long as this object, whoever disposes it.</para>
/// </summary>
internal sealed unsafe partial class LinuxSocketWait : IDisposable
{
    /// <summary>Datagrams one <c>recvmmsg</c> takes at most.</summary>
    public const int BatchSize = 32;

    /// <summary>
    /// Bytes kept of each datagram in the batch: longer ones are handed out with their real length but only this many
    /// bytes (the protocol's datagrams are shorter, so its receiver drops them by their length).
    /// </summary>
    public const int SlotBytes = 2048;

    private const int NameBytes = 128; // sockaddr_storage
    private const int EAGAIN = 11;
    private const int EINTR = 4;
    private const int EBADF = 9;
    private const int MSG_TRUNC = 0x20;
    private const int MSG_DONTWAIT = 0x40;
    private const short POLLIN = 0x1;
    private const short POLLNVAL = 0x20;
    private const int EFD_CLOEXEC = 0x80000;
    private const int EFD_NONBLOCK = 0x800;
    private const int MSG_WAITFORONE = 0x10000;
    private const int SOL_SOCKET = 1;
    private const int SO_RCVTIMEO = 20; // the 64-bit struct timeval on 64-bit Linux
    private const int F_GETFL = 3;
    private const int F_SETFL = 4;
    private const int O_NONBLOCK = 0x800;

    /// <summary>Ticks of the kernel's timer wheel that its first level keeps exactly; longer timeouts may expire up to 1/8 late.</summary>
    private const long ExactTicks = 63;

    private readonly SafeHandle _socket;
    private readonly SafeFileHandle _event;
    private readonly Batch _in = new(); // what recvmmsg took
    private readonly Batch _out = new(); // what Queue holds for sendmmsg
    private int _queued; // datagrams waiting for Flush
    private int _count; // datagrams in the batch
    private int _next; // the next one to hand out
    private bool _emptied; // the last recvmmsg found fewer than BatchSize: the socket was empty just now
    private readonly long _tickMicros; // the kernel's scheduler tick, 0 when the blocking wait is off (poll only)
    private long _armedTicks; // the SO_RCVTIMEO set now, in scheduler ticks (0: not set)
    private volatile bool _blockingOff; // the descriptor turned out non-blocking, or SO_RCVTIMEO could not be set: poll only

    private LinuxSocketWait(SafeHandle socket, SafeFileHandle wakeEvent, long tickMicros)
    {
        _socket = socket;
        _event = wakeEvent;
        _tickMicros = tickMicros;
        _armedTicks = tickMicros > 0 ? 1 : 0; // the calibration left one tick set
    }

    /// <summary>
    /// True when waits block in the socket, which only a datagram to it ends: a wake-up must then be a zero-length datagram
    /// to itself, not <see cref="Wake"/>. False when they poll the socket and the eventfd.
    /// </summary>
    public bool BlocksInSocket => _tickMicros > 0 && !_blockingOff;

    /// <summary>
    /// Copies a datagram of at most <see cref="SlotBytes"/> bytes and its destination (a native sockaddr) for the next
    /// <see cref="Flush"/>; false (nothing queued) when the batch is full or the datagram too long: send it otherwise.
    /// One sending caller at a time.
    /// </summary>
    public bool Queue(ReadOnlySpan<byte> datagram, SocketAddress to)
    {
        if (_queued == BatchSize || datagram.Length > SlotBytes || to.Size > NameBytes)
        {
            return false;
        }

        var i = _queued++;
        datagram.CopyTo(_out.Data.AsSpan(i * SlotBytes, SlotBytes));
        to.Buffer.Span[..to.Size].CopyTo(_out.Names.AsSpan(i * NameBytes, NameBytes));
        _out.Iov[i].Length = (nuint)datagram.Length;
        _out.Headers[i].Header.NameLength = (uint)to.Size;
        return true;
    }

    /// <summary>
    /// Sends the queued datagrams in order with as few <c>sendmmsg</c> calls as the kernel allows; returns how many it
    /// refused (each skipped, the rest still sent). Throws <see cref="ObjectDisposedException"/> once the socket is closed.
    /// </summary>
    public int Flush()
    {
        var queued = _queued;
        _queued = 0;
        if (queued == 0)
        {
            return 0;
        }

        var socketRef = false;
        try
        {
            _socket.DangerousAddRef(ref socketRef);
            var fd = (int)_socket.DangerousGetHandle();
            var failed = 0;
            var at = 0;
            // Each pass sends at least one datagram or skips the one the kernel refused: at most `queued` passes, plus
            // interrupted calls (bounded too).
            for (var pass = 0; at < queued && pass < 4 * BatchSize; pass++)
            {
                var sent = sendmmsg(fd, _out.First + at, (uint)(queued - at), 0);
                if (sent > 0)
                {
                    at += sent;
                    continue;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == EBADF)
                {
                    throw new ObjectDisposedException(nameof(UdpDatagramTransport));
                }

                if (errno != EINTR)
                {
                    failed++; // a full buffer, an unreachable network: UDP promises nothing, the protocol recovers
                    at++;
                }
            }

            return failed + (queued - at);
        }
        finally
        {
            if (socketRef)
            {
                _socket.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Null where this is not Linux or the C library refuses (the transport then uses .NET's receive).
    /// <paramref name="canWakeBySelf"/>: the transport can send this socket a wake-up datagram (it knows an address of its
    /// own); false keeps every wait in <c>poll</c> with the <c>eventfd</c>.
    /// </summary>
    public static LinuxSocketWait? TryCreate(Socket socket, bool canWakeBySelf)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            var fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (fd < 0)
            {
                return null;
            }

            return new LinuxSocketWait(socket.SafeHandle, new SafeFileHandle(fd, ownsHandle: true), canWakeBySelf ? PrepareBlockingWait(socket.SafeHandle) : 0);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Makes the descriptor blocking (the transport never uses .NET's asynchronous calls on it, which would need it
    /// non-blocking) and measures the kernel's scheduler tick: <c>SO_RCVTIMEO</c> set to 1 us reads back as one tick. 0
    /// (poll only) when either fails.
    /// </summary>
    private static long PrepareBlockingWait(SafeHandle socket)
    {
        var added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            var fd = (int)socket.DangerousGetHandle();
            var flags = fcntl(fd, F_GETFL, 0);
            if (flags < 0 || ((flags & O_NONBLOCK) != 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0))
            {
                return 0;
            }

            var asked = new TimeVal { Seconds = 0, Micros = 1 };
            var got = default(TimeVal);
            var length = (uint)sizeof(TimeVal);
            if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &asked, (uint)sizeof(TimeVal)) != 0
                || getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &got, &length) != 0)
            {
                return 0;
            }

            var tick = (got.Seconds * 1_000_000) + got.Micros;
            return tick is >= 100 and <= 100_000 ? tick : 0; // 10 Hz ... 10 kHz; anything else is not a tick
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Takes one datagram into <paramref name="buffer"/> and its source into <paramref name="from"/> (a native sockaddr,
    /// as <see cref="SocketAddress"/> holds it on Linux); waits <paramref name="timeout"/>, at most <paramref name="slack"/> longer (zero: not at all).
    /// Returns the datagram's real length (larger than the bytes copied when it was longer than the buffer or
    /// <see cref="SlotBytes"/>), -1 when nothing came in time or <see cref="Wake"/> ended the wait; ignorable errors
    /// (ICMP echoes of earlier sends) are counted in <paramref name="ignoredErrors"/> and skipped. With a zero timeout,
    /// the first call after the batch that emptied the socket was handed out reports nothing without asking the kernel
    /// again (it was empty a moment ago; the next wait polls it).
    /// </summary>
    /// <param name="slack">How much later than <paramref name="timeout"/> a wait that finds nothing may end: it blocks in
    /// the socket for the whole ticks that fit before the timeout plus the slack (so a wait shorter than a tick blocks for
    /// one tick when the slack allows it, instead of polling), and never past them. Zero: ends early, never late.</param>
    public int Receive(Span<byte> buffer, SocketAddress from, TimeSpan timeout, TimeSpan slack, ref long ignoredErrors)
    {
        if (_next < _count)
        {
            return Take(buffer, from);
        }

        if (timeout <= TimeSpan.Zero && _emptied)
        {
            _emptied = false;
            return -1;
        }

        var deadline = timeout > TimeSpan.Zero ? Stopwatch.GetTimestamp() + (long)Math.Ceiling(timeout.TotalSeconds * Stopwatch.Frequency) : 0;
        var slackMicros = slack > TimeSpan.Zero ? (long)slack.TotalMicroseconds : 0; // how far past the deadline a blocking wait may end
        var socketRef = false;
        var eventRef = false;
        try
        {
            _socket.DangerousAddRef(ref socketRef);
            _event.DangerousAddRef(ref eventRef);
            var fd = (int)_socket.DangerousGetHandle();
            var wakeFd = (int)_event.DangerousGetHandle();
            var fds = stackalloc PollFd[2];
            // Each pass takes datagrams, an error the kernel reported once, or a wait that ends by the deadline.
            for (var pass = 0; pass < 1_000_000; pass++)
            {
                var leftMicros = deadline == 0 ? 0 : (deadline - Stopwatch.GetTimestamp()) * 1_000_000 / Stopwatch.Frequency;
                var flags = MSG_DONTWAIT | MSG_TRUNC;
                var blocking = false;
                if (leftMicros > 0 && BlocksInSocket && (leftMicros + slackMicros) / _tickMicros is var ticks and > 0)
                {
                    ArmTimeout(fd, ticks <= ExactTicks ? ticks : ticks - (ticks / 8));
                    flags = MSG_WAITFORONE | MSG_TRUNC;
                    blocking = true;
                }
                else if (leftMicros > 0)
                {
                    fds[0] = new PollFd { Fd = fd, Events = POLLIN };
                    fds[1] = new PollFd { Fd = wakeFd, Events = POLLIN };
                    var watched = BlocksInSocket ? 1u : 2u; // wake-ups come as datagrams then: the eventfd stays quiet
                    var ready = poll(fds, watched, (int)Math.Min((leftMicros + 999) / 1000, int.MaxValue));
                    if (ready == 0)
                    {
                        return -1;
                    }

                    if (ready < 0)
                    {
                        continue; // EINTR: the deadline still holds
                    }

                    if ((fds[0].Revents & POLLNVAL) != 0)
                    {
                        throw new ObjectDisposedException(nameof(UdpDatagramTransport));
                    }

                    if (watched == 2 && (fds[1].Revents & POLLIN) != 0)
                    {
                        long drained;
                        _ = read(wakeFd, &drained, sizeof(long)); // resets the counter; the wake-up is spent on this wait
                        return -1;
                    }
                }

                var taken = recvmmsg(fd, _in.First, BatchSize, flags, null);
                if (taken > 0)
                {
                    _count = taken;
                    _next = 0;
                    _emptied = taken < BatchSize;
                    return Take(buffer, from);
                }

                if (taken == 0)
                {
                    return -1; // the socket was shut down (it is being disposed): nothing more will come
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == EBADF)
                {
                    throw new ObjectDisposedException(nameof(UdpDatagramTransport));
                }

                if (errno == EAGAIN)
                {
                    _emptied = false;
                    if (blocking && (fcntl(fd, F_GETFL, 0) & O_NONBLOCK) != 0)
                    {
                        // Not a timeout: something made the descriptor non-blocking after all. Poll from now on.
                        _blockingOff = true;
                        Wake(); // a wake-up datagram sent meanwhile is still in the socket; from now on they come here
                    }

                    if (leftMicros <= 0)
                    {
                        return -1; // no wait asked: nothing there
                    }
                }
                else if (errno != EINTR)
                {
                    ignoredErrors++; // an ICMP echo of an earlier send, reported once: the next pass gets past it
                }
            }

            return -1;
        }
        finally
        {
            if (eventRef)
            {
                _event.DangerousRelease();
            }

            if (socketRef)
            {
                _socket.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Sets <c>SO_RCVTIMEO</c> to about <paramref name="ticks"/> scheduler ticks: unchanged while the value set is at most
    /// that and at least half of it (a wait may end early, never late), so a busy receiver rarely pays for the call.
    /// </summary>
    private void ArmTimeout(int fd, long ticks)
    {
        if (_armedTicks <= ticks && _armedTicks * 2 >= ticks)
        {
            return;
        }

        var micros = ticks * _tickMicros;
        var value = new TimeVal { Seconds = (nint)(micros / 1_000_000), Micros = (nint)(micros % 1_000_000) };
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, (uint)sizeof(TimeVal)) == 0)
        {
            _armedTicks = ticks;
        }
        else
        {
            _blockingOff = true; // the wait could not be bounded: poll from now on
        }
    }

    /// <summary>Hands out the next datagram of the batch.</summary>
    private int Take(Span<byte> buffer, SocketAddress from)
    {
        var i = _next++;
        ref var header = ref _in.Headers[i];
        var length = (int)header.Length;
        _in.Data.AsSpan(i * SlotBytes, Math.Min(Math.Min(length, SlotBytes), buffer.Length)).CopyTo(buffer);
        var nameLength = (int)Math.Min(header.Header.NameLength, (uint)Math.Min(NameBytes, from.Buffer.Length));
        _in.Names.AsSpan(i * NameBytes, nameLength).CopyTo(from.Buffer.Span);
        from.Size = nameLength;
        header.Header.NameLength = NameBytes; // ready for the next recvmmsg (the kernel overwrites it with the real size)
        header.Header.Flags = 0;
        return length;
    }

    /// <summary>
    /// Ends a <see cref="Receive"/> that polls now, or the next one, through the eventfd (waits that block in the socket
    /// need a datagram instead: <see cref="BlocksInSocket"/>). Thread-safe; a no-op after dispose.
    /// </summary>
    public void Wake()
    {
        var added = false;
        try
        {
            _event.DangerousAddRef(ref added);
            long one = 1;
            _ = write((int)_event.DangerousGetHandle(), &one, sizeof(long));
        }
        catch (ObjectDisposedException)
        {
            // disposed: nobody waits any more
        }
        finally
        {
            if (added)
            {
                _event.DangerousRelease();
            }
        }
    }

    public void Dispose() => _event.Dispose();

    /// <summary>
    /// <see cref="BatchSize"/> slots of <see cref="SlotBytes"/> with room for their addresses, laid out as the array of
    /// <c>struct mmsghdr</c> that <c>recvmmsg</c> fills and <c>sendmmsg</c> reads (each slot starts full length, with the
    /// whole address room). Pinned managed arrays, so the pointers into them hold as long as this object lives.
    /// </summary>
    private sealed class Batch
    {
        public readonly byte[] Data = GC.AllocateArray<byte>(BatchSize * SlotBytes, pinned: true);
        public readonly byte[] Names = GC.AllocateArray<byte>(BatchSize * NameBytes, pinned: true);
        public readonly IoVec[] Iov = GC.AllocateArray<IoVec>(BatchSize, pinned: true);
        public readonly MMsgHdr[] Headers = GC.AllocateArray<MMsgHdr>(BatchSize, pinned: true);
        public readonly MMsgHdr* First;

        public Batch()
        {
            var data = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Data));
            var names = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Names));
            var iov = (IoVec*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Iov));
            First = (MMsgHdr*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Headers));
            for (var i = 0; i < BatchSize; i++)
            {
                iov[i] = new IoVec { Base = data + (i * SlotBytes), Length = SlotBytes };
                Headers[i].Header = new MsgHdr { Name = names + (i * NameBytes), NameLength = NameBytes, Iov = iov + i, IovLength = 1 };
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    /// <summary>struct msghdr (the layout follows the pointer size, as C's does).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public byte* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct mmsghdr.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    /// <summary>struct timeval (64-bit fields on 64-bit Linux).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal
    {
        public nint Seconds;
        public nint Micros;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sendmmsg(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int recvmmsg(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint count, int timeoutMillis);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int name, void* value, uint* length);

    // fcntl is variadic in C; its third argument is an int for F_GETFL and F_SETFL, passed in a register like a fixed one.
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);
}
