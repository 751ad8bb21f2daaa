using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Whisper.Cli.Chat;
using Whisper.Cli.Commands;
using Whisper.Cli.History;

namespace Whisper.Cli.Tests;

/// <summary>
/// Drives the real <c>whisper chat</c> UI in tmux sessions on loopback against a test-owned discovery server (or, with
/// <see cref="ChatCommand.DiscoveryPortVariable"/> set to a free port, one a chat hosts), polling capture-pane until the
/// expected text appears (bounded; a timeout fails with the captured pane).
/// </summary>
public sealed class ChatTerminalTests : IDisposable
{
    private const string Tmux = "/usr/bin/tmux";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "whisper-chat-" + Guid.NewGuid().ToString("N"));
    private readonly string _prefix = "wt" + Guid.NewGuid().ToString("N")[..8];
    private readonly List<string> _sessions = [];
    private readonly List<Process> _processes = [];
    private Process? _server;

    private static string Whisper => Path.Combine(AppContext.BaseDirectory, "whisper.dll");

    [SkippableFact]
    public void TwoChatsExchangeGroupAndPrivateMessagesAndSeeAQuit()
    {
        Skip.IfNot(File.Exists(Tmux), "tmux is not installed at /usr/bin/tmux");
        var port = StartServer();
        var alice = StartChat("alice", port);
        var bob = StartChat("bob", port);
        WaitFor(alice, "bob up");
        WaitFor(bob, "alice up");

        SendLine(alice, "hello group from alice");
        WaitFor(bob, "alice: hello group from alice");

        SendLine(bob, "/msg alice a secret for alice");
        WaitFor(bob, "[alice]");
        WaitFor(bob, "* bob: a secret for alice");
        WaitFor(alice, "bob (1)");

        SendLine(bob, "/quit");
        WaitFor(alice, "bob left");
    }

    [SkippableFact]
    public void RestartedChatShowsEarlierConversationAsHistory()
    {
        Skip.IfNot(File.Exists(Tmux), "tmux is not installed at /usr/bin/tmux");
        var port = StartServer();
        var first = StartChat("carol", port);
        WaitFor(first, "Joined as carol");
        SendLine(first, "remember this line");
        WaitFor(first, "* carol: remember this line");
        SendLine(first, "/quit");
        WaitUntil(() => !SessionAlive(first), first, "the chat to exit after /quit");

        var second = StartChat("carol", port);
        WaitFor(second, "(h) ");
        WaitFor(second, "carol: remember this line");
    }

    [SkippableFact]
    public void ALateJoinerSeesWhatWasSaidBeforeItJoinedMarkedAsHistoryThenLiveMessages()
    {
        Skip.IfNot(File.Exists(Tmux), "tmux is not installed at /usr/bin/tmux");
        var port = StartServer();
        var alice = StartChat("alice", port);
        WaitFor(alice, "Joined as alice");
        SendLine(alice, "said before dave came");
        WaitFor(alice, "* alice: said before dave came");

        var dave = StartChat("dave", port); // a fresh data directory: nothing of this group in its own store
        WaitFor(dave, "(h) ");
        WaitFor(dave, "alice: said before dave came");
        SendLine(alice, "said after dave came");
        WaitFor(dave, "alice: said after dave came");

        var screen = Capture(dave);
        var before = screen.IndexOf("alice: said before dave came", StringComparison.Ordinal);
        var after = screen.IndexOf("alice: said after dave came", StringComparison.Ordinal);
        Assert.True(before >= 0 && after > before, $"history first, then live:\n{screen}");
        var afterLine = screen.Split('\n').Single(l => l.Contains("alice: said after dave came", StringComparison.Ordinal));
        Assert.DoesNotContain("(h)", afterLine, StringComparison.Ordinal);
        Assert.Contains("(h)", screen.Split('\n').Single(l => l.Contains("alice: said before dave came", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [SkippableFact]
    public void FirstChatWithoutAServerHostsOneAtTheDefaultAddressAndASecondChatJoinsIt()
    {
        Skip.IfNot(File.Exists(Tmux), "tmux is not installed at /usr/bin/tmux");
        var port = FreeUdpPort(); // the default discovery port for these two chats only, never a user's 7700
        var a = StartChat("a", server: null, defaultPort: port);
        WaitFor(a, $"No discovery server answered at 127.0.0.1:{port}");
        WaitFor(a, $"server: hosted here (127.0.0.1:{port})");

        var b = StartChat("b", server: null, defaultPort: port);
        WaitFor(b, "* b up");
        WaitFor(b, "  a up");
        WaitFor(a, "  b up");
        WaitFor(b, $"server: 127.0.0.1:{port} reachable | members: 2 | waiting: 0 | retransmissions:");
        Assert.DoesNotContain("No discovery server answered", Capture(b), StringComparison.Ordinal);
    }

    [SkippableFact]
    public void SenderNamesAreDrawnInTheirOwnColourAndTheOwnNameBold()
    {
        Skip.IfNot(File.Exists(Tmux), "tmux is not installed at /usr/bin/tmux");
        var port = StartServer();
        var alice = StartChat("alice", port);
        var bob = StartChat("bob", port);
        WaitFor(alice, "bob up");
        SendLine(bob, "colour check from bob");
        SendLine(alice, "colour check from alice");
        WaitFor(alice, "* alice: colour check from alice");
        WaitFor(alice, "bob: colour check from bob");

        var bobColour = SenderColors.StyleOf("bob", "alice").Color!.Value;
        var bobName = $"\u001b[38;2;{bobColour.R};{bobColour.G};{bobColour.B}mbob";
        WaitUntil(() => CaptureWithEscapes(alice).Contains(bobName + "\u001b[39m: colour check from bob", StringComparison.Ordinal),
            alice, $"bob's name in {bobColour.Name} in the conversation");
        WaitUntil(() => CaptureWithEscapes(alice).Contains(bobName + "\u001b[39m up", StringComparison.Ordinal), alice, "bob's name in the same colour in the member list");
        WaitUntil(() => CaptureWithEscapes(alice).Contains("* \u001b[1malice", StringComparison.Ordinal), alice, "alice's own name in bold");

        var aliceColour = SenderColors.StyleOf("alice", "bob").Color!.Value;
        WaitUntil(() => CaptureWithEscapes(bob).Contains($"\u001b[38;2;{aliceColour.R};{aliceColour.G};{aliceColour.B}malice", StringComparison.Ordinal),
            bob, $"alice's name in {aliceColour.Name} on bob's screen");
    }

    [SkippableFact]
    public void LongMessagesWrapAgainWhenTheTerminalIsResized()
    {
        Skip.IfNot(File.Exists(Tmux), "tmux is not installed at /usr/bin/tmux");
        const string text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen end";
        var port = StartServer();
        var dave = StartChat("dave", port);
        WaitFor(dave, "Joined as dave");
        SendLine(dave, text);
        WaitForRows(dave, text, ConversationWidth(110));

        Run("resize-window", "-t", dave, "-x", "60", "-y", "30");
        WaitForRows(dave, text, ConversationWidth(60));
    }

    /// <summary>The conversation pane's wrap width in a terminal this wide: window borders, the 24-column member list, one spare column.</summary>
    private static int ConversationWidth(int columns) => columns - 2 - 24 - 1;

    /// <summary>Waits until the pane shows dave's message wrapped exactly as <see cref="ChatViewModel.Wrap"/> wraps it at <paramref name="width"/>.</summary>
    private static void WaitForRows(string session, string text, int width)
    {
        // the time's digits differ but not its length, so the continuation rows are known in advance
        var rows = ChatViewModel.Wrap("00:00:00 * dave: " + text, width).Skip(1).ToList();
        Assert.NotEmpty(rows);
        WaitUntil(() =>
        {
            var lines = Capture(session).Split('\n');
            return rows.All(row => lines.Any(l => l.StartsWith("│" + row + " ", StringComparison.Ordinal)));
        }, session, $"the message wrapped at {width} columns as: {string.Join(" / ", rows)}");
    }

    [SkippableFact]
    public void EveryMessageShownBeforeAKill9IsInTheHistoryStore()
    {
        Skip.IfNot(File.Exists(Tmux), "tmux is not installed at /usr/bin/tmux");
        const int count = 15;
        var port = StartServer();
        var alice = StartChat("alice", port);
        WaitFor(alice, "Joined as alice");
        var bob = StartNode("bob", port);
        WaitFor(alice, "bob up");

        SendLine(alice, "alice says this before the crash");
        WaitFor(alice, "* alice: alice says this before the crash");
        Command(bob, new { op = "private", to = "alice", text = "a private word for alice" });
        WaitFor(alice, "bob (1)");
        for (var i = 1; i <= count; i++)
        {
            Command(bob, new { op = "broadcast", text = $"numbered message {i}" });
        }

        WaitFor(alice, $"bob: numbered message {count}");
        var shown = Capture(alice);
        var pid = PanePid(alice);
        using (var chat = Process.GetProcessById(pid))
        {
            chat.Kill(); // SIGKILL: no graceful leave, no flush, no dispose
        }

        // tmux, its parent, reaps it and marks the pane dead (waiting on a process that is not our child can outlast that)
        WaitUntil(() => !SessionAlive(alice), alice, "the chat to die after SIGKILL");

        using var store = HistoryStore.Open(Path.Combine(_dir, "alice"));
        var stored = store.Load(HistoryStore.GroupKey("server", $"127.0.0.1:{port}"), "alice");
        var texts = stored.Select(m => $"{m.From}: {m.Text}").ToHashSet(StringComparer.Ordinal);

        // every message line the screen showed (at most one per line, unwrapped at this width) is stored
        var shownMessages = shown.Split('\n')
            .Select(l => System.Text.RegularExpressions.Regex.Match(l, @"\d\d:\d\d:\d\d (?:\* )?(\w+: [^│]*?)\s*│"))
            .Where(m => m.Success)
            .Select(m => m.Groups[1].Value)
            .ToList();
        Assert.Contains($"bob: numbered message {count}", shownMessages);
        Assert.All(shownMessages, line => Assert.Contains(line, texts));

        // bob's broadcasts are delivered in order and each is written before it is shown, so all of them are stored
        for (var i = 1; i <= count; i++)
        {
            Assert.Contains($"bob: numbered message {i}", texts);
        }

        Assert.Contains("alice: alice says this before the crash", texts);
        Assert.Contains(stored, m => m.Kind == "p" && m.From == "bob" && m.To == "alice" && m.Text == "a private word for alice");
    }

    private int StartServer()
    {
        var port = FreeUdpPort();
        _server = Process.Start(new ProcessStartInfo("dotnet", [Whisper, "server", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--log-level", "None"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        return port;
    }

    private string StartChat(string name, int port) => StartChat(name, server: port, defaultPort: null);

    /// <summary>
    /// Starts a chat in a new tmux session: with <c>--server</c> when <paramref name="server"/> is given, else with the
    /// default discovery address moved to <paramref name="defaultPort"/>. The chat replaces the pane's shell (exec), so
    /// the pane's pid is the chat's.
    /// </summary>
    private string StartChat(string name, int? server, int? defaultPort)
    {
        var session = $"{_prefix}-{name}-{_sessions.Count}";
        _sessions.Add(session);
        var contact = server is { } p ? $" --server 127.0.0.1:{p}" : string.Empty;
        var command = $"exec dotnet {Whisper} chat --name {name}{contact} --data-dir {_dir}/{name}";
        var environment = defaultPort is { } d ? new[] { "-e", $"{ChatCommand.DiscoveryPortVariable}={d}" } : [];
        // remain-on-exit: a chat that ends (a /quit, or an error before its window opens) leaves its last screen and its
        // exit status in the pane, so a failing wait shows why instead of an empty pane.
        Run(["new-session", "-d", "-s", session, "-x", "110", "-y", "30", .. environment, command, ";", "set-option", "-t", session, "remain-on-exit", "on"]);
        return session;
    }

    /// <summary>A headless <c>whisper node --json</c> member; returns once it printed its <c>joined</c> line.</summary>
    private Process StartNode(string name, int port)
    {
        var node = Process.Start(new ProcessStartInfo("dotnet", [Whisper, "node", "--name", name, "--server", $"127.0.0.1:{port}", "--json", "--log-level", "None"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        _processes.Add(node);
        var joined = Task.Run(() =>
        {
            while (node.StandardOutput.ReadLine() is { } line)
            {
                if (line.Contains("\"event\":\"joined\"", StringComparison.Ordinal))
                {
                    return true;
                }
            }

            return false;
        });
        Assert.True(joined.Wait(Wait) && joined.Result, $"{name} did not print a joined line within {Wait.TotalSeconds} s");
        _ = Task.Run(() => node.StandardOutput.ReadToEnd()); // keep draining so the node never blocks on a full pipe
        _ = Task.Run(() => node.StandardError.ReadToEnd());
        return node;
    }

    private static void Command(Process node, object command)
    {
        node.StandardInput.WriteLine(JsonSerializer.Serialize(command));
        node.StandardInput.Flush();
    }

    private static int PanePid(string session) =>
        int.Parse(Run("list-panes", "-t", session, "-F", "#{pane_pid}").Output.Trim(), CultureInfo.InvariantCulture);

    private static void SendLine(string session, string text)
    {
        Run("send-keys", "-t", session, "-l", text);
        Run("send-keys", "-t", session, "Enter");
    }

    private static void WaitFor(string session, string text) =>
        WaitUntil(() => Capture(session).Contains(text, StringComparison.Ordinal), session, $"'{text}'");

    private static void WaitUntil(Func<bool> condition, string session, string what)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Wait)
        {
            if (condition())
            {
                return;
            }

            Thread.Sleep(100);
        }

        var ended = SessionAlive(session) ? string.Empty : $" (its chat has ended, status {Run("display-message", "-p", "-t", session, "#{pane_dead_status}").Output.Trim()})";
        Assert.Fail($"waited {Wait.TotalSeconds} s for {what} in {session}{ended}; the pane shows:\n{Capture(session)}");
    }

    /// <summary>Whether the session's chat still runs (with remain-on-exit the session outlives it as a dead pane).</summary>
    private static bool SessionAlive(string session) =>
        Run("has-session", "-t", session).ExitCode == 0 && Run("display-message", "-p", "-t", session, "#{pane_dead}").Output.Trim() != "1";

    private static string Capture(string session) => Run("capture-pane", "-p", "-t", session).Output;

    /// <summary>The pane with its colours and styles as escape sequences (as tmux re-encodes them).</summary>
    private static string CaptureWithEscapes(string session) => Run("capture-pane", "-p", "-e", "-t", session).Output;

    private static (int ExitCode, string Output) Run(params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(Tmux, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit(5000);
        return (p.ExitCode, output);
    }

    private static int FreeUdpPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public void Dispose()
    {
        foreach (var session in _sessions)
        {
            Run("kill-session", "-t", session);
        }

        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            process.Dispose();
        }

        if (_server is { HasExited: false })
        {
            _server.Kill(entireProcessTree: true);
        }

        _server?.Dispose();
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
