using System.Globalization;
using System.Text.Json;
using Whisper.Net;
using Whisper.Protocol;
using Whisper.Protocol.Engine;
using Whisper.Protocol.Wire;

namespace Whisper.Cli.Json;

/// <summary>A command read from stdin in headless JSON mode.</summary>
internal abstract record JsonCommand
{
    /// <summary>Optional client tag, echoed in the <c>sent</c> or <c>error</c> answer.</summary>
    public string? Tag { get; init; }
}

internal sealed record BroadcastOp(string Text) : JsonCommand;

internal sealed record PrivateOp(string To, string Text) : JsonCommand;

internal sealed record MembersOp : JsonCommand;

internal sealed record StatsOp : JsonCommand;

internal sealed record LeaveOp : JsonCommand;

/// <summary>
/// The headless JSON protocol of <c>whisper node --json</c> (a fixed contract for scripts):
/// stdin carries one command object per line, stdout one event object per line.
/// Parsing uses <see cref="JsonDocument"/> and writing <see cref="Utf8JsonWriter"/>: no reflection.
/// </summary>
internal static class JsonProtocol
{
    /// <summary>Longest accepted command line (a 64 KiB message escaped as \uXXXX is about 384 KiB).</summary>
    public const int MaxLineChars = 1024 * 1024;

    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 8 };

    /// <summary>Parses one stdin line. Returns null and a reason when the line is not a valid command.</summary>
    public static JsonCommand? TryParse(string line, out string? error)
    {
        error = null;
        if (line.Length > MaxLineChars)
        {
            error = $"the line has {line.Length} characters; at most {MaxLineChars} are accepted";
            return null;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line, DocumentOptions);
        }
        catch (JsonException ex)
        {
            error = $"invalid JSON: {ex.Message}";
            return null;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = "a command must be a JSON object such as {\"op\":\"broadcast\",\"text\":\"hi\"}";
                return null;
            }

            if (!TryGetString(root, "op", out var op, ref error))
            {
                return null;
            }

            string? tag = null;
            if (root.TryGetProperty("tag", out var tagElement) && tagElement.ValueKind == JsonValueKind.String)
            {
                tag = tagElement.GetString();
            }

            JsonCommand? command = op switch
            {
                "broadcast" => TryGetString(root, "text", out var text, ref error) ? new BroadcastOp(text) : null,
                "private" => TryGetString(root, "to", out var to, ref error) && TryGetString(root, "text", out var body, ref error) ? new PrivateOp(to, body) : null,
                "members" => new MembersOp(),
                "stats" => new StatsOp(),
                "leave" => new LeaveOp(),
                _ => Unknown(op, out error),
            };
            return command is null ? null : command with { Tag = tag };
        }
    }

    public static string ReasonText(DenyReason reason) => reason switch
    {
        DenyReason.Full => "full",
        DenyReason.NameTaken => "name-taken",
        DenyReason.InvalidName => "invalid-name",
        DenyReason.VersionMismatch => "version-mismatch",
        DenyReason.Unreachable => "unreachable",
        _ => "other",
    };

    public static string StatusText(MemberStatus status) => status switch
    {
        MemberStatus.Up => "up",
        MemberStatus.Suspect => "suspect",
        MemberStatus.Down => "down",
        _ => "left",
    };

    public static string KindText(MessageKind kind) => kind == MessageKind.Broadcast ? "broadcast" : "private";

    /// <summary>Milliseconds since the Unix epoch with sub-millisecond precision (the <c>ts</c> field).</summary>
    public static double UnixMillis(DateTimeOffset time) => (time - DateTimeOffset.UnixEpoch).Ticks / (double)TimeSpan.TicksPerMillisecond;

    public static void Timestamp(Utf8JsonWriter w, DateTimeOffset time) => w.WriteNumber("ts", Math.Round(UnixMillis(time), 3));

    public static void Joined(Utf8JsonWriter w, WhisperNode node, DateTimeOffset now)
    {
        w.WriteString("event", "joined");
        w.WriteString("name", node.Self.Name);
        w.WriteString("id", node.Self.Id.ToString());
        w.WriteString("endpoint", node.LocalEndpoint.ToString());
        w.WriteStartArray("members");
        foreach (var member in node.InitialMembers)
        {
            w.WriteStringValue(member.Name);
        }

        w.WriteEndArray();
        Timestamp(w, now);
    }

    public static void Denied(Utf8JsonWriter w, DenyReason reason, string message, DateTimeOffset now)
    {
        w.WriteString("event", "denied");
        w.WriteString("reason", ReasonText(reason));
        w.WriteString("message", message);
        Timestamp(w, now);
    }

    public static void Message(Utf8JsonWriter w, ChatMessage m)
    {
        w.WriteString("event", "message");
        w.WriteString("kind", KindText(m.Kind));
        w.WriteString("from", m.From);
        if (m.To is not null)
        {
            w.WriteString("to", m.To);
        }

        w.WriteString("text", m.Text);
        w.WriteString("id", m.Id.ToString());
        w.WriteString("origin", m.Id.Origin.ToString());
        w.WriteNumber("seq", m.Id.Seq);
        w.WriteStartObject("deps");
        foreach (var entry in m.Deps.Entries)
        {
            w.WriteNumber(entry.Member.ToString(), entry.Value);
        }

        w.WriteEndObject();
        if (m.Arrival != Arrival.Live)
        {
            w.WriteBoolean(m.Arrival == Arrival.Late ? "late" : "history", true);
        }

        Timestamp(w, m.ReceivedAt);
    }

    public static void Member(Utf8JsonWriter w, MemberChanged change, DateTimeOffset now)
    {
        w.WriteString("event", "member");
        w.WriteString("name", change.Name);
        w.WriteString("id", change.Member.Id.ToString());
        w.WriteString("status", StatusText(change.Status));
        Timestamp(w, now);
    }

    /// <summary>The group removed this incarnation (paused, cut off, smaller side of a healed split).</summary>
    public static void Evicted(Utf8JsonWriter w, Evicted evicted, DateTimeOffset now)
    {
        w.WriteString("event", "evicted");
        w.WriteString("name", evicted.Previous.Name);
        w.WriteString("id", evicted.Previous.Id.ToString());
        w.WriteString("reason", evicted.Reason);
        w.WriteBoolean("rejoining", evicted.Rejoining);
        Timestamp(w, now);
    }

    /// <summary>A member again, as a new incarnation.</summary>
    public static void Rejoined(Utf8JsonWriter w, Rejoined rejoined, DateTimeOffset now)
    {
        w.WriteString("event", "rejoined");
        w.WriteString("name", rejoined.Self.Name);
        w.WriteString("id", rejoined.Self.Id.ToString());
        w.WriteStartArray("members");
        foreach (var m in rejoined.Members)
        {
            w.WriteStringValue(m.Name);
        }

        w.WriteEndArray();
        Timestamp(w, now);
    }

    public static void RejoinFailed(Utf8JsonWriter w, RejoinFailed failed, DateTimeOffset now)
    {
        w.WriteString("event", "rejoin-failed");
        w.WriteString("reason", ReasonText(failed.Reason));
        w.WriteString("message", failed.Message);
        Timestamp(w, now);
    }

    public static void Members(Utf8JsonWriter w, IReadOnlyList<MemberSnapshot> members, DateTimeOffset now)
    {
        w.WriteString("event", "members");
        w.WriteStartArray("members");
        foreach (var m in members)
        {
            w.WriteStartObject();
            w.WriteString("name", m.Member.Name);
            w.WriteString("id", m.Member.Id.ToString());
            w.WriteString("status", StatusText(m.Status));
            if (m.IsSelf)
            {
                w.WriteBoolean("self", true);
            }

            if (m.Endpoint is not null)
            {
                w.WriteString("endpoint", m.Endpoint.ToString());
            }

            if (m.SmoothedRtt is { } rtt)
            {
                w.WriteNumber("rtt_ms", Math.Round(rtt.TotalMilliseconds, 3));
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        Timestamp(w, now);
    }

    public static void Sent(Utf8JsonWriter w, MessageId id, string? to, string? tag, DateTimeOffset now)
    {
        w.WriteString("event", "sent");
        w.WriteString("kind", KindText(id.Kind));
        if (to is not null)
        {
            w.WriteString("to", to);
        }

        w.WriteString("id", id.ToString());
        w.WriteNumber("seq", id.Seq);
        if (tag is not null)
        {
            w.WriteString("tag", tag);
        }

        Timestamp(w, now);
    }

    public static void Stats(Utf8JsonWriter w, WhisperNodeStats s, DateTimeOffset now)
    {
        w.WriteString("event", "stats");
        w.WriteNumber("datagrams_sent", s.DatagramsSent);
        w.WriteNumber("bytes_sent", s.BytesSent);
        w.WriteNumber("datagrams_received", s.DatagramsReceived);
        w.WriteNumber("malformed_dropped", s.MalformedDropped);
        w.WriteNumber("chunks_sent", s.ChunksSent);
        w.WriteNumber("chunks_retransmitted", s.ChunksRetransmitted);
        w.WriteNumber("chunks_relayed", s.ChunksRelayed);
        w.WriteNumber("duplicate_chunks", s.DuplicateChunks);
        w.WriteNumber("nacks_sent", s.NacksSent);
        w.WriteNumber("acks_sent", s.AcksSent);
        w.WriteNumber("broadcasts_delivered", s.BroadcastsDelivered);
        w.WriteNumber("privates_delivered", s.PrivatesDelivered);
        w.WriteNumber("held_back", s.HeldBack);
        w.WriteNumber("stored_chunks", s.StoredChunks);
        w.WriteNumber("send_failures", s.SendFailures);
        w.WriteNumber("sends_deferred", s.SendsDeferred);
        Timestamp(w, now);
    }

    public static void Error(Utf8JsonWriter w, string message, string? op, string? tag, DateTimeOffset now)
    {
        w.WriteString("event", "error");
        w.WriteString("message", message);
        if (op is not null)
        {
            w.WriteString("op", op);
        }

        if (tag is not null)
        {
            w.WriteString("tag", tag);
        }

        Timestamp(w, now);
    }

    public static void Left(Utf8JsonWriter w, DateTimeOffset now)
    {
        w.WriteString("event", "left");
        Timestamp(w, now);
    }

    private static bool TryGetString(JsonElement root, string name, out string value, ref string? error)
    {
        value = string.Empty;
        if (!root.TryGetProperty(name, out var element))
        {
            error = $"missing field '{name}'";
            return false;
        }

        if (element.ValueKind != JsonValueKind.String)
        {
            error = $"field '{name}' must be a string";
            return false;
        }

        try
        {
            value = element.GetString() ?? string.Empty;
            return true;
        }
        catch (InvalidOperationException)
        {
            error = $"field '{name}' is not valid Unicode text";
            return false;
        }
    }

    private static JsonCommand? Unknown(string op, out string error)
    {
        error = string.Create(CultureInfo.InvariantCulture, $"unknown op '{op}'; known: broadcast, private, members, stats, leave");
        return null;
    }
}
