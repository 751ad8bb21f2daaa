using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Whisper.Cli.Commands;

/// <summary>Options and helpers shared by the subcommands.</summary>
internal static class CliSupport
{
    /// <summary>Process exit codes of every command.</summary>
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitDenied = 2;

    /// <summary>An option out of range: one sentence on stderr, nothing run (<c>whisper demo</c>, <c>whisper bench</c>).</summary>
    public const int ExitBadArguments = 2;

    public static Option<LogLevel> LogLevelOption() => new("--log-level")
    {
        Description = "Least severe log level written to stderr: Trace, Debug, Information, Warning, Error, Critical or None.",
        DefaultValueFactory = _ => LogLevel.Information,
        HelpName = "level",
    };

    /// <summary>An option holding HOST:PORT (an IPv4 or [IPv6] literal, or a host name such as localhost).</summary>
    public static Option<IPEndPoint> EndpointOption(string name, string description, IPEndPoint defaultValue) => new(name)
    {
        Description = description,
        HelpName = "host:port",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = ParseEndpoint,
    };

    /// <summary>An optional HOST:PORT option without a default: null unless given.</summary>
    public static Option<IPEndPoint?> OptionalEndpointOption(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "host:port",
        CustomParser = ParseEndpoint,
    };

    /// <summary>An option holding an IP address literal (or localhost).</summary>
    public static Option<IPAddress> AddressOption(string name, string description, IPAddress defaultValue) => new(name)
    {
        Description = description,
        HelpName = "address",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = ParseAddress,
    };

    public static Option<int> PortOption(string name, string description, int defaultValue)
    {
        var option = new Option<int>(name)
        {
            Description = description,
            HelpName = "port",
            DefaultValueFactory = _ => defaultValue,
        };
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 0 or > 65535)
            {
                r.AddError($"{name} must be a port number from 0 to 65535");
            }
        });
        return option;
    }

    public static Option<double> ProbabilityOption(string name, string description)
    {
        var option = new Option<double>(name)
        {
            Description = description,
            HelpName = "p",
            DefaultValueFactory = _ => 0,
        };
        option.Validators.Add(r =>
        {
            var p = r.GetValueOrDefault<double>();
            if (double.IsNaN(p) || p is < 0 or >= 1)
            {
                r.AddError($"{name} must be a probability from 0 up to (not including) 1");
            }
        });
        return option;
    }

    /// <summary>A logger factory that writes single-line entries to stderr only, never to stdout.</summary>
    public static ILoggerFactory CreateStderrLoggers(LogLevel minimum) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(minimum);
        builder.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
            o.ColorBehavior = Console.IsErrorRedirected ? LoggerColorBehavior.Disabled : LoggerColorBehavior.Default;
        });
        builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    });

    private static IPEndPoint? ParseEndpoint(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
        if (IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port != 0 && LooksLikeEndpoint(text))
        {
            return endpoint;
        }

        var colon = text.LastIndexOf(':');
        if (colon > 0 && int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535)
        {
            var host = text[..colon].Trim('[', ']');
            if (Resolve(host) is { } address)
            {
                return new IPEndPoint(address, port);
            }

            result.AddError($"cannot resolve the host '{host}' of '{text}'");
            return null;
        }

        result.AddError($"'{text}' is not HOST:PORT (for example 127.0.0.1:7700 or [::1]:7700)");
        return null;
    }

    public static IPAddress? ParseAddress(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
        if (Resolve(text.Trim('[', ']')) is { } address)
        {
            return address;
        }

        result.AddError($"'{text}' is not an IP address (for example 127.0.0.1 or ::1)");
        return null;
    }

    /// <summary>IPEndPoint.TryParse accepts a bare address as port 0; insist on an explicit port.</summary>
    private static bool LooksLikeEndpoint(string text) => text.StartsWith('[') ? text.Contains("]:", StringComparison.Ordinal) : text.Count(c => c == ':') == 1;

    private static IPAddress? Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return literal;
        }

        if (host.Length == 0)
        {
            return null;
        }

        try
        {
            var addresses = Dns.GetHostAddresses(host);
            return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault();
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
