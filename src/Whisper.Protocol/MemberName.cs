namespace Whisper.Protocol;

/// <summary>The rule for member names, shared by nodes and the discovery server.</summary>
public static class MemberName
{
    public const int MaxLength = 32;

    /// <summary>The rule in words, used in every denial so users can act on it.</summary>
    public const string Rule = "a name is 1-32 characters from ASCII letters, digits, '-', '_' and '.'";

    /// <summary>Returns null when <paramref name="name"/> is valid, otherwise a sentence explaining why not.</summary>
    public static string? Validate(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return $"the name is empty: {Rule}";
        }

        if (name.Length > MaxLength)
        {
            return $"the name has {name.Length} characters: {Rule}";
        }

        foreach (var c in name)
        {
            if (!IsAllowed(c))
            {
                return $"the name '{name}' contains '{c}': {Rule}";
            }
        }

        return null;
    }

    public static bool IsValid(string? name) => Validate(name) is null;

    private static bool IsAllowed(char c) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '-' or '_' or '.';
}
