using System.Globalization;
using System.Text;
using Whisper.Protocol.Wire;

namespace Whisper.Discovery;

/// <summary>Counters of a <see cref="DiscoveryEngine"/> for diagnostics. Mutable only by the engine.</summary>
public sealed class DiscoveryStats
{
    private readonly long[] _malformed = new long[Enum.GetValues<DecodeStatus>().Length];

    public long DatagramsReceived { get; internal set; }
    public long DatagramsSent { get; internal set; }
    public long BytesSent { get; internal set; }

    /// <summary>Datagrams the codec rejected (any status but <see cref="DecodeStatus.Ok"/>), including version mismatches.</summary>
    public long MalformedDropped { get; internal set; }

    /// <summary>Datagrams with the Whisper magic but another protocol version (each answered with a deny).</summary>
    public long VersionMismatches { get; internal set; }

    /// <summary>Well-formed frames the server has no use for (frames between members, or from sender id zero).</summary>
    public long IgnoredFrames { get; internal set; }

    /// <summary>Requests, leases and leaves from departed incarnations, or leases whose name disagrees with the record.</summary>
    public long StaleDropped { get; internal set; }

    public long JoinRequests { get; internal set; }
    public long DuplicateJoinRequests { get; internal set; }
    public long Admitted { get; internal set; }
    public long Denied { get; internal set; }
    public long DeniedFull { get; internal set; }
    public long DeniedNameTaken { get; internal set; }
    public long DeniedInvalidName { get; internal set; }
    public long LeasesRenewed { get; internal set; }
    public long Relearned { get; internal set; }

    /// <summary>Join requests left unanswered during the re-learning window after start.</summary>
    public long DeferredJoinRequests { get; internal set; }

    /// <summary>Members removed because a live member's view no longer listed them (failure reports).</summary>
    public long ReportedGone { get; internal set; }

    /// <summary>Holders of a wanted name that did not answer the server's probes and were removed.</summary>
    public long ProvenDead { get; internal set; }
    public long LeasesRefused { get; internal set; }
    public long Left { get; internal set; }
    public long Expired { get; internal set; }
    public long Replaced { get; internal set; }

    /// <summary>Datagrams dropped by the codec with this status.</summary>
    public long Malformed(DecodeStatus status) =>
        (uint)status < (uint)_malformed.Length ? _malformed[(int)status] : 0;

    internal void CountMalformed(DecodeStatus status)
    {
        MalformedDropped++;
        if ((uint)status < (uint)_malformed.Length)
        {
            _malformed[(int)status]++;
        }
    }

    internal void CountDenied(DenyReason reason)
    {
        Denied++;
        switch (reason)
        {
            case DenyReason.Full: DeniedFull++; break;
            case DenyReason.NameTaken: DeniedNameTaken++; break;
            case DenyReason.InvalidName: DeniedInvalidName++; break;
            default: break;
        }
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"recv={DatagramsReceived} sent={DatagramsSent} joins={JoinRequests} dup={DuplicateJoinRequests} admitted={Admitted} denied={Denied} (full={DeniedFull} name-taken={DeniedNameTaken} invalid-name={DeniedInvalidName} version={VersionMismatches}) leases={LeasesRenewed} relearned={Relearned} refused={LeasesRefused} left={Left} expired={Expired} replaced={Replaced} ignored={IgnoredFrames} stale={StaleDropped} malformed={MalformedDropped}");
        for (var i = 0; i < _malformed.Length; i++)
        {
            if (_malformed[i] != 0)
            {
                sb.Append(CultureInfo.InvariantCulture, $" {(DecodeStatus)i}={_malformed[i]}");
            }
        }

        return sb.ToString();
    }
}
