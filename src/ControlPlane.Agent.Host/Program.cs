using ControlPlane.Agent;

// cp-agent: settings from flags, CP_* environment variables and a --config JSON file (cp-agent --help).
return await AgentHostBuilder.Create(args).RunAsync().ConfigureAwait(false);
