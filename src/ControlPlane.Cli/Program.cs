using ControlPlane.Cli.Internal;

return await Cpctl.RunAsync(args, CliContext.FromConsole(), handleTermination: true, CancellationToken.None).ConfigureAwait(false);
