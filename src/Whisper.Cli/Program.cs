using System.CommandLine;
using Whisper.Cli.Commands;

namespace Whisper.Cli;

/// <summary>
/// The <c>whisper</c> command. One file per subcommand under Commands/; stdout belongs to the command's
/// own output (JSON lines in headless mode), every log line goes to stderr.
/// </summary>
internal static class Program
{
    /// <summary>Time a command gets after Ctrl-C or SIGTERM before the process is ended (a graceful leave lingers ~2 s).</summary>
    private static readonly TimeSpan TerminationGrace = TimeSpan.FromSeconds(10);

    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Whisper: peer-to-peer group chat over UDP with causal broadcast and private messages.")
        {
            ServerCommand.Create(),
            NodeCommand.Create(),
            ChatCommand.Create(),
            BenchCommand.Create(),
            BenchCommand.CreateNode(),
            DemoCommand.Create(),
        };

        var parse = root.Parse(args);
        return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TerminationGrace }).ConfigureAwait(false);
    }
}
