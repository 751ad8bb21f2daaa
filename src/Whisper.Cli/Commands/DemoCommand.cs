using System.CommandLine;
using Spectre.Console;
using Whisper.Cli.Demo;

namespace Whisper.Cli.Commands;

/// <summary>
/// <c>whisper demo</c>: a discovery server and a group of nodes in this process over a faulty loopback network,
/// a scripted conversation with a crash, a restart and the server going away, then a verification summary.
/// Exit code 0 when every check passes, 1 when one fails, 2 for a bad argument (one sentence on stderr), 130 when
/// interrupted.
/// </summary>
internal static class DemoCommand
{
    /// <summary>Ctrl-C or SIGTERM ended the run early (the conventional 128 + SIGINT).</summary>
    public const int ExitInterrupted = 130;

    private const int RedirectedWidth = 120;

    public static Command Create()
    {
        // Raw strings, validated by DemoSettings, so every bad value gets exit code 2 and one clear sentence.
        var nodes = RawOption("--nodes", "Members in the group, 2-10 [default: 10].", "n");
        var loss = RawOption("--loss", "Fraction of datagrams lost, 0-0.9 [default: 0.05].", "p");
        var seed = RawOption("--seed", "Seed of the script and the faults [default: random, printed].", "n");
        var duration = RawOption("--duration", "Seconds of scripted conversation, 3-300 [default: 12].", "s");
        var command = new Command("demo", "Show Whisper at work: a group of nodes in this process chats over a lossy, duplicating, reordering network through a crash, a restart and the loss of the server, then verifies every delivery.")
        {
            nodes, loss, seed, duration,
        };
        command.SetAction(async (result, ct) =>
        {
            if (new[] { nodes, loss, seed, duration }.FirstOrDefault(o => result.GetResult(o) is { Implicit: false, Tokens.Count: 0 }) is { } bare)
            {
                await Console.Error.WriteLineAsync($"whisper demo: {bare.Name} needs a value, for example {bare.Name} {Example(bare.Name)}.").ConfigureAwait(false);
                return CliSupport.ExitBadArguments;
            }

            var settings = DemoSettings.TryParse(result.GetValue(nodes), result.GetValue(loss), result.GetValue(seed), result.GetValue(duration), out var error);
            if (settings is null)
            {
                await Console.Error.WriteLineAsync($"whisper demo: {error}").ConfigureAwait(false);
                return CliSupport.ExitBadArguments;
            }

            var terminal = AnsiConsole.Console;
            if (!terminal.Profile.Capabilities.Interactive && Console.IsOutputRedirected)
            {
                terminal.Profile.Width = RedirectedWidth; // Spectre assumes 80 columns without a terminal; tables read better wider
            }

            var console = new DemoConsole(terminal);
            console.Header(settings);
            try
            {
                var outcome = await console.RunAsync(observer => new DemoRunner(settings, observer).RunAsync(ct)).ConfigureAwait(false);
                console.Report(outcome);
                return outcome.Passed ? CliSupport.ExitOk : CliSupport.ExitFailure;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                await Console.Error.WriteLineAsync("whisper demo: interrupted; nothing was verified.").ConfigureAwait(false);
                return ExitInterrupted;
            }
        });
        return command;
    }

    /// <summary>A string option that may appear without its value, so the action can say so (exit code 2) instead of the parser (exit code 1).</summary>
    private static Option<string?> RawOption(string name, string description, string helpName) => new(name)
    {
        Description = description,
        HelpName = helpName,
        Arity = ArgumentArity.ZeroOrOne,
    };

    private static string Example(string option) => option switch
    {
        "--nodes" => "4",
        "--loss" => "0.2",
        "--seed" => "7",
        _ => "10",
    };
}
