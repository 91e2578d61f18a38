using System.ComponentModel;

namespace ControlPlane.Tests.Support;

/// <summary>What tests that start peers and hosts need to know about the machine and the checkout.</summary>
public static class TestEnvironment
{
    /// <summary>The folder holding ControlPlane.sln, found above the test's build output.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>Debian's python3, which has the grpcio packages (the pyenv python on PATH may not).</summary>
    public const string PythonPath = "/usr/bin/python3";

    /// <summary>Fails with the install command unless python3 can import grpc, grpc_tools and protobuf.</summary>
    public static async Task RequirePythonAsync()
    {
        const string hint = "Install Debian's grpcio with its code generator: apt-get install -y python3-grpcio python3-grpc-tools python3-protobuf";
        if (!File.Exists(PythonPath))
        {
            throw new InvalidOperationException($"{PythonPath} is missing. {hint}");
        }

        var (exitCode, output) = await RunQuickAsync(PythonPath, "-c", "import grpc, grpc_tools.protoc, google.protobuf");
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{PythonPath} cannot import grpc, grpc_tools or google.protobuf: {output.Trim()}. {hint}");
        }
    }

    /// <summary>Fails with the install command unless node runs and the test suite's npm packages are installed.</summary>
    public static async Task RequireNodeAsync()
    {
        var (exitCode, output) = await RunQuickAsync("node", "--version");
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"node is not runnable ({output.Trim()}). Install it: apt-get install -y nodejs npm");
        }

        foreach (var package in new[] { "@grpc/grpc-js", "@grpc/proto-loader" })
        {
            if (!File.Exists(Path.Combine(RepositoryRoot, "tests", "node_modules", package, "package.json")))
            {
                throw new InvalidOperationException(
                    $"tests/node_modules/{package} is missing. Install the test suite's npm packages: (cd {Path.Combine(RepositoryRoot, "tests")} && npm install --no-save)");
            }
        }
    }

    /// <summary>Runs a short command (a version or import probe) to its end; exit code -1 when it cannot start or takes over 30 s.</summary>
    public static async Task<(int ExitCode, string Output)> RunQuickAsync(string file, params string[] arguments)
    {
        ObservedProcess process;
        try
        {
            process = ObservedProcess.Start(file, file, arguments);
        }
        catch (Win32Exception e)
        {
            return (-1, e.Message);
        }

        await using (process)
        {
            var exitCode = await process.WaitForExitAsync(TimeSpan.FromSeconds(30));
            return exitCode is { } code ? (code, process.Output) : (-1, $"{file} {string.Join(' ', arguments)} did not finish within 30 s");
        }
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ControlPlane.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No ControlPlane.sln above {AppContext.BaseDirectory}; run the tests from the repository's build output.");
    }
}
