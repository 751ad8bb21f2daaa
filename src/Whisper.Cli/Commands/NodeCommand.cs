using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Whisper.Cli.Json;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Wire;

namespace Whisper.Cli.Commands;

/// <summary>
/// <c>whisper node --json</c>: a headless member for scripts, joining through the discovery server or (with
/// <c>--peer</c>) through a member. Commands come as JSON lines on stdin, events
/// leave as JSON lines on stdout (see <see cref="JsonProtocol"/>); logs go to stderr. End of input, a
/// <c>leave</c> command, Ctrl-C or SIGTERM leave the group gracefully; exit code 0 after <c>left</c>,
/// 2 after <c>denied</c>, 1 on other failures.
/// </summary>
internal static partial class NodeCommand
{
    private static readonly TimeSpan EventDrainTimeout = TimeSpan.FromSeconds(5);

    public static Command Create()
    {
        var name = new Option<string>("--name")
        {
            Description = $"This member's name: {MemberName.Rule}.",
            Required = true,
            HelpName = "name",
        };
        var server = CliSupport.EndpointOption("--server", "The discovery server: the one to join through, or with --peer the one to keep informed of this member (leases).", new IPEndPoint(IPAddress.Loopback, WhisperNodeOptions.DefaultServerPort));
        var peer = CliSupport.OptionalEndpointOption(
            "--peer",
            "Join through this member's UDP endpoint instead of the discovery server (when the server is gone); the group admits under the same rules.");
        var port = CliSupport.PortOption("--port", "Local UDP port (0 picks a free one).", 0);
        var bind = new Option<IPAddress?>("--bind")
        {
            Description = "Local address to bind [default: 127.0.0.1, or ::1 when the server or peer is an IPv6 address].",
            HelpName = "address",
            CustomParser = CliSupport.ParseAddress,
        };
        var json = new Option<bool>("--json")
        {
            Description = "Headless mode: JSON commands on stdin ({\"op\":\"broadcast\"|\"private\"|\"members\"|\"stats\"|\"leave\",...}), JSON events on stdout, one per line.",
        };
        var dropRate = CliSupport.ProbabilityOption("--drop-rate", "Testing aid: probability that each received datagram is dropped.");
        var dupRate = CliSupport.ProbabilityOption("--dup-rate", "Testing aid: probability that each sent datagram is sent twice.");
        var faultSeed = new Option<int?>("--fault-seed")
        {
            Description = "Seed of the fault injection (default: random, logged).",
            HelpName = "n",
        };
        var logLevel = CliSupport.LogLevelOption();

        var command = new Command("node", "Join a group (through the discovery server, or through a member with --peer) as a headless member driven by JSON lines (stdin) and reporting JSON lines (stdout).")
        {
            name, server, peer, port, bind, json, dropRate, dupRate, faultSeed, logLevel,
        };
        command.SetAction((result, ct) =>
        {
            var contact = result.GetValue(peer) ?? result.GetValue(server)!;
            var settings = new NodeSettings(
                result.GetValue(name)!,
                result.GetValue(server)!,
                result.GetValue(peer),
                new IPEndPoint(result.GetValue(bind) ?? DefaultBind(contact), result.GetValue(port)),
                result.GetValue(dropRate),
                result.GetValue(dupRate),
                result.GetValue(faultSeed),
                result.GetValue(logLevel));
            if (!result.GetValue(json))
            {
                Console.Error.WriteLine("whisper node: only the headless mode exists so far; add --json (an interactive 'whisper chat' is planned).");
                return Task.FromResult(CliSupport.ExitFailure);
            }

            return RunJsonAsync(settings, ct);
        });
        return command;
    }

    private static IPAddress DefaultBind(IPEndPoint contact) =>
        contact.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;

    private static async Task<int> RunJsonAsync(NodeSettings settings, CancellationToken invocation)
    {
        using var signal = new ShutdownSignal(invocation);
        var ct = signal.Token;
        using var loggers = CliSupport.CreateStderrLoggers(settings.LogLevel);
        var logger = loggers.CreateLogger("whisper.node");
        using var output = new JsonLineWriter(Console.OpenStandardOutput());
        var time = TimeProvider.System;

        if (MemberName.Validate(settings.Name) is { } problem)
        {
            output.Close(w => JsonProtocol.Denied(w, DenyReason.InvalidName, problem, time.GetUtcNow()));
            return CliSupport.ExitDenied;
        }

        WhisperNode node;
        try
        {
            node = await WhisperNode.JoinAsync(settings.ToOptions(logger), loggers, time, ct).ConfigureAwait(false);
        }
        catch (WhisperJoinException ex)
        {
            output.Close(w => JsonProtocol.Denied(w, ex.Reason, ex.Message, time.GetUtcNow()));
            return CliSupport.ExitDenied;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            output.Close(w => JsonProtocol.Error(w, "interrupted before the node joined", null, null, time.GetUtcNow()));
            return CliSupport.ExitFailure;
        }
        catch (Exception ex) when (ex is SocketException or InvalidOperationException or ArgumentException)
        {
            output.Close(w => JsonProtocol.Error(w, $"cannot start the node: {ex.Message}", null, null, time.GetUtcNow()));
            return CliSupport.ExitFailure;
        }

        await using (node.ConfigureAwait(false))
        {
            output.Write(w => JsonProtocol.Joined(w, node, time.GetUtcNow()));
            var events = PumpEventsAsync(node, output, time);
            var commands = ReadCommandsAsync(node, output, time, logger, ct);

            // Finish on a leave command or end of input, on Ctrl-C/SIGTERM, or when the node stopped by itself.
            try
            {
                await Task.WhenAny(commands, events, Task.Delay(Timeout.Infinite, ct)).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // not thrown by WhenAny; kept for clarity
            }

            if (ct.IsCancellationRequested)
            {
                LogInterrupted(logger);
            }

            await node.LeaveAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                await events.WaitAsync(EventDrainTimeout, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                LogNodeFailed(logger, ex);
                output.Close(w => JsonProtocol.Error(w, $"the node failed: {ex.Message}", null, null, time.GetUtcNow()));
                return CliSupport.ExitFailure;
            }

            output.Close(w => JsonProtocol.Left(w, time.GetUtcNow()));
            return CliSupport.ExitOk;
        }
    }

    private static async Task PumpEventsAsync(WhisperNode node, JsonLineWriter output, TimeProvider time)
    {
        await foreach (var e in node.Events.ConfigureAwait(false))
        {
            switch (e)
            {
                case ChatMessage message:
                    output.Write(w => JsonProtocol.Message(w, message));
                    break;
                case MemberChanged change:
                    output.Write(w => JsonProtocol.Member(w, change, time.GetUtcNow()));
                    break;
                case Evicted evicted:
                    output.Write(w => JsonProtocol.Evicted(w, evicted, time.GetUtcNow()));
                    break;
                case Rejoined rejoined:
                    output.Write(w => JsonProtocol.Rejoined(w, rejoined, time.GetUtcNow()));
                    break;
                case RejoinFailed failed:
                    output.Write(w => JsonProtocol.RejoinFailed(w, failed, time.GetUtcNow()));
                    break;
            }
        }
    }

    /// <summary>Runs stdin commands one at a time, in order; returns on <c>leave</c> or end of input.</summary>
    private static async Task ReadCommandsAsync(WhisperNode node, JsonLineWriter output, TimeProvider time, ILogger logger, CancellationToken ct)
    {
        // Console stdin reads block a thread; run them off the caller's context. Never awaited past the end.
        await Task.Yield();
        using var input = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true);
        while (!ct.IsCancellationRequested)
        {
            string? line;
            try
            {
                line = await input.ReadLineAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (IOException ex)
            {
                LogStdinFailed(logger, ex.Message);
                return;
            }

            if (line is null)
            {
                LogEndOfInput(logger);
                return;
            }

            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var command = JsonProtocol.TryParse(line, out var error);
            if (command is null)
            {
                output.Write(w => JsonProtocol.Error(w, error ?? "invalid command", null, null, time.GetUtcNow()));
                continue;
            }

            if (command is LeaveOp)
            {
                return;
            }

            await ExecuteAsync(node, command, output, time, ct).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteAsync(WhisperNode node, JsonCommand command, JsonLineWriter output, TimeProvider time, CancellationToken ct)
    {
        var op = command switch
        {
            BroadcastOp => "broadcast",
            PrivateOp => "private",
            MembersOp => "members",
            StatsOp => "stats",
            _ => "leave",
        };
        try
        {
            switch (command)
            {
                case BroadcastOp b:
                    var id = await node.BroadcastAsync(b.Text, ct).ConfigureAwait(false);
                    output.Write(w => JsonProtocol.Sent(w, id, null, command.Tag, time.GetUtcNow()));
                    break;
                case PrivateOp p:
                    var pid = await node.SendPrivateAsync(p.To, p.Text, ct).ConfigureAwait(false);
                    output.Write(w => JsonProtocol.Sent(w, pid, p.To, command.Tag, time.GetUtcNow()));
                    break;
                case MembersOp:
                    var members = node.Members;
                    output.Write(w => JsonProtocol.Members(w, members, time.GetUtcNow()));
                    break;
                case StatsOp:
                    var stats = await node.GetStatsAsync(ct).ConfigureAwait(false);
                    output.Write(w => JsonProtocol.Stats(w, stats, time.GetUtcNow()));
                    break;
            }
        }
        catch (Exception ex) when (ex is MessageTooLargeException or UnknownMemberException or InvalidOperationException or OperationCanceledException)
        {
            output.Write(w => JsonProtocol.Error(w, ex.Message, op, command.Tag, time.GetUtcNow()));
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "end of input: leaving")]
    private static partial void LogEndOfInput(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "interrupted: leaving")]
    private static partial void LogInterrupted(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "reading stdin failed: {Reason}; leaving")]
    private static partial void LogStdinFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "the node failed")]
    private static partial void LogNodeFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "fault injection: drop-in={Drop} dup-out={Dup} seed={Seed}")]
    private static partial void LogFaults(ILogger logger, double drop, double dup, int seed);

    private sealed record NodeSettings(string Name, IPEndPoint Server, IPEndPoint? Peer, IPEndPoint Bind, double DropRate, double DupRate, int? FaultSeed, LogLevel LogLevel)
    {
        public WhisperNodeOptions ToOptions(ILogger logger)
        {
            FaultOptions? faults = null;
            if (DropRate > 0 || DupRate > 0)
            {
                var seed = FaultSeed ?? RandomNumberGenerator.GetInt32(int.MaxValue);
                faults = new FaultOptions { DropIncoming = DropRate, DuplicateOutgoing = DupRate, Seed = seed };
                LogFaults(logger, DropRate, DupRate, seed);
            }

            return new WhisperNodeOptions { Name = Name, Server = Server, Peer = Peer, Bind = Bind, Faults = faults };
        }
    }
}
