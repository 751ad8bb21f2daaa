using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Whisper.IntegrationTests.Harness;

/// <summary>
/// A real <c>whisper</c> process (the built whisper.dll next to the test assembly, run with <c>dotnet</c>):
/// JSON lines in on stdin, a transcript of stdout lines, a bounded tail of stderr, bounded waits, and
/// <see cref="Process.Kill(bool)"/> of the whole tree on disposal.
/// </summary>
public sealed class WhisperProcess : IAsyncDisposable
{
    private const int StderrTailLines = 300;

    private readonly Process _process;
    private readonly List<TranscriptLine> _lines = [];
    private readonly Queue<string> _stderr = new();
    private readonly Lock _lock = new();
    private readonly Task _stdoutReader;
    private TaskCompletionSource _changed = NewSignal();
    private bool _stdoutEnded;
    private bool _inputClosed;

    private WhisperProcess(string label, Process process)
    {
        Label = label;
        _process = process;
        Id = process.Id;
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (_lock)
            {
                _stderr.Enqueue(e.Data);
                if (_stderr.Count > StderrTailLines)
                {
                    _stderr.Dequeue();
                }
            }
        };
        _process.BeginErrorReadLine();
        _stdoutReader = Task.Run(ReadStdoutAsync);
    }

    /// <summary>A name for messages and file names (the node's name, or "server").</summary>
    public string Label { get; }

    public int Id { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>The whisper.dll copied next to the test assembly by the project reference.</summary>
    public static string WhisperDll => Path.Combine(AppContext.BaseDirectory, "whisper.dll");

    public static WhisperProcess Start(string label, params string[] args)
    {
        if (!File.Exists(WhisperDll))
        {
            throw new FileNotFoundException($"whisper.dll not found next to the tests at {WhisperDll}; build the solution first");
        }

        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = new UTF8Encoding(false),
            StandardErrorEncoding = new UTF8Encoding(false),
            WorkingDirectory = AppContext.BaseDirectory,
        };
        info.ArgumentList.Add(WhisperDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start dotnet");
        return new WhisperProcess(label, process);
    }

    /// <summary>Writes one command line to stdin.</summary>
    public void Send(string jsonLine)
    {
        lock (_lock)
        {
            if (_inputClosed)
            {
                throw new InvalidOperationException($"{Label}: stdin is closed");
            }

            _process.StandardInput.Write(jsonLine);
            _process.StandardInput.Write('\n');
            _process.StandardInput.Flush();
        }
    }

    /// <summary>Writes an object as one JSON line, e.g. <c>SendOp(new { op = "broadcast", text = "hi" })</c> built from pairs.</summary>
    public void SendOp(params (string Name, string Value)[] fields)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (name, value) in fields)
            {
                w.WriteString(name, value);
            }

            w.WriteEndObject();
        }

        Send(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    public void Broadcast(string text) => SendOp(("op", "broadcast"), ("text", text));

    public void Private(string to, string text) => SendOp(("op", "private"), ("to", to), ("text", text));

    /// <summary>Closes stdin: for a node, end of input means leave.</summary>
    public void CloseInput()
    {
        lock (_lock)
        {
            if (!_inputClosed)
            {
                _inputClosed = true;
                try
                {
                    _process.StandardInput.Close();
                }
                catch (IOException)
                {
                    // the process already ended
                }
            }
        }
    }

    /// <summary>Sends SIGTERM (Unix only), as a service manager would.</summary>
    public void Terminate()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", Id.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit(5000);
    }

    /// <summary>
    /// Ends the process at once with SIGKILL (no leave, no goodbye to anyone) and waits, bounded, until it is
    /// gone; the transcript stays readable.
    /// </summary>
    public async Task KillAsync(TimeSpan timeout)
    {
        try
        {
            _process.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
            // already exited
        }

        await WaitForExitAsync(timeout);
    }

    /// <summary>The first stdout line of <paramref name="eventName"/>, or null.</summary>
    public TranscriptLine? First(string eventName) => Transcript().FirstOrDefault(l => l.Is(eventName));

    public IReadOnlyList<TranscriptLine> Transcript()
    {
        lock (_lock)
        {
            return [.. _lines];
        }
    }

    public IReadOnlyList<string> StderrTail()
    {
        lock (_lock)
        {
            return [.. _stderr];
        }
    }

    /// <summary>Waits (bounded) for the first stdout line matching <paramref name="predicate"/>; fails with the transcript.</summary>
    public async Task<TranscriptLine> WaitForAsync(Func<TranscriptLine, bool> predicate, TimeSpan timeout, string description)
    {
        TranscriptLine? found = null;
        await WaitUntilAsync(lines =>
        {
            found = lines.FirstOrDefault(predicate);
            return found is not null;
        }, timeout, description);
        return found!;
    }

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds for the transcript so far; fails with the transcript.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<TranscriptLine>, bool> condition, TimeSpan timeout, string description)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            IReadOnlyList<TranscriptLine> lines;
            Task changed;
            bool ended;
            lock (_lock)
            {
                lines = [.. _lines];
                changed = _changed.Task;
                ended = _stdoutEnded;
            }

            if (condition(lines))
            {
                return;
            }

            if (ended)
            {
                throw new TimeoutException($"{Label} ended its output before: {description}\n{Describe()}");
            }

            var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            if (Stopwatch.GetTimestamp() >= deadline)
            {
                throw new TimeoutException($"{Label}: not within {timeout.TotalSeconds:0.#} s: {description}\n{Describe()}");
            }

            await Task.WhenAny(changed, Task.Delay(remaining));
        }
    }

    /// <summary>Waits (bounded) for the process to exit and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Label} did not exit within {timeout.TotalSeconds:0.#} s\n{Describe()}");
        }

        await _stdoutReader.WaitAsync(TimeSpan.FromSeconds(5));
        return _process.ExitCode;
    }

    /// <summary>The transcript tail and the stderr tail, for failure messages.</summary>
    public string Describe(int lastLines = 40)
    {
        var lines = Transcript();
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"--- {Label} (pid {Id}) stdout: {lines.Count} lines, last {Math.Min(lastLines, lines.Count)}:\n");
        foreach (var line in lines.Skip(Math.Max(0, lines.Count - lastLines)))
        {
            sb.Append("  ").Append(line).Append('\n');
        }

        var err = StderrTail();
        sb.Append(CultureInfo.InvariantCulture, $"--- {Label} stderr, last {Math.Min(20, err.Count)} lines:\n");
        foreach (var line in err.Skip(Math.Max(0, err.Count - 20)))
        {
            sb.Append("  ").Append(line).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>Writes the full transcript and stderr tail to files in <paramref name="directory"/>.</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllLines(Path.Combine(directory, Label + ".jsonl"), Transcript().Select(l => l.Raw));
        File.WriteAllLines(Path.Combine(directory, Label + ".stderr.txt"), StderrTail());
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
            // already gone, or not killable: nothing more to do in a test
        }

        await _stdoutReader.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(static _ => { }, TaskScheduler.Default);
        _process.Dispose();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The dotnet host running these tests, so the child uses the same runtime.</summary>
    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
        {
            return host;
        }

        if (Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            return path;
        }

        return "dotnet";
    }

    private async Task ReadStdoutAsync()
    {
        var reader = _process.StandardOutput;
        try
        {
            while (await reader.ReadLineAsync() is { } raw)
            {
                JsonElement? json = null;
                try
                {
                    using var document = JsonDocument.Parse(raw);
                    json = document.RootElement.Clone();
                }
                catch (JsonException)
                {
                    // kept as raw text; tests assert that stdout holds only JSON
                }

                TaskCompletionSource signal;
                lock (_lock)
                {
                    _lines.Add(new TranscriptLine(_lines.Count, DateTimeOffset.UtcNow, raw, json));
                    signal = _changed;
                    _changed = NewSignal();
                }

                signal.TrySetResult();
            }
        }
        catch (IOException)
        {
            // the pipe broke: the process is gone
        }
        finally
        {
            TaskCompletionSource signal;
            lock (_lock)
            {
                _stdoutEnded = true;
                signal = _changed;
            }

            signal.TrySetResult();
        }
    }
}
