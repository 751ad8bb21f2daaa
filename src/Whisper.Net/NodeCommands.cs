using System.Net;
using Whisper.Protocol.Engine;

namespace Whisper.Net;

/// <summary>A command from the application to the driver loop.</summary>
internal abstract class NodeCommand;

/// <summary>
/// Broadcast or private send. Its task completes when the engine accepted the message (or refused it).
/// Cancellation only wins while the command still waits for flow control: a message the engine accepted is sent.
/// </summary>
internal sealed class SendCommand(MessageKind kind, string? to, byte[] payload) : NodeCommand
{
    private const int Pending = 0;
    private const int Submitting = 1;
    private const int Done = 2;

    private int _state;
    private volatile bool _cancelRequested;
    private CancellationToken _cancellation;

    public MessageKind Kind { get; } = kind;

    public string? To { get; } = to;

    public byte[] Payload { get; } = payload;

    /// <summary>True once the command had to wait for flow control.</summary>
    public bool WasDeferred { get; set; }

    public TaskCompletionSource<MessageId> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Loop side: claims the command for the engine; false when it was cancelled meanwhile.</summary>
    public bool TryBeginSubmit() => Interlocked.CompareExchange(ref _state, Submitting, Pending) == Pending;

    /// <summary>Loop side: the engine answered WindowFull; the command waits again (or is cancelled now if asked to).</summary>
    public void ReturnToPending()
    {
        Volatile.Write(ref _state, Pending);
        if (_cancelRequested)
        {
            TryCancel();
        }
    }

    public void Succeed(MessageId id)
    {
        Volatile.Write(ref _state, Done);
        Completion.TrySetResult(id);
    }

    public void Fail(Exception error)
    {
        Volatile.Write(ref _state, Done);
        Completion.TrySetException(error);
    }

    /// <summary>Application side (a cancellation callback).</summary>
    public void RequestCancel(CancellationToken token)
    {
        _cancellation = token;
        _cancelRequested = true;
        TryCancel();
    }

    private void TryCancel()
    {
        if (Interlocked.CompareExchange(ref _state, Done, Pending) == Pending)
        {
            Completion.TrySetCanceled(_cancellation);
        }
    }
}

/// <summary>
/// A broadcast from <see cref="WhisperNode.TryBroadcast(ReadOnlySpan{byte})"/>: the caller's bytes copied into a
/// reusable buffer. Pooled by the node; owned by the driver loop from the moment it is queued until it is submitted
/// (or dropped), then returned to the pool.
/// </summary>
internal sealed class RawSendCommand : NodeCommand
{
    private byte[] _buffer = new byte[128];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> Payload => _buffer.AsSpan(0, Length);

    public void Fill(ReadOnlySpan<byte> payload)
    {
        if (_buffer.Length < payload.Length)
        {
            _buffer = new byte[payload.Length];
        }

        payload.CopyTo(_buffer);
        Length = payload.Length;
    }
}

internal sealed class LeaveCommand : NodeCommand;

internal sealed class StatsQuery : NodeCommand
{
    public TaskCompletionSource<WhisperNodeStats> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

internal enum InputKind
{
    Datagram,
    Command,
    Tick,
}

/// <summary>One input of the driver loop. A datagram's buffer is rented from the shared pool and returned by the loop.</summary>
internal readonly record struct NodeInput(InputKind Kind, byte[]? Buffer, int Length, IPEndPoint? From, NodeCommand? Command)
{
    public static NodeInput Tick { get; } = new(InputKind.Tick, null, 0, null, null);

    public static NodeInput ForCommand(NodeCommand command) => new(InputKind.Command, null, 0, null, command);

    public static NodeInput ForDatagram(byte[] buffer, int length, IPEndPoint from) => new(InputKind.Datagram, buffer, length, from, null);
}

/// <summary>
/// Buffers for received datagrams on their way from the receive loop to the driver loop (rented by one thread,
/// returned by another). The shared <see cref="System.Buffers.ArrayPool{T}"/> keeps its arrays per thread and per
/// core, so this cross-thread pattern kept missing it and allocated about half the time; a small locked stack does not.
/// </summary>
internal sealed class DatagramBufferPool
{
    /// <summary>
    /// As many as the inbox can hold (4096 x 1200 bytes at most, kept only after a backlog that deep): a smaller bound
    /// dropped the surplus of every backlog and allocated it anew (about 100 bytes per delivery at full load).
    /// </summary>
    private const int MaxPooled = 4096;
    private readonly Stack<byte[]> _free = new();

    public byte[] Rent()
    {
        lock (_free)
        {
            if (_free.TryPop(out var buffer))
            {
                return buffer;
            }
        }

        return new byte[Whisper.Protocol.Wire.WireCodec.MaxDatagramSize];
    }

    public void Return(byte[] buffer)
    {
        lock (_free)
        {
            if (_free.Count < MaxPooled)
            {
                _free.Push(buffer);
            }
        }
    }
}
