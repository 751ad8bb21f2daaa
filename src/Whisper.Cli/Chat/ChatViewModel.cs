using Whisper.Net;
using Whisper.Protocol.Engine;

namespace Whisper.Cli.Chat;

/// <summary>How a conversation line is shown.</summary>
internal enum ChatLineKind
{
    /// <summary>A message from another member.</summary>
    Message,

    /// <summary>A message this node sent (shown marked as own).</summary>
    Own,

    /// <summary>A system line: joins, leaves, suspicions, errors, help.</summary>
    System,
}

/// <summary>One line of a conversation. <paramref name="IsHistory"/> marks messages from stored or caught-up history.</summary>
internal sealed record ChatLine(DateTimeOffset At, ChatLineKind Kind, string? Sender, string Text, bool IsHistory = false, bool IsLate = false);

/// <summary>
/// One screen row of the conversation: its text and, on a message's first row, where the sender's name is
/// (<paramref name="NameStart"/>, <paramref name="NameLength"/> columns) so the view can draw it in the sender's colour.
/// </summary>
internal sealed record ChatRow(string Text, string? Sender = null, int NameStart = 0, int NameLength = 0);

/// <summary>A member as the member list shows it.</summary>
internal sealed record MemberEntry(string Name, MemberStatus Status, bool IsSelf);

/// <summary>One conversation: the group, or a private one with a single peer; with its unread count.</summary>
internal sealed class Conversation
{
    private readonly List<ChatLine> _lines = [];

    public Conversation(string? peer) => Peer = peer;

    /// <summary>The peer's name for a private conversation; null for the group.</summary>
    public string? Peer { get; }

    /// <summary>The tab title: "group" or the peer's name, with the unread count when there is one.</summary>
    public string Title => (Peer ?? "group") + (Unread > 0 ? $" ({Unread})" : string.Empty);

    public IReadOnlyList<ChatLine> Lines => _lines;

    public int Unread { get; internal set; }

    internal void Add(ChatLine line) => _lines.Add(line);
}

/// <summary>
/// The pure state behind the chat terminal UI: conversations (group and one per private peer) with unread
/// counts, the member list, the input history and what a typed line does. No terminal, no sockets, no
/// clock: the view feeds it events and input, and redraws from it. Every method is bounded and never throws
/// on user input.
/// </summary>
internal sealed class ChatViewModel
{
    /// <summary>How many entered lines the input history keeps.</summary>
    public const int InputHistoryLimit = 100;

    private readonly List<Conversation> _conversations;
    private readonly SortedDictionary<string, MemberEntry> _members = new(StringComparer.Ordinal);
    private readonly List<string> _inputHistory = [];
    private int _historyCursor;

    public ChatViewModel(string selfName)
    {
        SelfName = selfName;
        _conversations = [new Conversation(null)];
        Active = _conversations[0];
        _members[selfName] = new MemberEntry(selfName, MemberStatus.Up, IsSelf: true);
    }

    public string SelfName { get; }

    /// <summary>The group conversation, always the first tab.</summary>
    public Conversation Group => _conversations[0];

    /// <summary>All conversations in tab order: the group, then private ones in the order they opened.</summary>
    public IReadOnlyList<Conversation> Conversations => _conversations;

    /// <summary>The conversation on screen; its unread count stays zero.</summary>
    public Conversation Active { get; private set; }

    /// <summary>The members sorted by name, the own node included and marked.</summary>
    public IReadOnlyList<MemberEntry> Members => [.. _members.Values];

    /// <summary>Switches to a conversation and clears its unread count.</summary>
    public void Activate(Conversation conversation)
    {
        Active = conversation;
        conversation.Unread = 0;
    }

    /// <summary>Opens (or finds) the private conversation with <paramref name="peer"/> and activates it.</summary>
    public Conversation OpenPrivate(string peer)
    {
        var conversation = FindOrAddPrivate(peer);
        Activate(conversation);
        return conversation;
    }

    /// <summary>
    /// Applies one library event: a message goes to its conversation, a status change to the list and a
    /// system line in the group. <paramref name="now"/> stamps events that carry no time of their own.
    /// </summary>
    public void Apply(WhisperEvent e, DateTimeOffset now, bool isHistory = false)
    {
        switch (e)
        {
            case ChatMessage m:
                AddMessage(m, isHistory);
                break;
            case MemberChanged c:
                ApplyMember(c.Name, c.Status, now);
                break;
            case Evicted ev:
                Add(Group, new ChatLine(now, ChatLineKind.System, null,
                    ev.Rejoining ? $"the group had declared you down ({ev.Reason}); rejoining" : $"the group declared you down ({ev.Reason})"), countsUnread: false);
                break;
            case Rejoined r:
                Add(Group, new ChatLine(now, ChatLineKind.System, null,
                    $"back in the group with {r.Members.Count - 1} other member(s); catching up on what you missed"), countsUnread: false);
                break;
            case RejoinFailed f:
                Add(Group, new ChatLine(now, ChatLineKind.System, null, $"could not rejoin: {f.Message}"), countsUnread: false);
                break;
        }
    }

    /// <summary>Shows a message from the local history store (marked as history, never counted unread).</summary>
    public void ApplyStored(string kind, string from, string? to, string text, DateTimeOffset at)
    {
        var own = from == SelfName;
        var conversation = kind == "p" ? FindOrAddPrivate(own ? to ?? SelfName : from) : Group;
        Add(conversation, new ChatLine(at, own ? ChatLineKind.Own : ChatLineKind.Message, from, text, IsHistory: true));
    }

    /// <summary>Renders one line as text: "12:00:01 bob: hi", "12:00:02 * alice: mine", "12:00:03 -- bob left"; history lines start with "(h)".</summary>
    public static string Render(ChatLine line) => RenderWithName(line).Text;

    /// <summary>
    /// The screen rows of one line at <paramref name="width"/> columns (<see cref="Wrap"/>), each knowing where the
    /// sender's name sits in it so the view can colour it; the name is on the first row (clipped when even that is
    /// narrower than the name).
    /// </summary>
    public static IEnumerable<ChatRow> Layout(ChatLine line, int width)
    {
        var (text, nameStart) = RenderWithName(line);
        var first = true;
        foreach (var part in Wrap(text, width))
        {
            if (first && line.Sender is { } sender && nameStart >= 0 && nameStart < part.Length)
            {
                yield return new ChatRow(part, sender, nameStart, Math.Min(sender.Length, part.Length - nameStart));
            }
            else
            {
                yield return new ChatRow(part);
            }

            first = false;
        }
    }

    private static (string Text, int NameStart) RenderWithName(ChatLine line)
    {
        var time = line.At.ToLocalTime().ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
        var mark = line.IsLate ? "(late) " : line.IsHistory ? "(h) " : string.Empty;
        var prefix = line.Kind switch
        {
            ChatLineKind.System => $"{time} -- ",
            ChatLineKind.Own => $"{mark}{time} * ",
            _ => $"{mark}{time} ",
        };
        return line.Kind == ChatLineKind.System || line.Sender is null
            ? (prefix + line.Text, -1)
            : ($"{prefix}{line.Sender}: {line.Text}", prefix.Length);
    }

    /// <summary>
    /// Splits <paramref name="text"/> into screen lines of at most <paramref name="width"/> characters:
    /// at newlines, then at the last space that fits, else hard; continuation lines are indented by two.
    /// </summary>
    public static IEnumerable<string> Wrap(string text, int width)
    {
        width = Math.Max(4, width);
        foreach (var raw in text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'))
        {
            var rest = raw;
            var first = true;
            while (true)
            {
                var room = first ? width : width - 2;
                var prefix = first ? string.Empty : "  ";
                if (rest.Length <= room)
                {
                    yield return prefix + rest;
                    break;
                }

                var cut = rest.LastIndexOf(' ', room);
                if (cut <= 0)
                {
                    cut = room;
                }

                yield return prefix + rest[..cut];
                rest = rest[cut..].TrimStart(' ');
                first = false;
            }
        }
    }

    /// <summary>Activates the next conversation tab (wrapping around).</summary>
    public void ActivateNext()
    {
        var index = _conversations.IndexOf(Active);
        Activate(_conversations[(index + 1) % _conversations.Count]);
    }

    /// <summary>Sets the initial member list from the node's snapshot after the join.</summary>
    public void SetMembers(IEnumerable<MemberSnapshot> members)
    {
        foreach (var m in members)
        {
            _members[m.Member.Name] = new MemberEntry(m.Member.Name, m.Status, m.IsSelf || m.Member.Name == SelfName);
        }
    }

    /// <summary>Adds a system line to the active conversation (errors, help, who).</summary>
    public void AddSystem(string text, DateTimeOffset at, Conversation? to = null) =>
        Add(to ?? Active, new ChatLine(at, ChatLineKind.System, null, text));

    /// <summary>Records an entered line in the input history (consecutive duplicates kept once).</summary>
    public void RememberInput(string line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            _historyCursor = _inputHistory.Count;
            return;
        }

        if (_inputHistory.Count == 0 || _inputHistory[^1] != line)
        {
            _inputHistory.Add(line);
            if (_inputHistory.Count > InputHistoryLimit)
            {
                _inputHistory.RemoveAt(0);
            }
        }

        _historyCursor = _inputHistory.Count;
    }

    /// <summary>The previous entered line (Up key); stays at the oldest. Null when there is none.</summary>
    public string? PreviousInput()
    {
        if (_inputHistory.Count == 0)
        {
            return null;
        }

        _historyCursor = Math.Max(0, _historyCursor - 1);
        return _inputHistory[_historyCursor];
    }

    /// <summary>The next entered line (Down key); past the newest it is the empty line.</summary>
    public string NextInput()
    {
        _historyCursor = Math.Min(_inputHistory.Count, _historyCursor + 1);
        return _historyCursor < _inputHistory.Count ? _inputHistory[_historyCursor] : string.Empty;
    }

    /// <summary>
    /// What an entered line means here: in a private tab plain text goes to that peer; <c>/who</c> and
    /// <c>/help</c> are answered locally with system lines (returned as <see cref="EmptyInput"/>).
    /// </summary>
    public ChatInput Submit(string line, DateTimeOffset now)
    {
        RememberInput(line);
        var input = ChatInputParser.Parse(line);
        switch (input)
        {
            case SayInput say when Active.Peer is { } peer:
                return new PrivateInput(peer, say.Text);
            case PrivateInput p when p.To == SelfName:
                AddSystem("You cannot send a private message to yourself.", now);
                return new EmptyInput();
            case PrivateInput p:
                OpenPrivate(p.To);
                return p;
            case HelpInput:
                foreach (var help in ChatInputParser.HelpLines)
                {
                    AddSystem(help, now);
                }

                return new EmptyInput();
            case WhoInput:
                AddSystem(string.Join(", ", _members.Values.Select(Describe)), now);
                return new EmptyInput();
            case InvalidInput invalid:
                AddSystem(invalid.Error, now);
                return new EmptyInput();
            default:
                return input;
        }
    }

    /// <summary>"alice (you, up)", "bob (suspect)".</summary>
    public static string Describe(MemberEntry m) =>
        $"{m.Name} ({(m.IsSelf ? "you, " : string.Empty)}{m.Status.ToString().ToLowerInvariant()})";

    private void AddMessage(ChatMessage m, bool isHistory)
    {
        var own = m.From == SelfName;
        var kind = own ? ChatLineKind.Own : ChatLineKind.Message;
        var conversation = m.Kind == MessageKind.Broadcast
            ? Group
            : FindOrAddPrivate(own ? m.To ?? SelfName : m.From);
        var history = isHistory || m.Arrival == Arrival.History;
        var late = m.Arrival == Arrival.Late;
        Add(conversation, new ChatLine(m.ReceivedAt, kind, m.From, m.Text, history, late), countsUnread: !own && !history);
    }

    private void ApplyMember(string name, MemberStatus status, DateTimeOffset at)
    {
        var isSelf = name == SelfName;
        var known = _members.TryGetValue(name, out var before);
        if (known && before!.Status == status)
        {
            return;
        }

        _members[name] = new MemberEntry(name, status, isSelf);
        var line = (known, status) switch
        {
            (false, MemberStatus.Up) => $"{name} joined",
            (true, MemberStatus.Up) => $"{name} is back",
            (_, MemberStatus.Suspect) => $"{name} is not answering (suspect)",
            (_, MemberStatus.Down) => $"{name} is down",
            (_, MemberStatus.Left) => $"{name} left",
            _ => $"{name} is {status.ToString().ToLowerInvariant()}",
        };
        Add(Group, new ChatLine(at, ChatLineKind.System, null, line), countsUnread: false);
    }

    private Conversation FindOrAddPrivate(string peer)
    {
        var found = _conversations.Find(c => c.Peer == peer);
        if (found is not null)
        {
            return found;
        }

        var added = new Conversation(peer);
        _conversations.Add(added);
        return added;
    }

    private void Add(Conversation conversation, ChatLine line, bool countsUnread = false)
    {
        conversation.Add(line);
        if (countsUnread && !ReferenceEquals(conversation, Active))
        {
            conversation.Unread++;
        }
    }
}
