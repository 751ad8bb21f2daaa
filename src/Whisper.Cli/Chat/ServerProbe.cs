using System.Net;
using System.Net.Sockets;
using Whisper.Protocol;
using Whisper.Protocol.Wire;

namespace Whisper.Cli.Chat;

/// <summary>
/// Tells whether anything listens at the discovery server's address without asking the server anything (it logs
/// every answered request, and leases get no answer): a well-formed ping with no sender id from a connected UDP
/// socket, which the server counts as an ignored frame and drops. When nothing listens there, the host answers with
/// ICMP port unreachable and the socket reports the refusal. A host that is down or drops silently cannot be told apart from a live server, so
/// "reachable" means "not refused within the timeout"; on one machine (loopback) the answer is exact.
/// </summary>
internal static class ServerProbe
{
    private static readonly byte[] Probe = WireCodec.Encode(new DatagramHeader(MemberId.None, MemberId.None), new PingFrame(0));

    /// <summary>True unless the probe was refused within <paramref name="timeout"/>.</summary>
    public static async Task<bool> IsReachableAsync(IPEndPoint server, TimeSpan timeout, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(server);
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            await socket.ConnectAsync(server, ct).ConfigureAwait(false);
            await socket.SendAsync(Probe, SocketFlags.None, ct).ConfigureAwait(false);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
            wait.CancelAfter(timeout);
            var buffer = new byte[16];
            await socket.ReceiveAsync(buffer, SocketFlags.None, wait.Token).ConfigureAwait(false);
            return true; // something answered
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset
                                             or SocketError.HostUnreachable or SocketError.NetworkUnreachable)
        {
            return false;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return true; // not refused within the timeout
        }
    }
}
