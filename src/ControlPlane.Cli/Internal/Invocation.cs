using System.CommandLine;
using ControlPlane.Client;
using Google.Protobuf;

namespace ControlPlane.Cli.Internal;

/// <summary>One run of one command: its parse result and the shared handlers.</summary>
internal sealed class Invocation
{
    private readonly CommandHandlers handlers;

    public Invocation(CommandHandlers handlers, ParseResult parse)
    {
        this.handlers = handlers;
        Parse = parse;
    }

    public ParseResult Parse { get; }

    public CliContext Cli => handlers.Cli;

    public TextWriter Out => handlers.Cli.Out;

    public TextWriter Error => handlers.Cli.Error;

    public bool Json => handlers.Json(Parse);

    public string SchedulerAddress => handlers.SchedulerAddress(Parse);

    public bool HandleTermination => handlers.HandleTermination;

    public T? Get<T>(Option<T> option) => Parse.GetValue(option);

    public T Get<T>(Argument<T> argument) => Parse.GetRequiredValue(argument);

    public ControlPlaneClient CreateClient() => handlers.CreateClient(Parse);

    public Task WriteJsonAsync(IMessage message) => handlers.WriteJsonAsync(message);

    public Task WriteJsonLineAsync(IMessage message) => handlers.WriteJsonLineAsync(message);
}
