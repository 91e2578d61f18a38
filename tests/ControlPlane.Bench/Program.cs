using ControlPlane.Agent;
using ControlPlane.Bench;

// "bench-agent": an agent host whose "noop" handler records when it starts; anything else drives the benchmark.
if (args.Length > 0 && args[0] == "bench-agent")
{
    var startsFile = Environment.GetEnvironmentVariable(HandlerStarts.FileVariable)
        ?? throw new InvalidOperationException($"{HandlerStarts.FileVariable} is not set; the driver sets it to the file where handler start times go.");
    await using var starts = new HandlerStarts(startsFile);
    var builder = AgentHostBuilder.Create(args[1..]);
    builder.AddStepHandler("noop", context =>
    {
        starts.Record(context.RunId, context.StepId);
        return Task.FromResult(StepHandlerResult.Empty);
    });
    return await builder.RunAsync().ConfigureAwait(false);
}

// "validation": only the worst-case validation figures, no processes and no Redis.
if (args.Length > 0 && args[0] == "validation")
{
    Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(WorstCaseValidation.Measure()));
    return 0;
}

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException ex)
{
    await Console.Error.WriteLineAsync(ex.Message).ConfigureAwait(false);
    await Console.Error.WriteLineAsync(BenchOptions.Usage).ConfigureAwait(false);
    return 2;
}

return await Driver.RunAsync(options).ConfigureAwait(false);
