using Xunit;

namespace Whisper.IntegrationTests.Harness;

public static class Problems
{
    /// <summary>Fails with every problem found and the transcripts of <paramref name="context"/>.</summary>
    public static void AssertNone(IEnumerable<string> problems, params WhisperProcess[] context)
    {
        var list = problems.Take(50).ToList();
        if (list.Count > 0)
        {
            Assert.Fail(string.Join('\n', list) + "\n" + string.Concat(context.Select(p => p.Describe())));
        }
    }

    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";
}
