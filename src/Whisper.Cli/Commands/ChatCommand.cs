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
/// discovery server at 127.0.0.1:7700 (the port from <see cref="DiscoveryPortVariable"/> when set) and, when nobody
/// answers there, hosts one in this process. Every delivered message is written to the SQLite history before it is
/// shown; earlier history shows first, marked "(h)". The status line is refreshed every second: the server's
/// reachability (<see cref="ServerProbe"/>), members, messages waiting for causal predecessors, retransmissions.
/// </summary>
internal static class ChatCommand
{
    /// <summary>
    /// The environment variable that moves the default discovery address to another loopback port: tests use it so a
    /// chat that hosts the server never collides with a user's real one on 7700.
    /// </summary>
    public const string DiscoveryPortVariable = "WHISPER_DISCOVERY_PORT";

    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan ServerProbeTimeout = TimeSpan.FromMilliseconds(500);

    public static Command Create()
    {
        var name = new Option<string>("--name") { Description = $"Your name in the group: {MemberName.Rule}.", Required = true, HelpName = "name" };
        var server = CliSupport.OptionalEndpointOption("--server", $"The discovery server to join through [default: 127.0.0.1:7700, or the port in ${DiscoveryPortVariable}; started in this process when nobody answers there].");
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

        if (DefaultServer(Environment.GetEnvironmentVariable(DiscoveryPortVariable)) is not { } defaultServer)
        {
            await Console.Error.WriteLineAsync($"whisper chat: {DiscoveryPortVariable} must be a port number from 1 to 65535.").ConfigureAwait(false);
            return CliSupport.ExitFailure;
        }

        var contact = peer ?? server ?? defaultServer;
        var bind = new IPEndPoint(bindAddress ?? (IPAddress.IsLoopback(contact.Address) ? IPAddress.Loopback : IPAddress.Any), port);
        DiscoveryServer? embedded = null;
        WhisperNode node;
        try
        {
            (node, embedded) = await JoinAsync(name, server ?? defaultServer, server is not null || peer is not null, peer, bind, ct).ConfigureAwait(false);
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

        var group = peer is not null ? HistoryStore.GroupKey("peer", peer.ToString()) : HistoryStore.GroupKey("server", (server ?? defaultServer).ToString());
        using var store = HistoryStore.Open(dataDir);
        var model = new ChatViewModel(name);
        foreach (var m in store.Load(group, name))
        {
            model.ApplyStored(m.Kind, m.From, m.To, m.Text, m.At);
        }

        model.SetMembers(node.Members);
        if (embedded is not null)
        {
            model.AddSystem($"No discovery server answered at {defaultServer}; this chat now hosts one there (others can join with the same command).", DateTimeOffset.Now);
        }

        model.AddSystem($"Joined as {name}. Type /help for the commands.", DateTimeOffset.Now);

        using var app = Application.Create();
        app.Init();
        using var quit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        ChatWindow? window = null;
        window = new ChatWindow(model, line => Submit(app, window!, model, node, store, group, line, quit));
        var statusServer = peer is null ? server ?? defaultServer : server;
        window.StatusText = Status(node, statusServer, embedded is not null ? ServerState.HostedHere : statusServer is null ? ServerState.None : ServerState.Checking, null);
        window.Refresh();
        using var _ = quit.Token.Register(() => app.Invoke(() => app.RequestStop()));
        var pump = PumpAsync(app, window, model, node, store, group, name, quit.Token);
        var ticker = TickAsync(app, window, node, statusServer, embedded is not null, quit.Token);
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

    /// <summary>127.0.0.1:7700, or 127.0.0.1 at the port in <paramref name="portVariable"/> when set; null when that is no port.</summary>
    internal static IPEndPoint? DefaultServer(string? portVariable)
    {
        if (string.IsNullOrWhiteSpace(portVariable))
        {
            return new IPEndPoint(IPAddress.Loopback, DiscoveryServerOptions.DefaultPort);
        }

        return int.TryParse(portVariable.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535
            ? new IPEndPoint(IPAddress.Loopback, port)
            : null;
    }

    private static async Task<(WhisperNode Node, DiscoveryServer? Embedded)> JoinAsync(
        string name, IPEndPoint server, bool explicitContact, IPEndPoint? peer, IPEndPoint bind, CancellationToken ct)
    {
        var options = new WhisperNodeOptions { Name = name, Server = server, Peer = peer, Bind = bind };
        if (explicitContact)
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
            embedded = await DiscoveryServer.StartAsync(new DiscoveryServerOptions { Bind = server }, null, null, ct).ConfigureAwait(false);
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

    private static async Task TickAsync(IApplication app, ChatWindow window, WhisperNode node, IPEndPoint? server, bool hosted, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var state = hosted ? ServerState.HostedHere
                    : server is null ? ServerState.None
                    : await ServerProbe.IsReachableAsync(server, ServerProbeTimeout, ct).ConfigureAwait(false) ? ServerState.Reachable : ServerState.Unreachable;
                var stats = await node.GetStatsAsync(ct).ConfigureAwait(false);
                app.Invoke(() =>
                {
                    window.StatusText = Status(node, server, state, stats);
                    window.Refresh();
                });
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException)
        {
            // leaving
        }
    }

    private static string Status(WhisperNode node, IPEndPoint? server, ServerState state, WhisperNodeStats? stats) =>
        StatusLine.Format(server, state, node.Members.Count(m => m.Status is MemberStatus.Up or MemberStatus.Suspect), stats);
}
