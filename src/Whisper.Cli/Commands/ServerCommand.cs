using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Logging;
using Whisper.Cli.Json;
using Whisper.Discovery;

namespace Whisper.Cli.Commands;

/// <summary><c>whisper server</c>: runs a discovery server until Ctrl-C or SIGTERM, then exits with 0.</summary>
internal static partial class ServerCommand
{
    public static Command Create()
    {
        var port = CliSupport.PortOption("--port", "UDP port to listen on (0 picks a free one).", DiscoveryServerOptions.DefaultPort);
        var bind = CliSupport.AddressOption("--bind", "Local address to listen on.", IPAddress.Loopback);
        var maxNodes = new Option<int>("--max-nodes")
        {
            Description = "Largest group the server admits (1-16).",
            HelpName = "n",
            DefaultValueFactory = _ => new DiscoveryOptions().MaxMembers,
        };
        maxNodes.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 16)
            {
                r.AddError("--max-nodes must be from 1 to 16");
            }
        });
        var json = new Option<bool>("--json")
        {
            Description = "Also write {\"event\":\"listening\",\"endpoint\":...} and {\"event\":\"stopped\"} lines (with \"ts\", Unix ms) to stdout, for scripts.",
        };
        var logLevel = CliSupport.LogLevelOption();

        var command = new Command("server", "Run a discovery server that introduces nodes to each other (stop it with Ctrl-C).")
        {
            port, bind, maxNodes, json, logLevel,
        };
        command.SetAction((result, ct) => RunAsync(
            new IPEndPoint(result.GetValue(bind)!, result.GetValue(port)),
            result.GetValue(maxNodes),
            result.GetValue(json),
            result.GetValue(logLevel),
            ct));
        return command;
    }

    private static async Task<int> RunAsync(IPEndPoint bind, int maxNodes, bool json, LogLevel logLevel, CancellationToken invocation)
    {
        using var signal = new ShutdownSignal(invocation);
        var ct = signal.Token;
        using var loggers = CliSupport.CreateStderrLoggers(logLevel);
        var logger = loggers.CreateLogger("whisper.server");
        using var output = json ? new JsonLineWriter(Console.OpenStandardOutput()) : null;
        var options = new DiscoveryServerOptions
        {
            Bind = bind,
            Engine = new DiscoveryOptions { MaxMembers = maxNodes },
        };

        DiscoveryServer server;
        try
        {
            server = await DiscoveryServer.StartAsync(options, loggers.CreateLogger<DiscoveryServer>(), TimeProvider.System, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.Net.Sockets.SocketException or ArgumentException)
        {
            LogStartFailed(logger, ex.Message);
            output?.Write(w =>
            {
                w.WriteString("event", "error");
                w.WriteString("message", ex.Message);
                JsonProtocol.Timestamp(w, TimeProvider.System.GetUtcNow());
            });
            return CliSupport.ExitFailure;
        }

        await using (server.ConfigureAwait(false))
        {
            output?.Write(w =>
            {
                w.WriteString("event", "listening");
                w.WriteString("endpoint", server.LocalEndpoint.ToString());
                w.WriteNumber("max_nodes", maxNodes);
                JsonProtocol.Timestamp(w, TimeProvider.System.GetUtcNow());
            });

            try
            {
                await server.Completion.WaitAsync(ct).ConfigureAwait(false);
                LogLoopEnded(logger);
                return CliSupport.ExitFailure; // the loop only ends by itself when the socket broke
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                LogStopping(logger);
            }
            catch (Exception ex)
            {
                LogLoopFailed(logger, ex);
                return CliSupport.ExitFailure;
            }
        }

        output?.Write(w =>
        {
            w.WriteString("event", "stopped");
            JsonProtocol.Timestamp(w, TimeProvider.System.GetUtcNow());
        });
        return CliSupport.ExitOk;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "cannot start: {Reason}")]
    private static partial void LogStartFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "stopping on request")]
    private static partial void LogStopping(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "the server loop ended unexpectedly")]
    private static partial void LogLoopEnded(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "the server loop failed")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);
}
