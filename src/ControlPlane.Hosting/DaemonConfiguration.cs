using Microsoft.Extensions.Logging;

namespace ControlPlane.Hosting;

/// <summary>A daemon's settings after loading and validation: its options, the log level, and the deprecation warnings to print.</summary>
public sealed class DaemonConfiguration<TOptions>
{
    internal DaemonConfiguration(TOptions options, LogLevel logLevel, string? configFile, IReadOnlyList<string> warnings)
    {
        Options = options;
        LogLevel = logLevel;
        ConfigFile = configFile;
        Warnings = warnings;
    }

    /// <summary>The validated options.</summary>
    public TOptions Options { get; }

    /// <summary>The least severe log level written. Default is Information.</summary>
    public LogLevel LogLevel { get; }

    /// <summary>The full path of the --config file read, or null.</summary>
    public string? ConfigFile { get; }

    /// <summary>One line per deprecated name in use, naming its replacement.</summary>
    public IReadOnlyList<string> Warnings { get; }
}
