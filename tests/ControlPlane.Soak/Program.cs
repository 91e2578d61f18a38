using ControlPlane.Soak;

// cp-soak: the chaos soak of tests/soak.sh (cp-soak --help).
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(SoakOptions.Usage);
    return 0;
}

SoakOptions options;
try
{
    options = SoakOptions.Parse(args);
}
catch (ArgumentException ex)
{
    await Console.Error.WriteLineAsync(ex.Message);
    await Console.Error.WriteLineAsync(SoakOptions.Usage);
    return 2;
}

return await Driver.RunAsync(options);
