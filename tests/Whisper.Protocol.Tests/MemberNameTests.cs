using Xunit;

namespace Whisper.Protocol.Tests;

public sealed class MemberNameTests
{
    [Theory]
    [InlineData("a")]
    [InlineData("alice")]
    [InlineData("Bob-2")]
    [InlineData("node_07.lan")]
    [InlineData("..")]
    [InlineData("12345678901234567890123456789012")] // exactly 32
    public void AcceptsOneToThirtyTwoLettersDigitsDashUnderscoreAndDot(string name)
    {
        Assert.True(MemberName.IsValid(name));
        Assert.Null(MemberName.Validate(name));
    }

    [Theory]
    [InlineData(null, "empty")]
    [InlineData("", "empty")]
    [InlineData("bad name!", "' '")]
    [InlineData("../etc", "'/'")]
    [InlineData("tab\there", "'\t'")]
    [InlineData("123456789012345678901234567890123", "33 characters")]
    public void RefusesOtherNamesWithAReasonThatStatesTheRule(string? name, string reason)
    {
        var message = MemberName.Validate(name);

        Assert.False(MemberName.IsValid(name));
        Assert.NotNull(message);
        Assert.Contains(reason, message, StringComparison.Ordinal);
        Assert.Contains(MemberName.Rule, message, StringComparison.Ordinal);
    }

    [Fact]
    public void RefusesA300CharacterName()
    {
        var message = MemberName.Validate(new string('x', 300));

        Assert.NotNull(message);
        Assert.Contains("300 characters", message, StringComparison.Ordinal);
        Assert.Contains(MemberName.Rule, message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Zoë")]
    [InlineData("名前")]
    [InlineData("Ωmega")]
    public void RefusesNonAsciiLettersSoANameFitsTheThirtyTwoByteWireBound(string name)
    {
        var message = MemberName.Validate(name);

        Assert.NotNull(message);
        Assert.Contains(MemberName.Rule, message, StringComparison.Ordinal);
    }

    [Fact]
    public void RuleMentionsTheLengthAndTheAllowedCharacters()
    {
        Assert.Contains("1-32", MemberName.Rule, StringComparison.Ordinal);
        Assert.Contains("letters, digits", MemberName.Rule, StringComparison.Ordinal);
    }
}
