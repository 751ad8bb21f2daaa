namespace Whisper.Protocol;

/// <summary>
/// Identity of one incarnation of a member: a random non-zero 64-bit value drawn when a node starts.
/// A node restarted under the same name gets a new <see cref="MemberId"/>, so its old messages are never
/// confused with new ones. Zero means "no member" on the wire (the discovery server, or not yet known).
/// </summary>
public readonly record struct MemberId(ulong Value) : IComparable<MemberId>
{
    public static MemberId None => default;

    public bool IsNone => Value == 0;

    public int CompareTo(MemberId other) => Value.CompareTo(other.Value);

    /// <summary>Short, stable hex form used in logs and traces.</summary>
    public override string ToString() => Value.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A member as users see it: its name and the incarnation behind the name.</summary>
public readonly record struct MemberRef(string Name, MemberId Id)
{
    public override string ToString() => $"{Name}#{Id.ToString()[..6]}";
}
