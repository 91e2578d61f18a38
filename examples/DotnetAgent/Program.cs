using ControlPlane.Agent;
using DotnetAgent;

// An agent that runs shell steps and, in-process, the steps with "framework: dotnet, handler: word-count".
// Settings as for any agent host: --scheduler URL, --agent-id ID, --slots N, --queues a,b, --labels k=v (--help lists all).
var builder = AgentHostBuilder.Create(args);
builder.AddStepHandler<WordCount>("word-count");
return await builder.RunAsync().ConfigureAwait(false);
