using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Whisper.Cli.Json;

/// <summary>
/// Writes one JSON object per line to a stream (stdout) and flushes each line at once. Thread-safe; after
/// <see cref="Close"/> further lines are dropped, so nothing follows a final line such as <c>left</c>.
/// </summary>
internal sealed class JsonLineWriter : IDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // readable UTF-8 text; quotes and controls are still escaped
        Indented = false,
    };

    private readonly Stream _stream;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private readonly Utf8JsonWriter _writer;
    private readonly Lock _lock = new();
    private bool _closed;

    public JsonLineWriter(Stream stream)
    {
        _stream = stream;
        _writer = new Utf8JsonWriter(_buffer, WriterOptions);
    }

    /// <summary>Writes one object whose properties <paramref name="body"/> writes. False when closed or the stream failed.</summary>
    public bool Write(Action<Utf8JsonWriter> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        lock (_lock)
        {
            if (_closed)
            {
                return false;
            }

            _buffer.ResetWrittenCount();
            _writer.Reset(_buffer);
            _writer.WriteStartObject();
            body(_writer);
            _writer.WriteEndObject();
            _writer.Flush();
            _buffer.Write("\n"u8);
            try
            {
                _stream.Write(_buffer.WrittenSpan);
                _stream.Flush();
                return true;
            }
            catch (IOException)
            {
                _closed = true; // the reader went away (broken pipe): nothing more can be said
                return false;
            }
        }
    }

    /// <summary>Writes a last line (if any) and refuses every later one.</summary>
    public void Close(Action<Utf8JsonWriter>? last = null)
    {
        if (last is not null)
        {
            Write(last);
        }

        lock (_lock)
        {
            _closed = true;
        }
    }

    public void Dispose()
    {
        _writer.Dispose();
        _stream.Dispose();
    }
}
