using System.Net;
using Whisper.Protocol;
using Whisper.Protocol.Wire;

namespace Whisper.Discovery;

/// <summary>
/// What the discovery server did, for logs and tests, drained with <see cref="DiscoveryEngine.TryPollEvent"/>.
/// <see cref="MemberCount"/> is the number of members right after the event.
/// </summary>
public abstract record DiscoveryEvent(int MemberCount)
{
    /// <summary>One readable line, e.g. <c>admitted alice (3/10) from 127.0.0.1:5001</c>.</summary>
    public abstract string Describe(int maxMembers);

    /// <summary>Text from denied requests is untrusted: control characters become '?' and long text is cut, so a log line stays one line.</summary>
    internal static string Printable(string text, int maxLength = 40)
    {
        var cut = text.Length > maxLength ? text[..maxLength] + "..." : text;
        return string.Create(cut.Length, cut, static (span, s) =>
        {
            for (var i = 0; i < s.Length; i++)
            {
                span[i] = char.IsControl(s[i]) || char.IsSurrogate(s[i]) ? '?' : s[i];
            }
        });
    }
}

/// <summary>A newcomer got a slot and a <see cref="JoinAcceptFrame"/>.</summary>
public sealed record MemberAdmitted(MemberRecord Member, int MemberCount) : DiscoveryEvent(MemberCount)
{
    public override string Describe(int maxMembers) =>
        $"admitted {Member.Name} ({MemberCount}/{maxMembers}) from {Member.Endpoint}";
}

/// <summary>A join request was refused with a <see cref="JoinDenyFrame"/> (<see cref="Name"/> is as received, untrusted).</summary>
public sealed record JoinDenied(string Name, IPEndPoint From, DenyReason Reason, string Message, int MemberCount) : DiscoveryEvent(MemberCount)
{
    public override string Describe(int maxMembers) => Name.Length == 0
        ? $"denied {From}: {Reason}: {Printable(Message, 600)}"
        : $"denied '{Printable(Name)}' from {From}: {Reason}: {Printable(Message, 600)}";
}

/// <summary>A member said goodbye; its slot and name are free.</summary>
public sealed record MemberLeft(MemberRecord Member, int MemberCount) : DiscoveryEvent(MemberCount)
{
    public override string Describe(int maxMembers) =>
        $"{Member.Name} left ({MemberCount}/{maxMembers})";
}

/// <summary>A member stopped renewing its lease; its slot and name are free.</summary>
public sealed record LeaseExpired(MemberRecord Member, int MemberCount) : DiscoveryEvent(MemberCount)
{
    public override string Describe(int maxMembers) =>
        $"lease of {Member.Name} at {Member.Endpoint} expired ({MemberCount}/{maxMembers})";
}

/// <summary>
/// A member this server did not know was learned from a lease (after a server restart, or after its lease
/// lapsed while it was alive). <see cref="Via"/> is the member whose lease carried it (itself, or a member whose view listed it).
/// </summary>
public sealed record MemberRelearned(MemberRecord Member, MemberId Via, int MemberCount) : DiscoveryEvent(MemberCount)
{
    public override string Describe(int maxMembers) => Via == Member.Id
        ? $"re-learned {Member.Name} at {Member.Endpoint} from its lease ({MemberCount}/{maxMembers})"
        : $"re-learned {Member.Name} at {Member.Endpoint} from the view of {Via.ToString()[..6]} ({MemberCount}/{maxMembers})";
}

/// <summary>A member whose name a newcomer wanted did not answer the server's probes and was removed.</summary>
public sealed record MemberProvenDead(MemberRecord Member, int MemberCount) : DiscoveryEvent(MemberCount)
{
    public override string Describe(int maxMembers) =>
        $"{Member.Name} at {Member.Endpoint} did not answer probes: proven dead, slot freed ({MemberCount}/{maxMembers})";
}

/// <summary>A member's slot was freed because a live member reported (through its lease view) that it is gone.</summary>
public sealed record MemberReportedGone(MemberRecord Member, MemberId Reporter, int MemberCount) : DiscoveryEvent(MemberCount)
{
    public override string Describe(int maxMembers) =>
        $"{Member.Name} reported gone by {Reporter.ToString()[..6]}, slot freed ({MemberCount}/{maxMembers})";
}

/// <summary>
/// A join came from the very endpoint of the live holder of the same name: that endpoint's socket now belongs
/// to a new incarnation, so the old one is gone and its slot goes to the new one (a <see cref="MemberAdmitted"/> follows).
/// </summary>
public sealed record MemberReplaced(MemberRecord Old, MemberRecord New, int MemberCount) : DiscoveryEvent(MemberCount)
{
    public override string Describe(int maxMembers) =>
        $"{New.Name} at {New.Endpoint} rejoined as a new incarnation; the old one ({Old.Id.ToString()[..6]}) is dropped";
}

/// <summary>A lease from an unknown member could not be taken in (group full, or its name is held by another live member).</summary>
public sealed record LeaseRefused(MemberRecord Member, DenyReason Reason, int MemberCount) : DiscoveryEvent(MemberCount)
{
    public override string Describe(int maxMembers) =>
        $"cannot re-learn {Member.Name} at {Member.Endpoint}: {Reason} ({MemberCount}/{maxMembers})";
}
