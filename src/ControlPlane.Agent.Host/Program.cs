using ControlPlane.Agent;

// cp-agent: options from appsettings.json, CP_AGENT__* environment variables and flags (see AgentHostBuilder.Create).
return await AgentHostBuilder.Create(args).RunAsync().ConfigureAwait(false);
