using Whisper.Cli.Chat;

namespace Whisper.Cli.Tests;

public sealed class SenderColorsTests
{
    private static readonly string[] TypicalNames = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];

    [Fact]
    public void TheSameNameAlwaysGetsTheSameColour()
    {
        foreach (var name in TypicalNames)
        {
            Assert.Equal(SenderColors.IndexOf(name), SenderColors.IndexOf(new string(name.ToCharArray())));
        }
    }

    [Fact]
    public void ColoursArePinnedSoEveryNodeAndEveryRunAgrees()
    {
        // FNV-1a of the lower-case UTF-8 name, modulo 12: a change here recolours everyone's chat; change it on purpose only
        Assert.Equal([11, 8, 2, 7, 1, 11, 7, 2, 9, 3], TypicalNames.Select(SenderColors.IndexOf));
        Assert.Equal("pink", SenderColors.Palette[SenderColors.IndexOf("ivan")].Name);
    }

    [Fact]
    public void NamesDifferingOnlyInCaseShareAColourBecauseTheGroupTreatsThemAsOneName()
    {
        Assert.Equal(SenderColors.IndexOf("alice"), SenderColors.IndexOf("ALICE"));
    }

    [Fact]
    public void TypicalNamesMostlyGetDistinctColours()
    {
        Assert.Equal(5, TypicalNames.Take(5).Select(SenderColors.IndexOf).Distinct().Count());
        Assert.True(TypicalNames.Select(SenderColors.IndexOf).Distinct().Count() >= 7);
    }

    [Fact]
    public void TheOwnNameIsBoldAndUncolouredUnlikeEveryOtherSender()
    {
        Assert.Equal(new SenderStyle(null, Bold: true), SenderColors.StyleOf("alice", "alice"));
        foreach (var name in TypicalNames.Skip(1))
        {
            var style = SenderColors.StyleOf(name, "alice");
            Assert.False(style.Bold);
            Assert.Equal(SenderColors.Palette[SenderColors.IndexOf(name)], style.Color);
        }
    }

    [Fact]
    public void PaletteColoursAreDistinctAndReadableOnDarkAndLightBackgrounds()
    {
        Assert.InRange(SenderColors.Palette.Count, 8, 12);
        Assert.Equal(SenderColors.Palette.Count, SenderColors.Palette.Select(c => (c.R, c.G, c.B)).Distinct().Count());
        foreach (var c in SenderColors.Palette)
        {
            var l = Luminance(c);
            var onBlack = (l + 0.05) / 0.05;
            var onWhite = 1.05 / (l + 0.05);
            Assert.True(onBlack >= 4 && onWhite >= 4, $"{c.Name}: contrast {onBlack:F2} on black, {onWhite:F2} on white");
        }
    }

    /// <summary>WCAG relative luminance of an sRGB colour.</summary>
    private static double Luminance(SenderColor c)
    {
        static double Linear(byte v)
        {
            var s = v / 255.0;
            return s <= 0.03928 ? s / 12.92 : Math.Pow((s + 0.055) / 1.055, 2.4);
        }

        return (0.2126 * Linear(c.R)) + (0.7152 * Linear(c.G)) + (0.0722 * Linear(c.B));
    }
}
