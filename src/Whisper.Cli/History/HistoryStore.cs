using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Whisper.Cli.History;

/// <summary>One stored message of a conversation.</summary>
/// <param name="MessageId">The library's message identity as text (unique per group and own name).</param>
/// <param name="Kind">"b" for a broadcast, "p" for a private message.</param>
/// <param name="From">The sender's name.</param>
/// <param name="To">The recipient's name for private messages; null for broadcasts.</param>
/// <param name="Text">The message text.</param>
/// <param name="At">When this node delivered it.</param>
internal sealed record StoredMessage(string MessageId, string Kind, string From, string? To, string Text, DateTimeOffset At);

/// <summary>
/// The chat history of one user, in SQLite: one database per data directory, rows keyed by group (the
/// discovery address or the peer joined through) and own name, in delivery order. A message is written
/// (and committed) before the UI shows it: WAL with <c>synchronous=FULL</c>, so a delivered message survives
/// kill -9 and a power cut; chat rates are tiny, so the fsync per message costs nothing anyone can notice.
/// Writing the same message id twice for the same key stores it once.
/// </summary>
internal sealed class HistoryStore : IDisposable
{
    private readonly SqliteConnection _connection;

    private HistoryStore(SqliteConnection connection, string path)
    {
        _connection = connection;
        Path = path;
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <summary>
    /// The per-user data directory: <c>$XDG_DATA_HOME/whisper</c>, else <c>~/.local/share/whisper</c> (on
    /// Windows and macOS the platform's local application data folder).
    /// </summary>
    public static string DefaultDataDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && System.IO.Path.IsPathRooted(xdg))
        {
            return System.IO.Path.Combine(xdg, "whisper");
        }

        if (OperatingSystem.IsLinux())
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return System.IO.Path.Combine(home, ".local", "share", "whisper");
        }

        return System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "whisper");
    }

    /// <summary>Opens (creating if needed) the history database in <paramref name="dataDirectory"/>.</summary>
    public static HistoryStore Open(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = System.IO.Path.Combine(dataDirectory, "history.db");
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
        }.ToString());
        connection.Open();
        Execute(connection, "PRAGMA journal_mode=WAL;");
        Execute(connection, "PRAGMA synchronous=FULL;");
        Execute(connection, "PRAGMA busy_timeout=5000;");
        Execute(connection, """
            CREATE TABLE IF NOT EXISTS messages (
                seq        INTEGER PRIMARY KEY AUTOINCREMENT,
                grp        TEXT NOT NULL,
                self       TEXT NOT NULL,
                message_id TEXT NOT NULL,
                kind       TEXT NOT NULL,
                sender     TEXT NOT NULL,
                recipient  TEXT,
                text       TEXT NOT NULL,
                at_ms      INTEGER NOT NULL,
                UNIQUE (grp, self, message_id)
            );
            """);
        return new HistoryStore(connection, path);
    }

    /// <summary>Appends one delivered message; returns false when this key already holds that message id.</summary>
    public bool Append(string group, string self, StoredMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        using var command = _connection.CreateCommand();
        command.CommandText = """
            INSERT OR IGNORE INTO messages (grp, self, message_id, kind, sender, recipient, text, at_ms)
            VALUES ($grp, $self, $id, $kind, $sender, $recipient, $text, $at);
            """;
        command.Parameters.AddWithValue("$grp", group);
        command.Parameters.AddWithValue("$self", self);
        command.Parameters.AddWithValue("$id", message.MessageId);
        command.Parameters.AddWithValue("$kind", message.Kind);
        command.Parameters.AddWithValue("$sender", message.From);
        command.Parameters.AddWithValue("$recipient", (object?)message.To ?? DBNull.Value);
        command.Parameters.AddWithValue("$text", message.Text);
        command.Parameters.AddWithValue("$at", message.At.ToUnixTimeMilliseconds());
        return command.ExecuteNonQuery() == 1;
    }

    /// <summary>The last <paramref name="limit"/> messages stored for the key, oldest first (delivery order).</summary>
    public IReadOnlyList<StoredMessage> Load(string group, string self, int limit = 500)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = """
            SELECT message_id, kind, sender, recipient, text, at_ms FROM (
                SELECT * FROM messages WHERE grp = $grp AND self = $self ORDER BY seq DESC LIMIT $limit
            ) ORDER BY seq ASC;
            """;
        command.Parameters.AddWithValue("$grp", group);
        command.Parameters.AddWithValue("$self", self);
        command.Parameters.AddWithValue("$limit", Math.Max(0, limit));
        using var reader = command.ExecuteReader();
        var result = new List<StoredMessage>();
        while (reader.Read())
        {
            result.Add(new StoredMessage(
                reader.GetString(0),
                reader.GetString(1),
                reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.GetString(4),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5))));
        }

        return result;
    }

    /// <summary>The group key for a discovery address or a peer address: "server:127.0.0.1:7700".</summary>
    public static string GroupKey(string kind, string address) =>
        string.Create(CultureInfo.InvariantCulture, $"{kind}:{address}");

    public void Dispose() => _connection.Dispose();

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
