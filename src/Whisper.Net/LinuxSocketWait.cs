using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Whisper.Net;

/// <summary>
/// The blocking receive of <see cref="UdpDatagramTransport"/> on Linux, straight on the socket's file descriptor:
/// <c>recvmmsg</c> takes everything the socket holds (up to <see cref="BatchSize"/> datagrams) in one call into buffers of
/// its own, handed out one by one; when nothing is there, <c>poll</c> on the socket and on an <c>eventfd</c> that
/// <see cref="Wake"/> writes. The kernel then wakes the waiting thread itself when a datagram arrives. .NET's own
/// synchronous receive keeps the descriptor non-blocking and waits on an event that its epoll thread sets, so every
/// datagram that finds the receiver waiting costs two thread wake-ups instead of one, and a wake-up needs a datagram.
/// A datagram that wakes the receiver costs two system calls (poll, recvmmsg), a busy socket one per batch. On the
/// sending side, <see cref="Queue"/> and <see cref="Flush"/> send a batch of datagrams with one <c>sendmmsg</c>.
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

    private readonly SafeHandle _socket;
    private readonly SafeFileHandle _event;
    private readonly Batch _in = new(); // what recvmmsg took
    private readonly Batch _out = new(); // what Queue holds for sendmmsg
    private int _queued; // datagrams waiting for Flush
    private int _count; // datagrams in the batch
    private int _next; // the next one to hand out
    private bool _emptied; // the last recvmmsg found fewer than BatchSize: the socket was empty just now

    private LinuxSocketWait(SafeHandle socket, SafeFileHandle wakeEvent)
    {
        _socket = socket;
        _event = wakeEvent;
    }

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

    /// <summary>Null where this is not Linux or the C library refuses (the transport then uses .NET's receive).</summary>
    public static LinuxSocketWait? TryCreate(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            var fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            return fd < 0 ? null : new LinuxSocketWait(socket.SafeHandle, new SafeFileHandle(fd, ownsHandle: true));
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Takes one datagram into <paramref name="buffer"/> and its source into <paramref name="from"/> (a native sockaddr,
    /// as <see cref="SocketAddress"/> holds it on Linux); waits at most <paramref name="timeout"/> (zero: not at all).
    /// Returns the datagram's real length (larger than the bytes copied when it was longer than the buffer or
    /// <see cref="SlotBytes"/>), -1 when nothing came in time or <see cref="Wake"/> ended the wait; ignorable errors
    /// (ICMP echoes of earlier sends) are counted in <paramref name="ignoredErrors"/> and skipped. With a zero timeout,
    /// the first call after the batch that emptied the socket was handed out reports nothing without asking the kernel
    /// again (it was empty a moment ago; the next wait polls it).
    /// </summary>
    public int Receive(Span<byte> buffer, SocketAddress from, TimeSpan timeout, ref long ignoredErrors)
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

        var deadline = timeout > TimeSpan.Zero ? Environment.TickCount64 + (long)Math.Ceiling(timeout.TotalMilliseconds) : 0;
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
                var left = deadline - Environment.TickCount64;
                if (left > 0)
                {
                    fds[0] = new PollFd { Fd = fd, Events = POLLIN };
                    fds[1] = new PollFd { Fd = wakeFd, Events = POLLIN };
                    var ready = poll(fds, 2, (int)Math.Min(left, int.MaxValue));
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

                    if ((fds[1].Revents & POLLIN) != 0)
                    {
                        long drained;
                        _ = read(wakeFd, &drained, sizeof(long)); // resets the counter; the wake-up is spent on this wait
                        return -1;
                    }
                }

                var taken = recvmmsg(fd, _in.First, BatchSize, MSG_DONTWAIT | MSG_TRUNC, null);
                if (taken > 0)
                {
                    _count = taken;
                    _next = 0;
                    _emptied = taken < BatchSize;
                    return Take(buffer, from);
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == EBADF)
                {
                    throw new ObjectDisposedException(nameof(UdpDatagramTransport));
                }

                if (errno == EAGAIN)
                {
                    _emptied = false;
                    if (left <= 0)
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

    /// <summary>Ends a <see cref="Receive"/> that waits now, or the next one. Thread-safe; a no-op after dispose.</summary>
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
}
