using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Whisper.Net;

/// <summary>
/// The blocking receive of <see cref="UdpDatagramTransport"/> on Linux, straight on the socket's file descriptor: a
/// non-blocking <c>recvfrom</c>, and when nothing is there, <c>poll</c> on the socket and on an <c>eventfd</c> that
/// <see cref="Wake"/> writes. The kernel then wakes the waiting thread itself when a datagram arrives. .NET's own
/// synchronous receive keeps the descriptor non-blocking and waits on an event that its epoll thread sets, so every
/// datagram that finds the receiver waiting costs two thread wake-ups instead of one, and a wake-up needs a datagram.
/// <para>Used by one receiving thread at a time; <see cref="Wake"/> from any thread. Both hold a reference on the handles
/// they use, so a concurrent dispose never lets them touch a descriptor number that was closed (and maybe reused).</para>
/// </summary>
internal sealed unsafe partial class LinuxSocketWait : IDisposable
{
    private const int EAGAIN = 11;
    private const int EINTR = 4;
    private const int EBADF = 9;
    private const int MSG_TRUNC = 0x20;
    private const int MSG_DONTWAIT = 0x40;
    private const short POLLIN = 0x1;
    private const int EFD_CLOEXEC = 0x80000;
    private const int EFD_NONBLOCK = 0x800;

    private readonly SafeHandle _socket;
    private readonly SafeFileHandle _event;

    private LinuxSocketWait(SafeHandle socket, SafeFileHandle wakeEvent)
    {
        _socket = socket;
        _event = wakeEvent;
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
    /// Returns the datagram's real length (larger than the buffer when it was truncated), -1 when nothing came in time
    /// or <see cref="Wake"/> ended the wait; ignorable errors (ICMP echoes of earlier sends) are counted in
    /// <paramref name="ignoredErrors"/> and skipped.
    /// </summary>
    public int Receive(Span<byte> buffer, SocketAddress from, TimeSpan timeout, ref long ignoredErrors)
    {
        var deadline = timeout > TimeSpan.Zero ? Environment.TickCount64 + (long)Math.Ceiling(timeout.TotalMilliseconds) : 0;
        var socketRef = false;
        var eventRef = false;
        try
        {
            _socket.DangerousAddRef(ref socketRef);
            _event.DangerousAddRef(ref eventRef);
            var fd = (int)_socket.DangerousGetHandle();
            var wakeFd = (int)_event.DangerousGetHandle();
            var address = from.Buffer.Span;
            var fds = stackalloc PollFd[2];
            // Each pass takes a datagram, an error the kernel reported once, or a wait that ends by the deadline.
            for (var pass = 0; pass < 1_000_000; pass++)
            {
                int length;
                var addressLength = address.Length;
                fixed (byte* b = buffer)
                fixed (byte* a = address)
                {
                    length = (int)recvfrom(fd, b, (nuint)buffer.Length, MSG_DONTWAIT | MSG_TRUNC, a, &addressLength);
                }

                if (length >= 0)
                {
                    from.Size = addressLength;
                    return length;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == EBADF)
                {
                    throw new ObjectDisposedException(nameof(UdpDatagramTransport));
                }

                if (errno is not (EAGAIN or EINTR))
                {
                    ignoredErrors++;
                    continue;
                }

                var left = deadline - Environment.TickCount64;
                if (errno == EAGAIN && left <= 0)
                {
                    return -1;
                }

                if (errno == EINTR)
                {
                    continue;
                }

                fds[0] = new PollFd { Fd = fd, Events = POLLIN };
                fds[1] = new PollFd { Fd = wakeFd, Events = POLLIN };
                var ready = poll(fds, 2, (int)Math.Min(left, int.MaxValue));
                if (ready == 0)
                {
                    return -1;
                }

                if (ready > 0 && (fds[1].Revents & POLLIN) != 0)
                {
                    long drained;
                    _ = read(wakeFd, &drained, sizeof(long)); // resets the counter; the wake-up is spent on this wait
                    return -1;
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
    private static partial nint recvfrom(int fd, byte* buffer, nuint length, int flags, byte* address, int* addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint count, int timeoutMillis);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, void* buffer, nuint count);
}
