using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using ControlPlane.Agent.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Agent;

/// <summary>
/// The "dotnet" framework: runs <see cref="IStepHandler"/>s in-process, chosen by <c>StepSpec.handler</c>.
/// Register handlers before the agent connects; their names are announced in Hello.
/// </summary>
public sealed partial class DotnetFramework : IComputeFramework
{
    private readonly ConcurrentDictionary<string, Func<IStepHandler>> _handlers = new(StringComparer.Ordinal);
    private readonly TimeSpan _abandonAfter;
    private readonly ILogger _logger;

    /// <summary>Creates the framework with no handlers.</summary>
    /// <param name="abandonAfter">How long a cancelled handler that ignores its token is awaited before the attempt is reported stopped anyway. Default is 5 s.</param>
    /// <param name="logger">Where the framework logs; none by default.</param>
    public DotnetFramework(TimeSpan? abandonAfter = null, ILogger<DotnetFramework>? logger = null)
    {
        _abandonAfter = abandonAfter ?? TimeSpan.FromSeconds(5);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <inheritdoc />
    public string Name => "dotnet";

    /// <inheritdoc />
    public IReadOnlyCollection<string> Handlers => _handlers.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>Registers one handler instance, shared by every attempt, under a name.</summary>
    public DotnetFramework Register(string name, IStepHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Register(name, () => handler);
    }

    /// <summary>Registers a delegate as a handler under a name.</summary>
    public DotnetFramework Register(string name, Func<IStepContext, Task<StepHandlerResult>> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var instance = new DelegateStepHandler(handler);
        return Register(name, () => instance);
    }

    /// <summary>Registers a handler type under a name; each attempt gets a new instance.</summary>
    public DotnetFramework Register<THandler>(string name)
        where THandler : IStepHandler, new() => Register(name, () => new THandler());

    /// <summary>Registers a factory under a name; it is called once per attempt.</summary>
    public DotnetFramework Register(string name, Func<IStepHandler> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        if (!NamePattern().IsMatch(name ?? string.Empty))
        {
            throw new ArgumentException($"Handler name '{name}' must match [a-z0-9][a-z0-9._-]{{0,62}}, e.g. \"resize-images\".", nameof(name));
        }

        if (!_handlers.TryAdd(name!, factory))
        {
            throw new ArgumentException($"A handler named '{name}' is already registered; give each handler its own name.", nameof(name));
        }

        return this;
    }

    /// <inheritdoc />
    public async Task<StepResult> RunAsync(StepExecution execution, IStepReporter reporter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(execution);
        ArgumentNullException.ThrowIfNull(reporter);
        var name = execution.Spec.Handler;
        if (string.IsNullOrEmpty(name) || !_handlers.TryGetValue(name, out var factory))
        {
            var known = _handlers.IsEmpty ? "none" : string.Join(", ", Handlers);
            return StepResult.Failure(
                $"this agent has no dotnet handler named '{name}' (registered: {known}); register it with DotnetFramework.Register or fix the step's 'handler'",
                permanent: true);
        }

        using var timeoutCts = new CancellationTokenSource();
        if (execution.Timeout is { } timeout)
        {
            timeoutCts.CancelAfter(timeout);
        }

        using var stopCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutCts.Token);
        var context = new StepContext(execution, reporter, stopCts.Token);

        // Run on the thread pool so a handler that blocks before its first await cannot stall the agent.
        var handlerTask = Task.Run(() => factory().HandleAsync(context), CancellationToken.None);
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (stopCts.Token.Register(() => stopped.TrySetResult()).ConfigureAwait(false))
        {
            if (await Task.WhenAny(handlerTask, stopped.Task).ConfigureAwait(false) != handlerTask)
            {
                // The handler was asked to stop; give it a moment to return cleanly before the attempt ends without it.
                var finished = await Task.WhenAny(handlerTask, Task.Delay(_abandonAfter, CancellationToken.None)).ConfigureAwait(false);
                if (finished != handlerTask)
                {
                    LogAbandoned(_logger, name, execution.RunId, execution.StepId, _abandonAfter);
                    _ = handlerTask.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                }
            }
        }

        var usage = context.Usage;
        if (stopCts.IsCancellationRequested && (!handlerTask.IsCompletedSuccessfully || !handlerTask.Result.Succeeded))
        {
            return timeoutCts.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                ? StepResult.Failure($"handler '{name}' ran past the step's timeout of {execution.Timeout}", timedOut: true, usage: usage)
                : StepResult.Failure($"handler '{name}' was cancelled", cancelled: true, usage: usage);
        }

        StepHandlerResult result;
        try
        {
            result = await handlerTask.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Whatever a handler throws is the step's failure, reported with its type and message.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return StepResult.Failure($"handler '{name}' threw {ex.GetType().Name}: {ex.Message}", usage: usage);
        }

        if (result is null)
        {
            return StepResult.Failure($"handler '{name}' returned null; return StepHandlerResult.Empty for a step without output", permanent: true, usage: usage);
        }

        if (!result.Succeeded)
        {
            return StepResult.Failure(result.Error ?? $"handler '{name}' failed", permanent: result.Permanent, usage: usage);
        }

        if (result.Output.Length > ShellFramework.MaxInlineBytes)
        {
            return StepResult.Failure(
                $"handler '{name}' returned {result.Output.Length} bytes, more than the {ShellFramework.MaxInlineBytes} allowed inline; store large results elsewhere and return StepHandlerResult.FromUri",
                permanent: true,
                usage: usage);
        }

        return StepResult.Success(result.Output, usage, result.OutputUri);
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamePattern();

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Handler {Handler} for {RunId}/{StepId} ignored cancellation for {Wait}; the attempt ends without it")]
    private static partial void LogAbandoned(ILogger logger, string handler, string runId, string stepId, TimeSpan wait);
}
