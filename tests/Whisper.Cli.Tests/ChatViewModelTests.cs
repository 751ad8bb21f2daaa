using Whisper.Cli.Chat;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;

namespace Whisper.Cli.Tests;

public sealed class ChatViewModelTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);
    private static readonly MemberId Alice = new(1);
    private static readonly MemberId Bob = new(2);
    private ulong _seq;

    private ChatMessage Broadcast(string from, string text) =>
        new(new MessageId(MessageKind.Broadcast, from == "alice" ? Alice : Bob, default, ++_seq), MessageKind.Broadcast,
            from, null, text, VectorClock.Empty, Now);

    private ChatMessage Private(string from, string to, string text) =>
        new(new MessageId(MessageKind.Private, from == "alice" ? Alice : Bob, from == "alice" ? Bob : Alice, ++_seq),
            MessageKind.Private, from, to, text, VectorClock.Empty, Now);

    private static MemberChanged Status(string name, MemberStatus status) =>
        new(new MemberRef(name, name == "alice" ? Alice : Bob), status);

    [Fact]
    public void GroupMessagesGoToTheGroupAndOwnOnesAreMarked()
    {
        var vm = new ChatViewModel("alice");
        vm.Apply(Broadcast("bob", "hi"), Now);
        vm.Apply(Broadcast("alice", "hello"), Now);

        Assert.Equal(
            [new ChatLine(Now, ChatLineKind.Message, "bob", "hi"), new ChatLine(Now, ChatLineKind.Own, "alice", "hello")],
            vm.Group.Lines);
    }

    [Fact]
    public void HistoryMessagesAreMarkedAsHistory()
    {
        var vm = new ChatViewModel("alice");
        vm.Apply(Broadcast("bob", "earlier"), Now, isHistory: true);
        Assert.True(Assert.Single(vm.Group.Lines).IsHistory);
    }

    [Fact]
    public void PrivateMessageOpensItsOwnConversationWithAnUnreadCount()
    {
        var vm = new ChatViewModel("alice");
        vm.Apply(Private("bob", "alice", "psst"), Now);
        vm.Apply(Private("bob", "alice", "still there?"), Now);

        var bob = Assert.Single(vm.Conversations, c => c.Peer == "bob");
        Assert.Equal(2, bob.Unread);
        Assert.Equal("bob (2)", bob.Title);
        Assert.Empty(vm.Group.Lines);
    }

    [Fact]
    public void ActivatingAConversationClearsItsUnreadCount()
    {
        var vm = new ChatViewModel("alice");
        vm.Apply(Private("bob", "alice", "psst"), Now);
        var bob = vm.Conversations[1];
        vm.Activate(bob);

        Assert.Equal(0, bob.Unread);
        Assert.Equal("bob", bob.Title);
        vm.Apply(Private("bob", "alice", "now you see it"), Now);
        Assert.Equal(0, bob.Unread);
    }

    [Fact]
    public void GroupMessagesCountAsUnreadWhileAPrivateTabIsActive()
    {
        var vm = new ChatViewModel("alice");
        vm.OpenPrivate("bob");
        vm.Apply(Broadcast("bob", "to all"), Now);
        Assert.Equal(1, vm.Group.Unread);
    }

    [Fact]
    public void OwnPrivateMessageGoesToTheRecipientsConversationWithoutUnread()
    {
        var vm = new ChatViewModel("alice");
        vm.Apply(Private("alice", "bob", "mine"), Now);
        var bob = Assert.Single(vm.Conversations, c => c.Peer == "bob");
        Assert.Equal(ChatLineKind.Own, Assert.Single(bob.Lines).Kind);
        Assert.Equal(0, bob.Unread);
    }

    [Fact]
    public void MsgCommandOpensThePrivateTabAndIsSent()
    {
        var vm = new ChatViewModel("alice");
        var input = vm.Submit("/msg bob hi", Now);
        Assert.Equal(new PrivateInput("bob", "hi"), input);
        Assert.Equal("bob", vm.Active.Peer);
    }

    [Fact]
    public void PlainTextInAPrivateTabGoesToThatPeer()
    {
        var vm = new ChatViewModel("alice");
        vm.OpenPrivate("bob");
        Assert.Equal(new PrivateInput("bob", "just you"), vm.Submit("just you", Now));
    }

    [Fact]
    public void MessagingYourselfIsExplained()
    {
        var vm = new ChatViewModel("alice");
        Assert.IsType<EmptyInput>(vm.Submit("/msg alice hi", Now));
        Assert.Equal("You cannot send a private message to yourself.", vm.Group.Lines[^1].Text);
    }

    [Fact]
    public void InvalidInputShowsTheErrorAsASystemLine()
    {
        var vm = new ChatViewModel("alice");
        Assert.IsType<EmptyInput>(vm.Submit("/nope", Now));
        var line = Assert.Single(vm.Group.Lines);
        Assert.Equal(ChatLineKind.System, line.Kind);
        Assert.Contains("/help", line.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void HelpListsEveryCommand()
    {
        var vm = new ChatViewModel("alice");
        vm.Submit("/help", Now);
        Assert.Equal(ChatInputParser.HelpLines, vm.Group.Lines.Select(l => l.Text));
    }

    [Fact]
    public void MemberListTracksStatusAndMarksSelf()
    {
        var vm = new ChatViewModel("alice");
        vm.Apply(Status("bob", MemberStatus.Up), Now);
        vm.Apply(Status("bob", MemberStatus.Suspect), Now);
        vm.Apply(Status("bob", MemberStatus.Left), Now);

        Assert.Equal(
            [new MemberEntry("alice", MemberStatus.Up, true), new MemberEntry("bob", MemberStatus.Left, false)],
            vm.Members);
        Assert.Equal(
            ["bob joined", "bob is not answering (suspect)", "bob left"],
            vm.Group.Lines.Select(l => l.Text));
    }

    [Fact]
    public void RepeatedStatusAddsNoSystemLine()
    {
        var vm = new ChatViewModel("alice");
        vm.Apply(Status("bob", MemberStatus.Up), Now);
        vm.Apply(Status("bob", MemberStatus.Up), Now);
        Assert.Single(vm.Group.Lines);
    }

    [Fact]
    public void WhoDescribesEveryMember()
    {
        var vm = new ChatViewModel("alice");
        vm.Apply(Status("bob", MemberStatus.Suspect), Now);
        vm.Submit("/who", Now);
        Assert.Equal("alice (you, up), bob (suspect)", vm.Group.Lines[^1].Text);
    }

    [Fact]
    public void InputHistoryWalksBackAndForward()
    {
        var vm = new ChatViewModel("alice");
        vm.RememberInput("one");
        vm.RememberInput("two");

        Assert.Equal("two", vm.PreviousInput());
        Assert.Equal("one", vm.PreviousInput());
        Assert.Equal("one", vm.PreviousInput());
        Assert.Equal("two", vm.NextInput());
        Assert.Equal(string.Empty, vm.NextInput());
    }

    [Fact]
    public void InputHistoryIsEmptyAtFirstAndBounded()
    {
        var vm = new ChatViewModel("alice");
        Assert.Null(vm.PreviousInput());
        for (var i = 0; i < ChatViewModel.InputHistoryLimit + 10; i++)
        {
            vm.RememberInput($"line {i}");
        }

        string? oldest = null;
        for (var i = 0; i < ChatViewModel.InputHistoryLimit + 10; i++)
        {
            oldest = vm.PreviousInput();
        }

        Assert.Equal("line 10", oldest);
    }
}

public sealed class ChatLineWrapTests
{
    [Fact]
    public void ShortTextStaysOnOneLine() =>
        Assert.Equal(["hello"], ChatViewModel.Wrap("hello", 20));

    [Fact]
    public void LongTextBreaksAtSpacesAndIndentsContinuations() =>
        Assert.Equal(["aaa bbb", "  ccc", "  ddd"], ChatViewModel.Wrap("aaa bbb ccc ddd", 8));

    [Fact]
    public void AWordLongerThanTheLineIsCutHard() =>
        Assert.Equal(["abcdef", "  ghij"], ChatViewModel.Wrap("abcdefghij", 6));

    [Fact]
    public void PastedNewlinesStartNewLines() =>
        Assert.Equal(["one", "two"], ChatViewModel.Wrap("one\r\ntwo", 20));

    [Fact]
    public void EveryWrappedLineFitsTheWidth()
    {
        var text = string.Join(' ', Enumerable.Range(0, 200).Select(i => new string('x', i % 13 + 1)));
        Assert.All(ChatViewModel.Wrap(text, 17), line => Assert.True(line.Length <= 17, line));
    }
}

public sealed class ChatLineLayoutTests
{
    private static readonly DateTimeOffset At = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);

    private static string Time => At.ToLocalTime().ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void TheSenderNameIsLocatedOnTheFirstRowOfAMessage()
    {
        var row = Assert.Single(ChatViewModel.Layout(new ChatLine(At, ChatLineKind.Message, "bob", "hi"), 80));
        Assert.Equal($"{Time} bob: hi", row.Text);
        Assert.Equal("bob", row.Sender);
        Assert.Equal("bob", row.Text.Substring(row.NameStart, row.NameLength));
    }

    [Fact]
    public void OwnAndHistoryMarksComeBeforeTheName()
    {
        var row = Assert.Single(ChatViewModel.Layout(new ChatLine(At, ChatLineKind.Own, "alice", "mine", IsHistory: true), 80));
        Assert.Equal($"(h) {Time} * alice: mine", row.Text);
        Assert.Equal("alice", row.Text.Substring(row.NameStart, row.NameLength));
    }

    [Fact]
    public void WrappedMessagesKeepTheNameOnTheFirstRowOnlyAndMatchWrap()
    {
        var line = new ChatLine(At, ChatLineKind.Message, "carol", "a long message that wraps over several rows of the pane");
        var rows = ChatViewModel.Layout(line, 24).ToList();
        Assert.Equal(ChatViewModel.Wrap(ChatViewModel.Render(line), 24), rows.Select(r => r.Text));
        Assert.True(rows.Count > 2);
        Assert.Equal("carol", rows[0].Sender);
        Assert.All(rows.Skip(1), r => Assert.Null(r.Sender));
    }

    [Fact]
    public void SystemLinesHaveNoName()
    {
        var row = Assert.Single(ChatViewModel.Layout(new ChatLine(At, ChatLineKind.System, null, "bob left"), 80));
        Assert.Null(row.Sender);
        Assert.Equal($"{Time} -- bob left", row.Text);
    }

    [Fact]
    public void ANameWiderThanTheRowIsClippedToTheRow()
    {
        var line = new ChatLine(At, ChatLineKind.Message, "averyveryverylongname", "x");
        var first = ChatViewModel.Layout(line, 12).First();
        Assert.True(first.NameStart + first.NameLength <= first.Text.Length);
    }
}
