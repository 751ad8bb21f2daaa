using Whisper.Protocol.Wire;

namespace Whisper.Net;

/// <summary>The group did not admit this node: refused by the server or nobody answered.</summary>
public sealed class WhisperJoinException : Exception
{
    public WhisperJoinException()
        : this(DenyReason.Other, "the join failed")
    {
    }

    public WhisperJoinException(string message)
        : this(DenyReason.Other, message)
    {
    }

    public WhisperJoinException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = DenyReason.Other;
    }

    public WhisperJoinException(DenyReason reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    /// <summary>Why: <see cref="DenyReason.Unreachable"/> when no server answered.</summary>
    public DenyReason Reason { get; }
}

/// <summary>A message is larger than the protocol carries.</summary>
public sealed class MessageTooLargeException : Exception
{
    public MessageTooLargeException()
    {
    }

    public MessageTooLargeException(string message)
        : base(message)
    {
    }

    public MessageTooLargeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public MessageTooLargeException(int actualBytes, int maxBytes)
        : base($"the message is {actualBytes} bytes of UTF-8 but at most {maxBytes} bytes ({maxBytes / 1024} KiB) are allowed")
    {
        ActualBytes = actualBytes;
        MaxBytes = maxBytes;
    }

    public int ActualBytes { get; }

    public int MaxBytes { get; }
}

/// <summary>A private message was addressed to a name that is not a member of the group.</summary>
public sealed class UnknownMemberException : Exception
{
    public UnknownMemberException()
    {
    }

    public UnknownMemberException(string message)
        : base(message)
    {
    }

    public UnknownMemberException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public UnknownMemberException(string name, string message, Exception? innerException)
        : base(message, innerException)
    {
        Name = name;
    }

    /// <summary>The name that was not found.</summary>
    public string? Name { get; }
}
