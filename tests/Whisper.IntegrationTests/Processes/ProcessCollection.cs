using Xunit;

namespace Whisper.IntegrationTests.Processes;

/// <summary>Multi-process tests run one at a time and alone: they load the machine and measure timing.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessCollection
{
    public const string Name = "whisper processes";
}
