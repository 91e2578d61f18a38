using System.CommandLine;

namespace ControlPlane.Cli.Internal;

/// <summary>Options every command accepts.</summary>
internal sealed class GlobalOptions
{
    public Option<string?> Scheduler { get; } = new("--scheduler")
    {
        Description = $"Scheduler address, http://host:port or https://host:port. Default: $CP_SCHEDULER, else {Cpctl.DefaultScheduler}.",
        Recursive = true,
        HelpName = "URL",
    };

    public Option<string?> Token { get; } = new("--token")
    {
        Description = "Bearer token sent to the scheduler. Default: $CP_TOKEN.",
        Recursive = true,
    };

    public Option<string> Output { get; } = CreateOutput();

    private static Option<string> CreateOutput()
    {
        var option = new Option<string>("--output", "-o")
        {
            Description = "Output format: text (tables, one line per event) or json (protobuf JSON of the response).",
            Recursive = true,
            DefaultValueFactory = _ => "text",
        };
        option.AcceptOnlyFromAmong("text", "json");
        return option;
    }
}
