using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Terminal.Gui.App;
using Whisper.Cli.Chat;
using Whisper.Cli.History;
using Whisper.Discovery;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;

namespace Whisper.Cli.Commands;

/// <summary>
/// <c>whisper chat</c>: the full-screen terminal chat. Without <c>--server</c> or <c>--peer</c> it joins the
/// discovery server at 127.0.0.1:7700 and, when nobody answers there, hosts one in this process. Every
/// delivered message is written to the SQLite history before it is shown; earlier history shows first,
/// marked "(h)".
/// </summary>
internal static class ChatCommand
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    private static readonly IPEndPoint DefaultServer = new(IPAddress.Loopback, DiscoveryServerOptions.DefaultPort);

    public static Command Create()
    {
        var name = new Option<string>("--name") { Description = $"Your name in the group: {MemberName.Rule}.", Required = true, HelpName = "name" };
        var server = CliSupport.OptionalEndpointOption("--server", "The discovery server to join through [default: 127.0.0.1:7700, started in this process when nobody answers there].");
        var peer = CliSupport.OptionalEndpointOption("--peer", "Join through this member's UDP endpoint instead of the discovery server.");
        var port = CliSupport.PortOption("--port", "Local UDP port (0 picks a free one).", 0);
        var bind = new Option<IPAddress?>("--bind")
        {
            Description = "Local address to bind [default: 127.0.0.1 when the server or peer is on loopback, otherwise all IPv4 addresses].",
            HelpName = "address",
            CustomParser = CliSupport.ParseAddress,
        };
        var dataDir = new Option<string?>("--data-dir") { Description = "Where the history database lives [default: $XDG_DATA_HOME/whisper or ~/.local/share/whisper].", HelpName = "dir" };
        var command = new Command("chat", "Chat with the group in a full-screen terminal UI (group and private conversations, member list, history).")
        {
            name, server, peer, port, bind, dataDir,
        };
        command.SetAction((result, ct) => RunAsync(
            result.GetValue(name)!, result.GetValue(server), result.GetValue(peer), result.GetValue(bind), result.GetValue(port),
            result.GetValue(dataDir) ?? HistoryStore.DefaultDataDirectory(), ct));
        return command;
    }

    private static async Task<int> RunAsync(string name, IPEndPoint? server, IPEndPoint? peer, IPAddress? bindAddress, int port, string dataDir, CancellationToken ct)
    {
        if (MemberName.Validate(name) is { } problem)
        {
            await Console.Error.WriteLineAsync($"whisper chat: invalid name: {problem}.").ConfigureAwait(false);
            return CliSupport.ExitDenied;
        }

        var contact = peer ?? server ?? DefaultServer;
        var bind = new IPEndPoint(bindAddress ?? (IPAddress.IsLoopback(contact.Address) ? IPAddress.Loopback : IPAddress.Any), port);
        DiscoveryServer? embedded = null;
        WhisperNode node;
        try
        {
            (node, embedded) = await JoinAsync(name, server, peer, bind, ct).ConfigureAwait(false);
        }
        catch (WhisperJoinException ex)
        {
            await Console.Error.WriteLineAsync(ex.Reason switch
            {
                DenyReason.Full => $"whisper chat: the group is full (at most 10 members): {ex.Message}.",
                DenyReason.NameTaken => $"whisper chat: the name '{name}' is taken in this group; choose another with --name.",
                DenyReason.InvalidName => $"whisper chat: invalid name: {MemberName.Rule}.",
                DenyReason.Unreachable => $"whisper chat: the server is unreachable: {ex.Message}.",
                _ => $"whisper chat: cannot join: {ex.Message}.",
            }).ConfigureAwait(false);
            return CliSupport.ExitDenied;
        }
        catch (SocketException ex)
        {
            await Console.Error.WriteLineAsync($"whisper chat: cannot open the UDP port {port}: {ex.Message}.").ConfigureAwait(false);
            return CliSupport.ExitFailure;
        }

        var group = peer is not null ? HistoryStore.GroupKey("peer", peer.ToString()) : HistoryStore.GroupKey("server", (server ?? DefaultServer).ToString());
        using var store = HistoryStore.Open(dataDir);
        var model = new ChatViewModel(name);
        foreach (var m in store.Load(group, name))
        {
            model.ApplyStored(m.Kind, m.From, m.To, m.Text, m.At);
        }

        model.SetMembers(node.Members);
        if (embedded is not null)
        {
            model.AddSystem($"No discovery server answered at {DefaultServer}; this chat now hosts one there (others can join with the same command).", DateTimeOffset.Now);
        }

        model.AddSystem($"Joined as {name}. Type /help for the commands.", DateTimeOffset.Now);

        using var app = Application.Create();
        app.Init();
        using var quit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        ChatWindow? window = null;
        window = new ChatWindow(model, line => Submit(app, window!, model, node, store, group, line, quit));
        window.StatusText = Status(node, embedded, null);
        window.Refresh();
        using var _ = quit.Token.Register(() => app.Invoke(() => app.RequestStop()));
        var pump = PumpAsync(app, window, model, node, store, group, name, quit.Token);
        var ticker = TickAsync(app, window, node, embedded, quit.Token);
        try
        {
            app.Run(window);
        }
        finally
        {
            await quit.CancelAsync().ConfigureAwait(false);
            window.Dispose();
        }

        await node.LeaveAsync(CancellationToken.None).ConfigureAwait(false);
        await Task.WhenAll(pump, ticker).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
        await node.DisposeAsync().ConfigureAwait(false);
        if (embedded is not null)
        {
            await embedded.DisposeAsync().ConfigureAwait(false);
        }

        return CliSupport.ExitOk;
    }

    private static async Task<(WhisperNode Node, DiscoveryServer? Embedded)> JoinAsync(
        string name, IPEndPoint? server, IPEndPoint? peer, IPEndPoint bind, CancellationToken ct)
    {
        var options = new WhisperNodeOptions { Name = name, Server = server ?? DefaultServer, Peer = peer, Bind = bind };
        if (server is not null || peer is not null)
        {
            return (await WhisperNode.JoinAsync(options, NullLoggerFactory.Instance, null, ct).ConfigureAwait(false), null);
        }

        try
        {
            return (await WhisperNode.JoinAsync(options with { JoinTimeout = ProbeTimeout }, NullLoggerFactory.Instance, null, ct).ConfigureAwait(false), null);
        }
        catch (WhisperJoinException ex) when (ex.Reason == DenyReason.Unreachable)
        {
            // nobody answers at the default address: host the server here (below)
        }

        DiscoveryServer? embedded = null;
        try
        {
            embedded = await DiscoveryServer.StartAsync(new DiscoveryServerOptions(), null, null, ct).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            // another chat started one at the same moment: join it
        }

        try
        {
            return (await WhisperNode.JoinAsync(options, NullLoggerFactory.Instance, null, ct).ConfigureAwait(false), embedded);
        }
        catch when (embedded is not null)
        {
            await embedded.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static void Submit(IApplication app, ChatWindow window, ChatViewModel model, WhisperNode node, HistoryStore store, string group, string line, CancellationTokenSource quit)
    {
        switch (model.Submit(line, DateTimeOffset.Now))
        {
            case QuitInput:
                quit.Cancel();
                break;
            case SayInput say:
                _ = SendAsync(app, model, () => node.BroadcastAsync(say.Text)).ContinueWith(_ => app.Invoke(window.Refresh), TaskScheduler.Default);
                break;
            default:
                window.Refresh();
                break;
            case PrivateInput p:
                _ = SendPrivateAsync(app, window, model, node, store, group, p);
                break;
        }
    }

    /// <summary>Own private messages are not delivered back by the library: show (and store) them once the engine took them.</summary>
    private static async Task SendPrivateAsync(IApplication app, ChatWindow window, ChatViewModel model, WhisperNode node, HistoryStore store, string group, PrivateInput p)
    {
        var id = await SendAsync(app, model, () => node.SendPrivateAsync(p.To, p.Text)).ConfigureAwait(false);
        if (id is not { } sent)
        {
            return;
        }

        var own = new ChatMessage(sent, MessageKind.Private, model.SelfName, p.To, p.Text, VectorClock.Empty, DateTimeOffset.Now);
        lock (store)
        {
            store.Append(group, model.SelfName, new StoredMessage(sent.ToString(), "p", own.From, own.To, own.Text, own.ReceivedAt));
        }

        app.Invoke(() =>
        {
            model.Apply(own, own.ReceivedAt);
            window.Refresh();
        });
    }

    private static async Task<MessageId?> SendAsync(IApplication app, ChatViewModel model, Func<Task<MessageId>> send)
    {
        try
        {
            return await send().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is UnknownMemberException or MessageTooLargeException or InvalidOperationException)
        {
            app.Invoke(() => model.AddSystem($"Not sent: {ex.Message}", DateTimeOffset.Now));
            return null;
        }
    }

    private static async Task PumpAsync(IApplication app, ChatWindow window, ChatViewModel model, WhisperNode node, HistoryStore store, string group, string self, CancellationToken ct)
    {
        try
        {
            await foreach (var e in node.Events.WithCancellation(ct).ConfigureAwait(false))
            {
                if (e is ChatMessage m)
                {
                    // write before showing: a delivered message is on disk before anyone sees it
                    lock (store)
                    {
                        store.Append(group, self, new StoredMessage(m.Id.ToString(), m.Kind == MessageKind.Broadcast ? "b" : "p", m.From, m.To, m.Text, m.ReceivedAt));
                    }
                }

                app.Invoke(() =>
                {
                    model.Apply(e, DateTimeOffset.Now);
                    window.Refresh();
                });
            }
        }
        catch (OperationCanceledException)
        {
            // leaving
        }
    }

    private static async Task TickAsync(IApplication app, ChatWindow window, WhisperNode node, DiscoveryServer? embedded, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                var stats = await node.GetStatsAsync(ct).ConfigureAwait(false);
                app.Invoke(() =>
                {
                    window.StatusText = Status(node, embedded, stats);
                    window.Refresh();
                });
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException)
        {
            // leaving
        }
    }

    private static string Status(WhisperNode node, DiscoveryServer? embedded, WhisperNodeStats? stats)
    {
        var up = node.Members.Count(m => m.Status is MemberStatus.Up or MemberStatus.Suspect);
        var server = embedded is not null ? "server: hosted here" : $"server: {node.Options.Contact}";
        var retx = stats is null ? string.Empty : $" | retransmissions: {stats.ChunksRetransmitted}";
        return $"{server} | members: {up}{retx} | Ctrl-N next tab | /quit";
    }
}
