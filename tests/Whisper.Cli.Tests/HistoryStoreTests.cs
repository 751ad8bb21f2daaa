using Whisper.Cli.History;

namespace Whisper.Cli.Tests;

public sealed class HistoryStoreTests : IDisposable
{
    private static readonly DateTimeOffset At = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "whisper-history-" + Guid.NewGuid().ToString("N"));

    private static StoredMessage Message(int i, string from = "bob") =>
        new($"b:{i}", "b", from, null, $"text {i}", At.AddSeconds(i));

    [Fact]
    public void MessagesSurviveClosingAndReopeningInDeliveryOrder()
    {
        using (var store = HistoryStore.Open(_dir))
        {
            store.Append("server:127.0.0.1:7700", "alice", Message(2));
            store.Append("server:127.0.0.1:7700", "alice", Message(1));
            store.Append("server:127.0.0.1:7700", "alice", new StoredMessage("p:1", "p", "bob", "alice", "psst", At));
        }

        using var reopened = HistoryStore.Open(_dir);
        Assert.Equal(
            [Message(2), Message(1), new StoredMessage("p:1", "p", "bob", "alice", "psst", At)],
            reopened.Load("server:127.0.0.1:7700", "alice"));
    }

    [Fact]
    public void TheSameMessageIdIsStoredOnce()
    {
        using var store = HistoryStore.Open(_dir);
        Assert.True(store.Append("g", "alice", Message(1)));
        Assert.False(store.Append("g", "alice", Message(1)));
        Assert.Single(store.Load("g", "alice"));
    }

    [Fact]
    public void HistoryIsKeptApartByGroupAndOwnName()
    {
        using var store = HistoryStore.Open(_dir);
        store.Append("g1", "alice", Message(1));
        store.Append("g2", "alice", Message(2));
        store.Append("g1", "carol", Message(3));

        Assert.Equal([Message(1)], store.Load("g1", "alice"));
        Assert.Equal([Message(2)], store.Load("g2", "alice"));
        Assert.Equal([Message(3)], store.Load("g1", "carol"));
        Assert.Empty(store.Load("g2", "carol"));
    }

    [Fact]
    public void LoadReturnsTheMostRecentMessagesOldestFirst()
    {
        using var store = HistoryStore.Open(_dir);
        for (var i = 0; i < 10; i++)
        {
            store.Append("g", "alice", Message(i));
        }

        Assert.Equal([Message(7), Message(8), Message(9)], store.Load("g", "alice", limit: 3));
    }

    [Fact]
    public void TextIsStoredExactlyIncludingNewlinesAndQuotes()
    {
        using var store = HistoryStore.Open(_dir);
        var tricky = new StoredMessage("b:1", "b", "bob", null, "it's \"fine\"\nline two; DROP TABLE messages;--", At);
        store.Append("g", "alice", tricky);
        Assert.Equal(tricky, Assert.Single(store.Load("g", "alice")));
    }

    [Fact]
    public void DataDirectoryFollowsXdgDataHomeWhenSet()
    {
        var dir = HistoryStore.DefaultDataDirectory();
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var expected = !string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg)
            ? Path.Combine(xdg, "whisper")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share", "whisper");
        Assert.Equal(expected, dir);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
