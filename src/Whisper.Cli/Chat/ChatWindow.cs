using Terminal.Gui.App;
using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace Whisper.Cli.Chat;

/// <summary>
/// The thin Terminal.Gui view over <see cref="ChatViewModel"/>: tabs line, conversation (word-wrapped),
/// member list, input line and status line. It holds no state of its own beyond widgets; everything it
/// shows is re-rendered from the view-model by <see cref="Refresh"/> on the UI thread.
/// </summary>
internal sealed class ChatWindow : Window
{
    private readonly ChatViewModel _model;
    private readonly Label _tabs;
    private readonly ListView _conversation;
    private readonly ChatRowSource _lineRows;
    private readonly ListView _members;
    private readonly ChatRowSource _memberRows;
    private readonly TextField _input;
    private readonly Label _status;
    private int _laidOutWidth = -1;

    public ChatWindow(ChatViewModel model, Action<string> submit)
    {
        _model = model;
        Title = $"whisper: {model.SelfName} (Ctrl-N next tab, Enter on a member opens a private tab, /help)";
        _tabs = new Label { X = 0, Y = 0, Width = Dim.Fill(), Height = 1 };
        _conversation = new ListView { X = 0, Y = 1, Width = Dim.Fill(24), Height = Dim.Fill(3) };
        _lineRows = new ChatRowSource(model.SelfName);
        _conversation.Source = _lineRows;
        _conversation.ViewportChanged += (_, _) =>
        {
            // the first Refresh runs before layout, and the terminal may be resized: wrap again for the new width
            if (WrapWidth() != _laidOutWidth)
            {
                RefreshConversation();
            }
        };
        _input = new TextField { X = 0, Y = Pos.AnchorEnd(2), Width = Dim.Fill() };
        var memberFrame = new FrameView { Title = "members", X = Pos.AnchorEnd(24), Y = 1, Width = 24, Height = Dim.Fill(3) };
        _members = new ListView { X = 0, Y = 0, Width = Dim.Fill(), Height = Dim.Fill() };
        _memberRows = new ChatRowSource(model.SelfName);
        _members.Source = _memberRows;
        _members.Accepting += (_, e) =>
        {
            var index = _members.SelectedItem;
            var members = _model.Members;
            if (index is { } i && i >= 0 && i < members.Count && !members[i].IsSelf)
            {
                _model.OpenPrivate(members[i].Name);
                Refresh();
                _input.SetFocus();
            }

            e.Handled = true;
        };
        memberFrame.Add(_members);
        _input.Accepting += (_, e) =>
        {
            var text = _input.Text ?? string.Empty;
            _input.Text = string.Empty;
            submit(text);
            e.Handled = true;
        };
        _input.KeyDown += (_, key) =>
        {
            if (key == Key.CursorUp)
            {
                _input.Text = _model.PreviousInput() ?? _input.Text;
                key.Handled = true;
            }
            else if (key == Key.CursorDown)
            {
                _input.Text = _model.NextInput();
                key.Handled = true;
            }
        };
        _status = new Label { X = 0, Y = Pos.AnchorEnd(1), Width = Dim.Fill(), Height = 1 };
        KeyDown += (_, key) =>
        {
            if (key == Key.N.WithCtrl)
            {
                _model.ActivateNext();
                Refresh();
                key.Handled = true;
            }
        };
        Add(_tabs, _conversation, memberFrame, _input, _status);
        _input.SetFocus();
    }

    /// <summary>The status line text (server, members, waiting messages, retransmissions).</summary>
    public string StatusText { get; set; } = string.Empty;

    /// <summary>Redraws everything from the view-model. UI thread only.</summary>
    public void Refresh()
    {
        _tabs.Text = string.Join("  ", _model.Conversations.Select(c => ReferenceEquals(c, _model.Active) ? $"[{c.Title}]" : c.Title));
        RefreshConversation();
        _memberRows.Update([.. _model.Members.Select(m => new ChatRow(
            (m.IsSelf ? "* " : "  ") + $"{m.Name} {m.Status.ToString().ToLowerInvariant()}", m.Name, 2, m.Name.Length))]);
        _status.Text = StatusText;
        SetNeedsDraw();
    }

    private int WrapWidth() => Math.Max(10, _conversation.Viewport.Width - 1);

    private void RefreshConversation()
    {
        var width = WrapWidth();
        _laidOutWidth = width;
        _lineRows.Update([.. _model.Active.Lines.SelectMany(line => ChatViewModel.Layout(line, width))]);
        if (_lineRows.Count > 0)
        {
            _conversation.SelectedItem = _lineRows.Count - 1;
        }

        _conversation.SetNeedsDraw();
    }
}
