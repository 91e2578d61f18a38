using Microsoft.Extensions.Logging;

namespace ControlPlane.Hosting.Internal;

/// <summary>What settings are applied to while loading: the daemon's options and the settings every daemon has.</summary>
internal sealed class LoadState<TOptions>
{
    public LoadState(TOptions options) => Options = options;

    public TOptions Options { get; }

    public LogLevel LogLevel { get; set; } = LogLevel.Information;
}
