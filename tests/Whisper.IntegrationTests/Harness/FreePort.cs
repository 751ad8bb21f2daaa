using System.Net;
using System.Net.Sockets;

namespace Whisper.IntegrationTests.Harness;

/// <summary>Free loopback UDP ports for child processes (which cannot report a port-0 bind back to us early).</summary>
public static class FreePort
{
    /// <summary>Binds a UDP socket to 127.0.0.1:0, reads the port the OS chose and closes it again.</summary>
    public static int Udp()
    {
        using var probe = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.Client.LocalEndPoint!).Port;
    }

    /// <summary><paramref name="count"/> distinct free loopback UDP ports (all probes stay open until each has its port).</summary>
    public static int[] UdpMany(int count)
    {
        var probes = new List<UdpClient>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                probes.Add(new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)));
            }

            return [.. probes.Select(p => ((IPEndPoint)p.Client.LocalEndPoint!).Port)];
        }
        finally
        {
            foreach (var probe in probes)
            {
                probe.Dispose();
            }
        }
    }
}
