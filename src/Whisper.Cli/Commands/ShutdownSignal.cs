using System.Runtime.InteropServices;

namespace Whisper.Cli.Commands;

/// <summary>
/// A token that fires on Ctrl-C, SIGINT or SIGTERM (and when the invocation's own token fires). Registered by
/// the command itself before it announces anything, so a signal that arrives right after a "listening" or
/// "joined" line is never missed (System.CommandLine registers its handler only after the action first yields).
/// </summary>
internal sealed class ShutdownSignal : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly PosixSignalRegistration[] _registrations;

    public ShutdownSignal(CancellationToken invocation)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(invocation);
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
        ];
    }

    public CancellationToken Token => _cts.Token;

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _cts.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true; // we stop gracefully ourselves
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the command already finished
        }
    }
}
