using System.Globalization;
using System.Net;
using Whisper.Net;

namespace Whisper.Cli.Chat;

/// <summary>What the chat knows about its discovery server.</summary>
internal enum ServerState
{
    /// <summary>Not probed yet.</summary>
    Checking,

    /// <summary>This chat process hosts the server.</summary>
    HostedHere,

    /// <summary>The last probe was not refused.</summary>
    Reachable,

    /// <summary>The last probe was refused: nothing listens at the server's address.</summary>
    Unreachable,

    /// <summary>Joined through a peer, with no server to keep informed.</summary>
    None,
}

/// <summary>The chat's status line, as a pure function of what the chat knows.</summary>
internal static class StatusLine
{
    /// <summary>
    /// "server: 127.0.0.1:7700 reachable | members: 2 | waiting: 0 | retransmissions: 3 | /quit":
    /// <c>waiting</c> counts messages received but held back until their causal predecessors arrive; before the first
    /// stats arrive the two counters are left out.
    /// </summary>
    public static string Format(IPEndPoint? server, ServerState state, int members, WhisperNodeStats? stats)
    {
        var where = state switch
        {
            ServerState.HostedHere => $"server: hosted here ({server})",
            ServerState.None => "server: none (joined through a peer)",
            ServerState.Reachable => $"server: {server} reachable",
            ServerState.Unreachable => $"server: {server} UNREACHABLE",
            _ => $"server: {server} checking",
        };
        var counters = stats is null
            ? string.Empty
            : string.Create(CultureInfo.InvariantCulture, $" | waiting: {stats.HeldBack} | retransmissions: {stats.ChunksRetransmitted}");
        return string.Create(CultureInfo.InvariantCulture, $"{where} | members: {members}{counters} | /quit");
    }
}
