using System.CommandLine;
using Spectre.Console;
using Whisper.Cli.Demo;

namespace Whisper.Cli.Commands;

/// <summary>
/// <c>whisper demo</c>: a discovery server and a group of nodes in this process over a faulty loopback network,
/// a scripted conversation with a crash, a restart and the server going away, then a verification summary.
/// Exit code 0 when every check passes, 1 when one fails, 2 for a bad argument (one sentence on stderr).
/// </summary>
internal static class DemoCommand
{
    public const int ExitBadArguments = 2;

    private const int RedirectedWidth = 120;

    public static Command Create()
    {
        // Raw strings, validated by DemoSettings, so every bad value gets exit code 2 and one clear sentence.
        var nodes = new Option<string?>("--nodes") { Description = "Members in the group, 2-10 [default: 10].", HelpName = "n" };
        var loss = new Option<string?>("--loss") { Description = "Fraction of datagrams lost, 0-0.9 [default: 0.05].", HelpName = "p" };
        var seed = new Option<string?>("--seed") { Description = "Seed of the script and the faults [default: random, printed].", HelpName = "n" };
        var duration = new Option<string?>("--duration") { Description = "Seconds of scripted conversation, 3-300 [default: 12].", HelpName = "s" };
        var command = new Command("demo", "Show Whisper at work: a group of nodes in this process chats over a lossy, duplicating, reordering network through a crash, a restart and the loss of the server, then verifies every delivery.")
        {
            nodes, loss, seed, duration,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (result, ct) =>
        {
            if (result.UnmatchedTokens.Count > 0)
            {
                await Console.Error.WriteLineAsync($"whisper demo: unknown argument '{result.UnmatchedTokens[0]}'; the options are --nodes, --loss, --seed and --duration.").ConfigureAwait(false);
                return ExitBadArguments;
            }

            var settings = DemoSettings.TryParse(result.GetValue(nodes), result.GetValue(loss), result.GetValue(seed), result.GetValue(duration), out var error);
            if (settings is null)
            {
                await Console.Error.WriteLineAsync($"whisper demo: {error}").ConfigureAwait(false);
                return ExitBadArguments;
            }

            var terminal = AnsiConsole.Console;
            if (!terminal.Profile.Capabilities.Interactive && Console.IsOutputRedirected)
            {
                terminal.Profile.Width = RedirectedWidth; // Spectre assumes 80 columns without a terminal; tables read better wider
            }

            var console = new DemoConsole(terminal);
            console.Header(settings);
            var outcome = await console.RunAsync(observer => new DemoRunner(settings, observer).RunAsync(ct)).ConfigureAwait(false);
            console.Report(outcome);
            return outcome.Passed ? CliSupport.ExitOk : CliSupport.ExitFailure;
        });
        return command;
    }
}
