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

    /// <summary>
    /// --namespace before the command: the namespace the call acts in (the cp-namespace header), for every command that
    /// calls the scheduler. Not recursive: after <c>auth token create|revoke</c> --namespace is their own option (the
    /// token's namespace), so the command groups that call the scheduler take <see cref="CallNamespace"/> instead.
    /// </summary>
    public Option<string?> Namespace { get; } = CreateNamespace(recursive: false);

    /// <summary>--namespace after the command: the same setting as <see cref="Namespace"/>, on run, agents, audit, secret and auth token ls.</summary>
    public Option<string?> CallNamespace { get; } = CreateNamespace(recursive: true);

    public Option<string?> Ca { get; } = new("--ca")
    {
        Description = "PEM certificate of the CA that signed the scheduler's certificate (a private CA), for https:// addresses. Default: $CP_CA, else the system trust store.",
        Recursive = true,
        HelpName = "PEM",
    };

    public Option<string?> Cert { get; } = new("--cert")
    {
        Description = "PEM client certificate for mutual TLS (signed by the scheduler's --client-ca), with --key. Default: $CP_CERT.",
        Recursive = true,
        HelpName = "PEM",
    };

    public Option<string?> Key { get; } = new("--key")
    {
        Description = "PEM private key of --cert. Default: $CP_KEY.",
        Recursive = true,
        HelpName = "PEM",
    };

    public Option<string> Output { get; } = CreateOutput();

    private static Option<string?> CreateNamespace(bool recursive) => new("--namespace")
    {
        Description = "Namespace the call acts in, [a-z0-9][a-z0-9._-]{0,62}; the token must belong to it (or to every namespace). Default: $CP_NAMESPACE, else the token's namespace.",
        Recursive = recursive,
        HelpName = "NS",
    };

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
