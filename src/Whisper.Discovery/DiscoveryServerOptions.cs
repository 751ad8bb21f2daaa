using System.Net;

namespace Whisper.Discovery;

/// <summary>Settings of a <see cref="DiscoveryServer"/>.</summary>
public sealed record DiscoveryServerOptions
{
    /// <summary>The well-known port nodes use when none is given.</summary>
    public const int DefaultPort = 7700;

    /// <summary>Where to listen. Port 0 picks a free port; <see cref="DiscoveryServer.LocalEndpoint"/> reports it.</summary>
    public IPEndPoint Bind { get; init; } = new(IPAddress.Loopback, DefaultPort);

    /// <summary>The admission rules: group cap and lease timeout.</summary>
    public DiscoveryOptions Engine { get; init; } = new();
}
