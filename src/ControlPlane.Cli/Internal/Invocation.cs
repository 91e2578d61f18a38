using System.CommandLine;
using ControlPlane.Client;
using Google.Protobuf;

namespace ControlPlane.Cli.Internal;

/// <summary>One run of one command: its parse result and the shared handlers.</summary>
internal sealed class Invocation
{
    private readonly CommandHandlers _handlers;

    public Invocation(CommandHandlers handlers, ParseResult parse)
    {
        _handlers = handlers;
        Parse = parse;
    }

    public ParseResult Parse { get; }

    public CliContext Cli => _handlers.Cli;

    public TextWriter Out => _handlers.Cli.Out;

    public TextWriter Error => _handlers.Cli.Error;

    public bool Json => _handlers.Json(Parse);

    public string SchedulerAddress => _handlers.SchedulerAddress(Parse);

    public bool HandleTermination => _handlers.HandleTermination;

    public T? Get<T>(Option<T> option) => Parse.GetValue(option);

    public T Get<T>(Argument<T> argument) => Parse.GetRequiredValue(argument);

    public ControlPlaneClient CreateClient() => _handlers.CreateClient(Parse);

    public Task WriteJsonAsync(IMessage message) => _handlers.WriteJsonAsync(message);

    public Task WriteJsonLineAsync(IMessage message) => _handlers.WriteJsonLineAsync(message);
}
