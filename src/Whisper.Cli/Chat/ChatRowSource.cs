using System.Collections;
using System.Collections.Specialized;
using Terminal.Gui.Drawing;
using Terminal.Gui.Text;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;
using Attribute = Terminal.Gui.Drawing.Attribute;

namespace Whisper.Cli.Chat;

/// <summary>
/// The rows of a <see cref="ListView"/> (conversation or member list) drawn with the sender's name in its
/// <see cref="SenderColors"/> colour (the own name bold) and the rest in the list's normal colours. Rows are
/// already wrapped to the list's width by the caller. The selected row is highlighted only while the list has the
/// focus (someone scrolling it); otherwise the newest row, which the list keeps selected to stay scrolled to the
/// bottom, looks like every other row.
/// </summary>
internal sealed class ChatRowSource : IListDataSource
{
    private readonly string _self;
    private IReadOnlyList<ChatRow> _rows = [];

    public ChatRowSource(string self) => _self = self;

    public event NotifyCollectionChangedEventHandler? CollectionChanged;

    public int Count => _rows.Count;

    public int MaxItemLength { get; private set; }

    public bool SuspendCollectionChangedEvent { get; set; }

    /// <summary>Replaces every row (UI thread only) and tells the list.</summary>
    public void Update(IReadOnlyList<ChatRow> rows)
    {
        _rows = rows;
        MaxItemLength = rows.Count == 0 ? 0 : rows.Max(r => r.Text.GetColumns());
        if (!SuspendCollectionChangedEvent)
        {
            CollectionChanged?.Invoke(this, new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Reset));
        }
    }

    public void Render(ListView listView, bool selected, int item, int col, int row, int width, int viewportX = 0)
    {
        ArgumentNullException.ThrowIfNull(listView);
        var before = listView.GetCurrentAttribute();
        var focused = selected && listView.HasFocus;
        var normal = listView.GetAttributeForRole(focused ? VisualRole.Focus : VisualRole.Normal);
        listView.Move(Math.Max(col - viewportX, 0), row);
        var r = item >= 0 && item < _rows.Count ? _rows[item] : new ChatRow(string.Empty);
        var name = focused || r.Sender is null ? normal : NameAttribute(normal, SenderColors.StyleOf(r.Sender, _self));
        var end = Math.Min(r.NameStart + r.NameLength, r.Text.Length);
        var segments = r.Sender is null || r.NameLength <= 0
            ? [(r.Text, normal)]
            : new[] { (r.Text[..r.NameStart], normal), (r.Text[r.NameStart..end], name), (r.Text[end..], normal) };
        var skip = Math.Max(0, viewportX);
        foreach (var (text, attribute) in segments)
        {
            var visible = skip >= text.Length ? string.Empty : text[skip..];
            skip = Math.Max(0, skip - text.Length);
            if (visible.Length == 0 || width <= 0)
            {
                continue;
            }

            var clipped = TextFormatter.ClipAndJustify(visible, width, Alignment.Start);
            listView.SetAttribute(attribute);
            listView.AddStr(clipped);
            width -= clipped.GetColumns();
        }

        listView.SetAttribute(normal);
        for (; width > 0; width--)
        {
            listView.AddRune(' ');
        }

        listView.SetAttribute(before);
    }

    public bool IsMarked(int item) => false;

    public void SetMark(int item, bool value)
    {
        // rows cannot be marked
    }

    public IList ToList() => _rows.Select(r => r.Text).ToList();

    public void Dispose()
    {
        // nothing held
    }

    private static Attribute NameAttribute(Attribute normal, SenderStyle style) =>
        style.Color is { } c
            ? normal with { Foreground = new Color(c.R, c.G, c.B) }
            : normal with { Style = normal.Style | (style.Bold ? TextStyle.Bold : TextStyle.None) };
}
