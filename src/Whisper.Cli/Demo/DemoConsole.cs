using System.Globalization;
using Spectre.Console;

namespace Whisper.Cli.Demo;

/// <summary>
/// The demo's output with Spectre.Console. On an interactive terminal a live progress display runs while the demo
/// does (events are written above it); when stdout is redirected there is no live widget, only plain lines as things
/// happen. Both end with the same report: conversation excerpt, events, checks, statistics.
/// </summary>
internal sealed class DemoConsole(IAnsiConsole console) : IDemoObserver
{
    private const int ExcerptLines = 8;
    private readonly Lock _gate = new();
    private readonly List<ProgressTask> _tasks = [];
    private ProgressTask? _conversation;
    private ProgressTask? _deliveries;
    private ProgressTask? _current;
    private ProgressContext? _context;
    private int _lastQuarter = -1;

    private bool Interactive => console.Profile.Capabilities.Interactive;

    public void Header(DemoSettings s)
    {
        console.Write(new Rule("[bold]Whisper demo[/]").LeftJustified());
        console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"{s.Nodes} nodes on 127.0.0.1 and a discovery server, in this process, over a network that loses [bold]{s.Loss * 100:0.#}%[/] of datagrams, duplicates {s.Duplication * 100:0.#}% and delays {s.Reordering * 100:0.#}% by up to {s.MaxDelay.TotalMilliseconds:0} ms (reordering)."));
        console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"Script: {s.Duration.TotalSeconds:0.#} s of conversation with reply chains and private messages; a member crashes and restarts at 30%; the server stops at 50%."));
        console.MarkupLine($"Seed [bold]{s.Seed}[/] (the script and the fault draws; thread timing on real sockets varies): [dim]{Markup.Escape(s.ReplayCommand)}[/]");
        console.WriteLine();
    }

    /// <summary>Runs <paramref name="run"/> under a live progress display when interactive, plainly otherwise.</summary>
    public async Task<DemoResult> RunAsync(Func<IDemoObserver, Task<DemoResult>> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (!Interactive)
        {
            return await run(this).ConfigureAwait(false);
        }

        return await console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                lock (_gate)
                {
                    _context = ctx;
                }

                var result = await run(this).ConfigureAwait(false);
                lock (_gate)
                {
                    foreach (var task in _tasks)
                    {
                        task.Value = task.MaxValue;
                        task.StopTask();
                    }

                    _context = null;
                }

                return result;
            }).ConfigureAwait(false);
    }

    public void OnPhase(DemoPhase phase)
    {
        var text = phase switch
        {
            DemoPhase.Forming => "Forming the group",
            DemoPhase.Conversation => "Conversation",
            DemoPhase.Settling => "Waiting for the last deliveries",
            DemoPhase.Leaving => "Leaving",
            _ => "Verifying",
        };
        lock (_gate)
        {
            if (_context is { } ctx)
            {
                if (_current is { } previous)
                {
                    previous.Value = previous.MaxValue;
                    previous.StopTask();
                }

                _current = phase == DemoPhase.Conversation ? (_conversation = ctx.AddTask(text, maxValue: 100)) : ctx.AddTask(text, maxValue: 1);
                _tasks.Add(_current);
                if (phase == DemoPhase.Conversation)
                {
                    _deliveries = ctx.AddTask("Deliveries", maxValue: 1);
                    _tasks.Add(_deliveries);
                }
                else if (phase != DemoPhase.Settling)
                {
                    _current.IsIndeterminate = true;
                }
            }
            else
            {
                console.MarkupLine($"[dim]{Markup.Escape(text)}...[/]");
            }
        }
    }

    public void OnEvent(DemoEvent e)
    {
        lock (_gate)
        {
            console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"  [dim]{e.At.TotalSeconds,5:0.0} s[/]  [{KindColor(e.Kind)}]{e.Kind,-9}[/] {Markup.Escape(e.Text)}"));
        }
    }

    public void OnLine(DemoLine line)
    {
        // The whole conversation would scroll by too fast; the report shows an excerpt.
    }

    public void OnProgress(double conversation, int sent, int delivered, int outstanding)
    {
        lock (_gate)
        {
            if (_context is not null)
            {
                if (_conversation is { IsFinished: false } c)
                {
                    c.Value = conversation * 100;
                    c.Description = $"Conversation: {sent} messages sent";
                }

                if (_deliveries is { } d)
                {
                    d.MaxValue = Math.Max(1, delivered + outstanding);
                    d.Value = delivered;
                    d.Description = $"Deliveries: {delivered}, {outstanding} in flight";
                }

                return;
            }

            var quarter = (int)(conversation * 4);
            if (quarter > 0 && quarter > _lastQuarter && quarter <= 4)
            {
                _lastQuarter = quarter;
                console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                    $"  [dim]conversation {quarter * 25,3}%: {sent} messages sent, {delivered} deliveries, {outstanding} in flight[/]"));
            }
        }
    }

    public void Report(DemoResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        console.WriteLine();
        console.Write(new Rule("[bold]Conversation (excerpt)[/]").LeftJustified());
        WriteExcerpt(result);
        console.WriteLine();
        console.Write(new Rule("[bold]Events[/]").LeftJustified());
        var events = new Table().Border(TableBorder.Simple).AddColumn("time").AddColumn("event").AddColumn("what happened");
        foreach (var e in result.Events)
        {
            events.AddRow(
                new Markup(string.Create(CultureInfo.InvariantCulture, $"{e.At.TotalSeconds:0.0} s")),
                new Markup($"[{KindColor(e.Kind)}]{Markup.Escape(e.Kind)}[/]"),
                new Markup(Markup.Escape(e.Text)));
        }

        console.Write(events);
        console.Write(new Rule("[bold]Verification[/]").LeftJustified());
        var checks = new Table().Border(TableBorder.Rounded).AddColumn("check").AddColumn("result").AddColumn("detail");
        foreach (var c in result.Checks)
        {
            checks.AddRow(
                new Markup(Markup.Escape(c.Name)),
                new Markup(c.Passed ? "[bold green]PASS[/]" : "[bold red]FAIL[/]"),
                new Markup(Markup.Escape(c.Detail)));
        }

        console.Write(checks);
        console.Write(Statistics(result.Stats));
        var failed = result.Checks.Count(c => !c.Passed);
        console.MarkupLine(failed == 0
            ? $"[bold green]All {result.Checks.Count} checks passed.[/]"
            : $"[bold red]{failed} of {result.Checks.Count} checks FAILED.[/] Seed {result.Settings.Seed}: {Markup.Escape(result.Settings.ReplayCommand)}");
    }

    /// <summary>The start of the conversation, and the moments around the crash and the server stop, with those events inline.</summary>
    private void WriteExcerpt(DemoResult result)
    {
        var items = result.Lines.Select(l => (l.At, Text: Format(l), IsLine: true))
            .Concat(result.Events.Where(e => e.Kind is "crash" or "restart" or "rejoined" or "stopped")
                .Select(e => (e.At, Text: string.Create(CultureInfo.InvariantCulture, $"  [dim]{e.At.TotalSeconds,5:0.0} s[/]  [{KindColor(e.Kind)}]** {Markup.Escape(e.Text)}[/]"), IsLine: false)))
            .OrderBy(x => x.At)
            .ToList();
        var starts = new SortedSet<int> { 0 };
        foreach (var kind in new[] { "crash", "stopped" })
        {
            if (result.Events.FirstOrDefault(e => e.Kind == kind) is { } e)
            {
                starts.Add(Math.Max(0, items.FindIndex(x => !x.IsLine && x.At == e.At) - 2));
            }
        }

        var next = 0;
        foreach (var start in starts)
        {
            if (start > next)
            {
                console.MarkupLine("  [dim]...[/]");
            }

            for (var i = Math.Max(start, next); i < Math.Min(items.Count, start + ExcerptLines); i++)
            {
                console.MarkupLine(items[i].Text);
                next = i + 1;
            }
        }

        if (next < items.Count)
        {
            console.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"  [dim]... and {items.Skip(next).Count(x => x.IsLine)} more lines[/]"));
        }
    }

    private static string Format(DemoLine l)
    {
        var who = Who(l.From);
        var time = string.Create(CultureInfo.InvariantCulture, $"[dim]{l.At.TotalSeconds,5:0.0} s[/]");
        if (l.To is { } to)
        {
            return $"  {time}  {who} [dim]->[/] {Who(to)} [dim](private)[/]: [italic]{Markup.Escape(l.Text)}[/]";
        }

        var answers = l.Answers is { } a ? $"  [dim](answers {Markup.Escape(a)})[/]" : string.Empty;
        return $"  {time}  {who}: {Markup.Escape(l.Text)}{answers}";
    }

    private static string Who(string name)
    {
        var slot = Array.IndexOf(DemoScript.Names, name);
        var color = slot >= 0 ? DemoScript.Colors[slot] : "white";
        return $"[bold {color}]{Markup.Escape(name)}[/]";
    }

    private static string KindColor(string kind) => kind switch
    {
        "crash" or "problem" or "evicted" => "red",
        "restart" or "rejoined" or "formed" or "settled" => "green",
        "server" or "stopped" => "yellow",
        _ => "grey",
    };

    private static Table Statistics(DemoStats s)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("statistic").AddColumn(new TableColumn("value").RightAligned());
        void Row(string name, string value) => table.AddRow(Markup.Escape(name), Markup.Escape(value));
        var c = CultureInfo.InvariantCulture;
        Row("messages sent (broadcast / private)", string.Create(c, $"{s.Broadcasts} / {s.Privates}"));
        Row("deliveries (all members)", s.Deliveries.ToString(c));
        Row("datagrams sent", s.DatagramsSent.ToString(c));
        Row("chunks retransmitted / NACKs sent", string.Create(c, $"{s.ChunksRetransmitted} / {s.NacksSent}"));
        Row("datagrams lost / duplicated / delayed on purpose", string.Create(c, $"{s.DroppedOnPurpose} / {s.DuplicatedOnPurpose} / {s.DelayedOnPurpose}"));
        Row("delivery latency p50 / p99 / max", string.Create(c, $"{s.LatencyP50Ms:0.0} / {s.LatencyP99Ms:0.0} / {s.LatencyMaxMs:0.0} ms"));
        Row("group formed in / settled in", string.Create(c, $"{s.FormedIn.TotalSeconds:0.0} s / {s.SettledIn.TotalMilliseconds:0} ms"));
        Row("total runtime", string.Create(c, $"{s.Runtime.TotalSeconds:0.0} s"));
        return table;
    }
}
