using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Whisper.Cli.Tests;

/// <summary>
/// Drives the real <c>whisper chat</c> UI in tmux sessions on loopback against a test-owned discovery server,
/// polling capture-pane until the expected text appears (bounded; a timeout fails with the captured pane).
/// </summary>
public sealed class ChatTerminalTests : IDisposable
{
    private const string Tmux = "/usr/bin/tmux";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "whisper-chat-" + Guid.NewGuid().ToString("N"));
    private readonly string _prefix = "wt" + Guid.NewGuid().ToString("N")[..8];
    private readonly List<string> _sessions = [];
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

    private string StartChat(string name, int port)
    {
        var session = $"{_prefix}-{name}-{_sessions.Count}";
        _sessions.Add(session);
        var command = $"dotnet {Whisper} chat --name {name} --server 127.0.0.1:{port} --data-dir {_dir}/{name}";
        Run("new-session", "-d", "-s", session, "-x", "110", "-y", "30", command);
        return session;
    }

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

        Assert.Fail($"waited {Wait.TotalSeconds} s for {what} in {session}; the pane shows:\n{Capture(session)}");
    }

    private static bool SessionAlive(string session) => Run("has-session", "-t", session).ExitCode == 0;

    private static string Capture(string session) => Run("capture-pane", "-p", "-t", session).Output;

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
