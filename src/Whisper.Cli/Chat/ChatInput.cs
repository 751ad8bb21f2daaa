using Whisper.Protocol;

namespace Whisper.Cli.Chat;

/// <summary>What one line typed into the chat input asks for. A closed set: parse with <see cref="ChatInput.Parse"/>.</summary>
internal abstract record ChatInput;

/// <summary>Send the text to the whole group.</summary>
internal sealed record SayInput(string Text) : ChatInput;

/// <summary>Send the text privately to one member (<c>/msg bob text</c>).</summary>
internal sealed record PrivateInput(string To, string Text) : ChatInput;

/// <summary>Show the commands (<c>/help</c>).</summary>
internal sealed record HelpInput : ChatInput;

/// <summary>List the members and their status (<c>/who</c>).</summary>
internal sealed record WhoInput : ChatInput;

/// <summary>Leave the group gracefully and exit (<c>/quit</c>).</summary>
internal sealed record QuitInput : ChatInput;

/// <summary>Nothing to do (an empty or blank line).</summary>
internal sealed record EmptyInput : ChatInput;

/// <summary>The line could not be understood; <paramref name="Error"/> is a sentence for the user.</summary>
internal sealed record InvalidInput(string Error) : ChatInput;

/// <summary>The chat input parser: plain text is a group message, a leading '/' starts a command.</summary>
internal static class ChatInputParser
{
    /// <summary>The help text shown by <c>/help</c>, one command per line.</summary>
    public static readonly IReadOnlyList<string> HelpLines =
    [
        "text            send text to the whole group",
        "/msg NAME text  send text privately to NAME",
        "/who            list the members and their status",
        "/help           show this help",
        "/quit           leave the group and exit (Ctrl-C does the same)",
        "//text          send text that starts with '/' to the group",
    ];

    /// <summary>Parses one input line (it may contain newlines from a multi-line paste). Never throws.</summary>
    public static ChatInput Parse(string? line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            return new EmptyInput();
        }

        if (!line.StartsWith('/'))
        {
            return new SayInput(line);
        }

        if (line.StartsWith("//", StringComparison.Ordinal))
        {
            return new SayInput(line[1..]);
        }

        var (command, rest) = SplitWord(line[1..]);
        switch (command.ToLowerInvariant())
        {
            case "help":
            case "?":
                return new HelpInput();
            case "who":
                return new WhoInput();
            case "quit":
            case "exit":
                return new QuitInput();
            case "msg":
            case "m":
                return ParsePrivate(rest);
            default:
                return new InvalidInput($"'/{command}' is not a command; type /help to see the commands.");
        }
    }

    private static ChatInput ParsePrivate(string rest)
    {
        var (to, text) = SplitWord(rest);
        if (to.Length == 0)
        {
            return new InvalidInput("/msg needs a name and a text, for example: /msg bob hello");
        }

        if (MemberName.Validate(to) is { } nameError)
        {
            return new InvalidInput($"/msg cannot send to '{to}': {nameError}.");
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            return new InvalidInput($"/msg {to} needs a text to send, for example: /msg {to} hello");
        }

        return new PrivateInput(to, text);
    }

    private static (string Word, string Remainder) SplitWord(string s)
    {
        s = s.TrimStart(' ', '\t');
        var end = s.IndexOfAny([' ', '\t', '\n', '\r']);
        return end < 0 ? (s, string.Empty) : (s[..end], s[(end + 1)..]);
    }
}
