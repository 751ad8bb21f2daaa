using System.Text;

namespace Whisper.Cli.Chat;

/// <summary>A 24-bit colour of the sender palette (the terminal driver maps it down on 16-colour terminals).</summary>
internal readonly record struct SenderColor(string Name, byte R, byte G, byte B);

/// <summary>
/// How one sender name is drawn: in a palette colour, or (the own name) bold in the terminal's own foreground,
/// which no other sender gets.
/// </summary>
internal readonly record struct SenderStyle(SenderColor? Color, bool Bold);

/// <summary>
/// The colour of each sender name, derived from the name alone so it is the same on every node and in every run:
/// FNV-1a (32-bit) over the name's lower-case UTF-8 bytes (names are unique ignoring case), modulo the palette.
/// Never <see cref="string.GetHashCode()"/>, which .NET randomizes per process.
/// <para>
/// Every palette colour has a relative luminance of about 0.2, so it contrasts at least 4:1 with both a black and a
/// white background (the unit tests check this): readable on dark and light terminals alike.
/// </para>
/// </summary>
internal static class SenderColors
{
    /// <summary>Twelve hues of equal luminance around the colour wheel.</summary>
    public static IReadOnlyList<SenderColor> Palette { get; } =
    [
        new("red", 0xDE, 0x44, 0x39),
        new("orange", 0xC1, 0x61, 0x1C),
        new("olive", 0x89, 0x7D, 0x00),
        new("green", 0x35, 0x8C, 0x35),
        new("teal", 0x00, 0x8B, 0x7E),
        new("azure", 0x27, 0x7F, 0xC5),
        new("blue", 0x63, 0x70, 0xDF),
        new("violet", 0x9B, 0x5D, 0xD9),
        new("magenta", 0xC6, 0x4C, 0xA7),
        new("pink", 0xD0, 0x4A, 0x71),
        new("brown", 0xA4, 0x70, 0x3C),
        new("slate", 0x51, 0x82, 0x97),
    ];

    /// <summary>The palette index of <paramref name="name"/>: stable across processes, machines and runs.</summary>
    public static int IndexOf(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(name.ToLowerInvariant()))
        {
            hash ^= b;
            hash *= 16777619u;
        }

        return (int)(hash % (uint)Palette.Count);
    }

    /// <summary>How to draw <paramref name="sender"/> on the screen of <paramref name="self"/>: the own name bold, others in their colour.</summary>
    public static SenderStyle StyleOf(string sender, string self) =>
        string.Equals(sender, self, StringComparison.Ordinal)
            ? new SenderStyle(null, Bold: true)
            : new SenderStyle(Palette[IndexOf(sender)], Bold: false);
}
