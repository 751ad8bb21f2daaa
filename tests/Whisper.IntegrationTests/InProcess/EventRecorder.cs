using System.Diagnostics;
using Whisper.Net;

namespace Whisper.IntegrationTests.InProcess;

/// <summary>Reads a node's <see cref="WhisperNode.Events"/> (its single reader) into a list that tests wait on with deadlines.</summary>
public sealed class EventRecorder
{
    private readonly List<WhisperEvent> _events = [];
    private readonly Lock _lock = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public EventRecorder(WhisperNode node)
    {
        Node = node;
        Completion = Task.Run(PumpAsync);
    }

    public WhisperNode Node { get; }

    /// <summary>Completes when the event stream ended (the node left or stopped).</summary>
    public Task Completion { get; }

    public IReadOnlyList<WhisperEvent> Events
    {
        get
        {
            lock (_lock)
            {
                return [.. _events];
            }
        }
    }

    public IReadOnlyList<ChatMessage> Messages => [.. Events.OfType<ChatMessage>()];

    public async Task<T> WaitForAsync<T>(Func<T, bool> predicate, TimeSpan timeout, string description)
        where T : WhisperEvent
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                if (_events.OfType<T>().FirstOrDefault(predicate) is { } found)
                {
                    return found;
                }

                changed = _changed.Task;
            }

            if (Completion.IsCompleted || Stopwatch.GetTimestamp() >= deadline)
            {
                throw new TimeoutException($"{Node.Self}: {description} (not within {timeout.TotalSeconds:0.#} s{(Completion.IsCompleted ? ", the event stream ended" : "")}); events:\n  "
                    + string.Join("\n  ", Events.TakeLast(40)));
            }

            await Task.WhenAny(changed, Task.Delay(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline)));
        }
    }

    public Task<ChatMessage> WaitForMessageAsync(string text, TimeSpan timeout) =>
        WaitForAsync<ChatMessage>(m => m.Text == text, timeout, $"delivers '{(text.Length > 40 ? text[..40] + "..." : text)}'");

    private async Task PumpAsync()
    {
        try
        {
            await foreach (var e in Node.Events)
            {
                TaskCompletionSource signal;
                lock (_lock)
                {
                    _events.Add(e);
                    signal = _changed;
                    _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                signal.TrySetResult();
            }
        }
        finally
        {
            _changed.TrySetResult();
        }
    }
}
