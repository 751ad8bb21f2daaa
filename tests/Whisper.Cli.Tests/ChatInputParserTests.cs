using Whisper.Cli.Chat;

namespace Whisper.Cli.Tests;

public sealed class ChatInputParserTests
{
    [Fact]
    public void PlainTextIsAGroupMessage() =>
        Assert.Equal(new SayInput("hello all"), ChatInputParser.Parse("hello all"));

    [Fact]
    public void MultiLinePasteStaysOneGroupMessage() =>
        Assert.Equal(new SayInput("line one\nline two"), ChatInputParser.Parse("line one\nline two"));

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public void BlankLinesDoNothing(string? line) =>
        Assert.IsType<EmptyInput>(ChatInputParser.Parse(line));

    [Fact]
    public void MsgSendsTheRestOfTheLinePrivately() =>
        Assert.Equal(new PrivateInput("bob", "see you at  noon"), ChatInputParser.Parse("/msg bob see you at  noon"));

    [Fact]
    public void MsgKeepsAMultiLineText() =>
        Assert.Equal(new PrivateInput("bob", "a\nb"), ChatInputParser.Parse("/msg bob a\nb"));

    [Theory]
    [InlineData("/help", typeof(HelpInput))]
    [InlineData("/HELP", typeof(HelpInput))]
    [InlineData("/who", typeof(WhoInput))]
    [InlineData("/quit", typeof(QuitInput))]
    [InlineData("/exit", typeof(QuitInput))]
    public void CommandsAreRecognizedWhateverTheirCase(string line, Type expected) =>
        Assert.IsType(expected, ChatInputParser.Parse(line));

    [Fact]
    public void DoubleSlashSendsTextStartingWithASlash() =>
        Assert.Equal(new SayInput("/shrug"), ChatInputParser.Parse("//shrug"));

    [Fact]
    public void UnknownCommandIsExplainedNotSent()
    {
        var result = Assert.IsType<InvalidInput>(ChatInputParser.Parse("/dance"));
        Assert.Equal("'/dance' is not a command; type /help to see the commands.", result.Error);
    }

    [Fact]
    public void MsgWithoutNameExplainsTheForm()
    {
        var result = Assert.IsType<InvalidInput>(ChatInputParser.Parse("/msg"));
        Assert.Contains("/msg bob hello", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void MsgWithoutTextExplainsTheForm()
    {
        var result = Assert.IsType<InvalidInput>(ChatInputParser.Parse("/msg bob   "));
        Assert.Equal("/msg bob needs a text to send, for example: /msg bob hello", result.Error);
    }

    [Fact]
    public void MsgToAnInvalidNameStatesTheNameRule()
    {
        var result = Assert.IsType<InvalidInput>(ChatInputParser.Parse("/msg b@b hi"));
        Assert.Contains("1-32 characters", result.Error, StringComparison.Ordinal);
    }
}
