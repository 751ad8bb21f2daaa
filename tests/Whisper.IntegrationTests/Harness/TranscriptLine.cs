using System.Globalization;
using System.Text.Json;

namespace Whisper.IntegrationTests.Harness;

/// <summary>One stdout line of a whisper process: when the harness read it, the raw text, and the parsed object.</summary>
public sealed record TranscriptLine(int Index, DateTimeOffset ReadAt, string Raw, JsonElement? Json)
{
    public bool IsJson => Json is { ValueKind: JsonValueKind.Object };

    public string? Event => Str("event");

    public bool Is(string eventName) => Event == eventName;

    public string? Str(string property) =>
        Json is { ValueKind: JsonValueKind.Object } j && j.TryGetProperty(property, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;

    public double? Num(string property) =>
        Json is { ValueKind: JsonValueKind.Object } j && j.TryGetProperty(property, out var p) && p.ValueKind == JsonValueKind.Number ? p.GetDouble() : null;

    public bool IsMessage(string text) => Is("message") && Str("text") == text;

    public bool IsBroadcast => Is("message") && Str("kind") == "broadcast";

    public bool IsPrivate => Is("message") && Str("kind") == "private";

    /// <summary>The <c>deps</c> object of a message as origin id to chunk count.</summary>
    public IReadOnlyDictionary<string, ulong> Deps()
    {
        var result = new Dictionary<string, ulong>(StringComparer.Ordinal);
        if (Json is { ValueKind: JsonValueKind.Object } j && j.TryGetProperty("deps", out var deps) && deps.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in deps.EnumerateObject())
            {
                result[entry.Name] = entry.Value.GetUInt64();
            }
        }

        return result;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{ReadAt:HH:mm:ss.fff} {Raw}");
}
