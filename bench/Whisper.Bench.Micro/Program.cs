using BenchmarkDotNet.Running;

namespace Whisper.Bench.Micro;

/// <summary>Entry point: <c>dotnet run -c Release --project bench/Whisper.Bench.Micro -- --filter '*'</c>.</summary>
internal static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
